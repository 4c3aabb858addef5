"""lora_adapter and eval_report: trained and evaluated in their own processes through Dagster Pipes,
tied to their dataset version, visible in the registry and the CLI."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from fine_tune_assets.defs.evaluation.eval_report import eval_report
from fine_tune_assets.defs.evaluation.promotion_gate import promotion_gate
from fine_tune_assets.defs.training.base_model import base_model
from fine_tune_assets.defs.training.lora_adapter import lora_adapter
from fine_tune_assets.lib.models.loading import peft_wrapping
from fine_tune_assets_tests.factories import DATA_ASSETS, DATA_CHECKS, REPO, triage_pipeline

pytestmark = pytest.mark.slow  # trains and evaluates the tiny model through Dagster Pipes

TINY_SCHEMA = {"type": "object", "required": ["category", "priority"], "additionalProperties": False,
               "properties": {"category": {"enum": ["billing", "outage", "account"]},
                              "priority": {"enum": ["low", "high"]}}}


def write_eval_spec(data_dir: Path) -> None:
    config = data_dir / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "triage.schema.json").write_text(json.dumps(TINY_SCHEMA))
    general = REPO / "data" / "eval" / "general_prompts.jsonl"
    (config / "evaluation.yaml").write_text(
        "response_format: {json_schema: triage.schema.json}\n"
        f"general_prompts: {general}\n"
        "domain_terms: [invoice, router]\n"
        "max_general_regression: 10.0\n"  # the tiny model's general text is noise; the gate logic is unit-tested
        "max_new_tokens: 24\ngeneration_batch_size: 4\nexamples_in_report: 3\n")


def test_lora_adapter_asset_records_lineage(tmp_path, tiny_model_dir, monkeypatch):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("FINE_TUNE_USER", "alice")  # launches the training: the sample's roles make her a trainer

    data_dir, resources = triage_pipeline(tmp_path, tiny_model_dir)
    instance = dg.DagsterInstance.ephemeral()
    write_eval_spec(data_dir)
    shutil.copy(REPO / "data" / "config" / "access.yaml", data_dir / "config" / "access.yaml")
    shutil.copy(REPO / "data" / "config" / "prices.yaml", data_dir / "config" / "prices.yaml")
    every_asset = [*DATA_ASSETS, *DATA_CHECKS, base_model, lora_adapter, eval_report,
                   promotion_gate]
    data = dg.materialize(every_asset, instance=instance, resources=resources,
                          selection=dg.AssetSelection.assets(*DATA_ASSETS))
    assert data.success
    dataset_meta = data.asset_materializations_for_node("dataset_version")[0].metadata
    version = dataset_meta["dataset_version"].value
    assert dataset_meta["ledger_event"].value.startswith("seq 1 ") and len(dataset_meta["manifest_sha256"].value) == 64

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
    assert metadata["ledger_event"].value.startswith("seq 2 ")  # dataset_published is seq 1
    lineage = json.loads((folder / "lineage.json").read_text())
    assert lineage["dataset_version"] == version
    assert lineage["base_model"]["path"] == str(tiny_model_dir)
    assert lineage["training_config"]["max_steps"] == 60 and lineage["training_config_hash"]
    assert lineage["libraries"]["trl"] and lineage["hardware"]["device"] == "cpu"
    assert lineage["launched_by"] == "alice"
    # the cost plan made before training (the sample's price table), next to what the run measured
    plan = metadata["plan"].value
    assert plan["parameters"] == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model_dir)
                                     .parameters())
    assert plan["training_tokens"] > 0 and plan["peak_memory_gb"]["total"] > 0
    against = lineage["metrics"]["plan"]["against_actual"]
    assert against["hardware"] == "CPU-2-cores" and against["actual_peak_memory_kind"] == "process RSS"
    assert metadata["actual_peak_memory_gb"].value == against["actual_peak_memory_gb"] > 0.1
    assert against["actual_cost"] == pytest.approx(against["actual_compute_hours"] * against["price_per_hour"],
                                                   rel=0.01)
    # the tiny model is outside the data folder: the adapter names it by its path (a packaged model: its Hub id)
    assert (folder / "README.md").read_text().startswith(f"---\nbase_model: {tiny_model_dir}")
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_model_dir)
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
    assert eval_meta["ledger_event"].value.startswith("seq 3 ")
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
    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / "README.md")  # rewritten by the evaluation; the adapter id is unchanged
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["eval_loss"] == round(tuned["eval_loss"], 4)
    assert results["format_compliance"] == round(tuned["format_compliance"], 4) and "evaluation" in card.text
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
    with peft_wrapping():
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(folder))
    assert model.peft_config["default"].r == 16

    erased = _audit_round_trip(data_dir, env, adapter_id, version)
    _erasure_retrain_round_trip(data_dir, env, instance, resources, run_config, adapter_id, erased)


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def _audit_round_trip(data_dir: Path, env: dict, adapter_id: str, version: str) -> dict:
    """Lineage both ways, promotion, erasure, dossier and verify on the real run above."""
    import pyarrow.parquet as pq

    from fine_tune_assets.lib.common.hashing import sha256_file

    env = {**env, "FINE_TUNE_USER": "audrey"}  # the sample's auditor; promotion and erasure below as bob and dana
    raw = data_dir / "raw" / "tickets.jsonl"
    forward = json.loads(_cli(env, "lineage", "latest", "--json").stdout)
    assert forward["adapter"]["adapter_id"] == adapter_id
    dataset = forward["dataset_version"]
    assert dataset["version_id"] == version
    assert [(s["source_file"], s["source_sha256"]) for s in dataset["sources"]] == [("tickets.jsonl", sha256_file(raw))]
    assert dataset["scrub_policy"]["recognizers"] and dataset["scrub_policy"]["versions"]["presidio_analyzer"]
    assert {c["name"] for c in dataset["quality_checks"]} >= {"no_residual_pii", "minimum_examples"}
    assert forward["base_model"]["identity_hash"] and forward["training"]["config"]["max_steps"] == 60
    assert forward["evaluation"]["gate"]["passed"] is True
    assert [e["kind"] for e in forward["ledger_events"]] == ["dataset_published", "adapter_trained",
                                                             "evaluation_completed"]

    by_source = json.loads(_cli(env, "lineage", "--source", str(raw), "--json").stdout)
    assert [a["adapter_id"] for a in by_source["adapters"]] == [adapter_id]
    record = pq.read_table(data_dir / "datasets" / version / "train.parquet", columns=["record_id"])["record_id"][0]
    by_record = json.loads(_cli(env, "lineage", "--record", record.as_py()[:16], "--json").stdout)["records"][0]
    assert [v["version_id"] for v in by_record["versions"]] == [version]
    assert [a["adapter_id"] for a in by_record["adapters"]] == [adapter_id]

    _cli({**env, "FINE_TUNE_USER": "bob"}, "adapters", "promote", "latest", "--stage", "production", "--reason",
         "gate passed in test")
    erased = json.loads(_cli({**env, "FINE_TUNE_USER": "dana"}, "erase", "--record", record.as_py(), "--reason",
                             "DSR-7 in test", "--json").stdout)
    assert erased["affected_adapters"] == [adapter_id] and erased["new_version"] not in (None, version)
    assert erased["purged_staging"] and [r["source_file"] for r in erased["raw_locations"]] == ["tickets.jsonl"]
    for staged in (data_dir / "staging").glob("*/*/*.parquet"):  # ingest kept the raw text: gone
        assert record.as_py() not in pq.read_table(staged, columns=["record_id"])["record_id"].to_pylist(), staged
    cached = list((data_dir / "staging" / "cache").glob("*/*/part-*.parquet"))  # and from the per-record caches
    assert {part.parts[-3] for part in cached} == {"scrub", "validate", "residual_pii"}
    for part in cached:
        assert record.as_py() not in pq.read_table(part, columns=["key"])["key"].to_pylist(), part
    new_train = (data_dir / "datasets" / erased["new_version"] / "train.jsonl").read_text().splitlines()
    old_train = (data_dir / "datasets" / version / "train.jsonl").read_text().splitlines()
    assert len(new_train) == len(old_train) - 1 and set(new_train) < set(old_train)
    listed = json.loads(_cli(env, "adapters", "list", "--json").stdout)
    assert listed[0]["needs_retraining"] is True and listed[0]["stages"] == ["production"]
    assert _cli(env, "verify").stdout.startswith("intact:")
    dossier = _cli(env, "dossier", "latest").stdout
    for section in ("Identity", "Data", "De-identification", "Quality gates", "Training", "Evaluation",
                    "Operations", "Approvals", "Integrity"):
        assert f". {section}" in dossier, section
    assert "NEEDS RETRAINING" in dossier and erased["request_id"] in dossier and "production" in dossier
    assert adapter_id in dossier and version in dossier and "no_residual_pii" in dossier
    assert "held: trained by alice, promoted by bob" in dossier  # the four-eyes rule on a real run
    assert "plan: peak GPU memory, estimated before training" in dossier  # planned against actual
    assert "actual: estimated cost of this run" in dossier and "CPU-2-cores" in dossier
    html = data_dir / "dossier.html"
    _cli(env, "dossier", adapter_id[:12], "--format", "html", "--output", str(html))
    assert html.read_text().startswith("<!DOCTYPE html>") and "<script" not in html.read_text()
    return erased


def _erasure_retrain_round_trip(data_dir: Path, env: dict, instance, resources: dict, training: dict,
                                champion: str, erased: dict) -> None:
    """The erasure above flagged the adapter in production: the erasure sensor asks for a retrain on the
    version without the erased record; that run trains, is compared with the production adapter
    (champion/challenger), is promoted to staging (never production), and its dossier names the erasure."""
    from fine_tune_assets.defs.evaluation.champion_challenger import champion_challenger
    from fine_tune_assets.defs.monitoring.sensors import erasure_retrain

    tick = erasure_retrain.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources))
    [request] = tick.run_requests
    config = {**request.run_config, "ops": {"lora_adapter": {"config": {
        **training["ops"]["lora_adapter"]["config"], **request.run_config["ops"]["lora_adapter"]["config"]}}}}
    run = dg.materialize([lora_adapter, eval_report, promotion_gate, champion_challenger], instance=instance,
                         resources=resources, run_config=config, tags=request.tags, raise_on_error=False)
    adapter_meta = run.asset_materializations_for_node("lora_adapter")[0].metadata
    challenger = adapter_meta["adapter_id"].value
    assert challenger != champion and adapter_meta["dataset_version"].value == erased["new_version"]
    assert adapter_meta["trigger"].value == "erasure"
    lineage = json.loads((Path(adapter_meta["path"].value) / "lineage.json").read_text())
    assert lineage["trigger"]["erasure_request"] == erased["request_id"]
    assert lineage["launched_by"].startswith("sensor:erasure")  # the sensor, which then promotes it to staging

    report_path = Path(run.asset_materializations_for_node("eval_report")[0].metadata["report_json"].value)
    verdict = json.loads(report_path.read_text())["champion"]
    assert verdict["champion_adapter_id"] == champion
    overall, new = verdict["scopes"]["overall"], verdict["scopes"]["new_records"]
    assert overall["n"] >= 3 and overall["champion"] is not None and overall["challenger"] is not None
    assert new["n"] == 0 and "new_records: format_compliance not measurable (0 records)" in verdict["reasons"]
    checks = {c.check_name: c for c in run.get_asset_check_evaluations()}
    assert checks["champion_challenger"].passed == verdict["passed"] is True, verdict["reasons"]
    assert checks["champion_challenger"].metadata["auto_promotion"].value == "promoted to staging"
    listed = {a["adapter_id"]: a for a in json.loads(_cli(env, "adapters", "list", "--json").stdout)}
    assert listed[challenger]["stages"] == ["staging"] and listed[champion]["stages"] == ["production"]
    dossier = _cli(env, "dossier", challenger[:12]).stdout
    assert f"erasure request {erased['request_id']}" in dossier and "sensor:erasure" in dossier
    assert f"PASSED against {champion[:12]}" in dossier
