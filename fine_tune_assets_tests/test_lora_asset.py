"""lora_adapter: trained in its own process through Dagster Pipes, tied to its dataset version."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from fine_tune_assets.definitions import data_assets
from fine_tune_assets.defs.resources import DataPipelineResource
from fine_tune_assets.defs.training.assets import base_model, lora_adapter
from fine_tune_assets.defs.validate.checks import validated_conversations_checks

from .test_training import triage_examples


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
    every_asset = [*data_assets, *validated_conversations_checks, base_model, lora_adapter]
    data = dg.materialize(every_asset, instance=instance, resources=resources,
                          selection=dg.AssetSelection.assets(*data_assets))
    assert data.success
    version = data.asset_materializations_for_node("dataset_version")[0].metadata["dataset_version"].value

    run_config = {"ops": {"lora_adapter": {"config": {"max_steps": 4, "per_device_batch_size": 4,
                                                      "gradient_accumulation_steps": 1, "save_steps": 2,
                                                      "learning_rate": 1e-3}}}}
    trained = dg.materialize(every_asset, instance=instance, resources=resources, run_config=run_config,
                             selection=dg.AssetSelection.assets(base_model, lora_adapter))
    assert trained.success
    metadata = trained.asset_materializations_for_node("lora_adapter")[0].metadata
    adapter_id = metadata["adapter_id"].value
    folder = Path(metadata["path"].value)
    assert folder.name == adapter_id and metadata["dataset_version"].value == version
    assert metadata["steps"].value == 4
    lineage = json.loads((folder / "lineage.json").read_text())
    assert lineage["dataset_version"] == version
    assert lineage["base_model"]["path"] == str(tiny_model_dir)
    assert lineage["training_config"]["max_steps"] == 4 and lineage["training_config_hash"]
    assert lineage["libraries"]["trl"] and lineage["hardware"]["device"] == "cpu"
    assert (folder / "README.md").read_text().startswith("---\nbase_model: tiny-llama")
    with duckdb.connect(str(data_dir / "registry.duckdb"), read_only=True) as con:
        row = con.execute("SELECT dataset_version, path FROM adapters WHERE adapter_id = ?", [adapter_id]).fetchone()
    assert row == (version, str(folder))
    logs = [e.user_message for e in instance.all_logs(trained.run_id) if e.user_message]
    assert any("step 4/4" in m for m in logs), "training progress reaches the Dagster run log"
    env = {**os.environ, "FINE_TUNE_DATA_DIR": str(data_dir)}
    listed = json.loads(subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", "adapters", "list", "--json"],
                                       capture_output=True, text=True, env=env, check=True).stdout)
    shown = json.loads(subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", "adapters", "show", "latest",
                                       "--json"], capture_output=True, text=True, env=env, check=True).stdout)
    assert listed[0]["adapter_id"] == shown["adapter_id"] == adapter_id
    assert shown["path"] == str(folder) and shown["dataset_version"] == version
    assert shown["lineage"]["training_config_hash"] == lineage["training_config_hash"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(folder))
    assert model.peft_config["default"].r == 16
