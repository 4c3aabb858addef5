"""lora_adapter and eval_report: trained and evaluated in their own processes through Dagster Pipes,
tied to their dataset version, visible in the registry and the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from fine_tune_assets.definitions import data_assets
from fine_tune_assets.defs.evaluation.assets import eval_report, promotion_gate
from fine_tune_assets.defs.resources import DataPipelineResource
from fine_tune_assets.defs.training.assets import base_model, lora_adapter
from fine_tune_assets.defs.validate.checks import validated_conversations_checks

from .test_training import triage_examples


TINY_SCHEMA = {"type": "object", "required": ["category", "priority"], "additionalProperties": False,
               "properties": {"category": {"enum": ["billing", "outage", "account"]},
                              "priority": {"enum": ["low", "high"]}}}


def write_eval_spec(data_dir: Path) -> None:
    config = data_dir / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "triage.schema.json").write_text(json.dumps(TINY_SCHEMA))
    general = Path(__file__).resolve().parents[1] / "data" / "eval" / "general_prompts.jsonl"
    (config / "evaluation.yaml").write_text(
        "response_format: {json_schema: triage.schema.json}\n"
        f"general_prompts: {general}\n"
        "domain_terms: [invoice, router]\n"
        "max_general_regression: 10.0\n"  # the tiny model's general text is noise; the gate logic is unit-tested
        "max_new_tokens: 24\ngeneration_batch_size: 4\nexamples_in_report: 3\n")


def test_lora_adapter_asset_records_lineage(tmp_path, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data_dir = tmp_path / "data"
    (data_dir / "raw").mkdir(parents=True)
    (data_dir / "raw" / "tickets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in triage_examples()))
    resources = {
        "pipeline": DataPipelineResource(data_dir=str(data_dir), base_model=str(tiny_model_dir), scrub_workers=1,
                                         eval_fraction=0.25, quarantine_rate_ceiling=1.0),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    }
    instance = dg.DagsterInstance.ephemeral()
    write_eval_spec(data_dir)
    every_asset = [*data_assets, *validated_conversations_checks, base_model, lora_adapter, eval_report,
                   promotion_gate]
    data = dg.materialize(every_asset, instance=instance, resources=resources,
                          selection=dg.AssetSelection.assets(*data_assets))
    assert data.success
    version = data.asset_materializations_for_node("dataset_version")[0].metadata["dataset_version"].value

    run_config = {"ops": {"lora_adapter": {"config": {"max_steps": 60, "per_device_batch_size": 4,
                                                      "gradient_accumulation_steps": 1, "save_steps": 2,
                                                      "learning_rate": 3e-3}}}}
    trained = dg.materialize(every_asset, instance=instance, resources=resources, run_config=run_config,
                             selection=dg.AssetSelection.assets(base_model, lora_adapter))
    assert trained.success
    metadata = trained.asset_materializations_for_node("lora_adapter")[0].metadata
    adapter_id = metadata["adapter_id"].value
    folder = Path(metadata["path"].value)
    assert folder.name == adapter_id and metadata["dataset_version"].value == version
    assert metadata["steps"].value == 60
    lineage = json.loads((folder / "lineage.json").read_text())
    assert lineage["dataset_version"] == version
    assert lineage["base_model"]["path"] == str(tiny_model_dir)
    assert lineage["training_config"]["max_steps"] == 60 and lineage["training_config_hash"]
    assert lineage["libraries"]["trl"] and lineage["hardware"]["device"] == "cpu"
    assert (folder / "README.md").read_text().startswith("---\nbase_model: tiny-llama")
    with duckdb.connect(str(data_dir / "registry.duckdb"), read_only=True) as con:
        row = con.execute("SELECT dataset_version, path FROM adapters WHERE adapter_id = ?", [adapter_id]).fetchone()
    assert row == (version, str(folder))
    logs = [e.user_message for e in instance.all_logs(trained.run_id) if e.user_message]
    assert any("step 60/60" in m for m in logs), "training progress reaches the Dagster run log"

    evaluated = dg.materialize(every_asset, instance=instance, resources=resources,
                               selection=dg.AssetSelection.assets(eval_report),  # with its promotion gate
                               raise_on_error=False)
    eval_meta = evaluated.asset_materializations_for_node("eval_report")[0].metadata
    assert eval_meta["adapter_id"].value == adapter_id and eval_meta["dataset_version"].value == version
    report = json.loads(Path(eval_meta["report_json"].value).read_text())
    base, tuned = report["metrics"]["base"], report["metrics"]["fine_tuned"]
    assert evaluated.success, (report["gate"], base, tuned)
    n_eval = report["eval_set"]["n_examples"]
    assert n_eval == report["eval_set"]["n_format_applicable"] >= 3
    assert report["eval_set"]["train_overlap"] == 0
    assert tuned["eval_loss"] < base["eval_loss"], "fine-tuning lowers the held-out loss"
    assert tuned["format_compliance"] > base["format_compliance"], "fine-tuning teaches the JSON answer"
    assert len(report["generations"]) == n_eval and len(report["examples"]) == 3
    [check] = evaluated.get_asset_check_evaluations()
    assert check.check_name == "promotion_gate" and check.passed == report["gate"]["passed"] is True
    eval_dir = folder / "eval"
    assert {p.name for p in eval_dir.iterdir()} == {"eval_report.json", "report.md", "report.html",
                                                    "loss_curve.png"}
    assert "PASSED" in (eval_dir / "report.md").read_text()
    env = {**os.environ, "FINE_TUNE_DATA_DIR": str(data_dir)}
    listed = json.loads(subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", "adapters", "list", "--json"],
                                       capture_output=True, text=True, env=env, check=True).stdout)
    shown = json.loads(subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", "adapters", "show", "latest",
                                       "--json"], capture_output=True, text=True, env=env, check=True).stdout)
    assert listed[0]["adapter_id"] == shown["adapter_id"] == adapter_id
    assert shown["path"] == str(folder) and shown["dataset_version"] == version
    assert shown["lineage"]["training_config_hash"] == lineage["training_config_hash"]
    assert shown["eval"]["base"]["format_compliance"] == base["format_compliance"]
    assert shown["eval"]["fine_tuned"]["eval_loss"] == tuned["eval_loss"] and shown["eval"]["gate"]["passed"]
    assert listed[0]["eval"]["eval_id"] == eval_meta["eval_id"].value
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(folder))
    assert model.peft_config["default"].r == 16
