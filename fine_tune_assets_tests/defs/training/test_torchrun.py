"""lora_adapter in two processes under torchrun (gloo on CPU, the tiny model): the multi-process path a
GPU node runs, exercised for real. Rank 0 alone reports to Dagster and publishes; a kill mid-training
(rank 0 dies right after a checkpoint, torchrun tears the other rank down) is resumed by the next run."""

import json
import math
from pathlib import Path

import dagster as dg
import pytest

from fine_tune_assets.defs.training.base_model import base_model
from fine_tune_assets.defs.training.lora_adapter import lora_adapter
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.ledger import read_events
from fine_tune_assets.lib.training.callbacks import CRASH_AFTER_STEP_ENV
from fine_tune_assets_tests.factories import DATA_ASSETS, DATA_CHECKS, triage_pipeline

pytestmark = pytest.mark.slow  # trains the tiny model in two processes, twice


def test_lora_adapter_in_two_processes_resumes_after_a_kill(tmp_path, tiny_model_dir, monkeypatch):
    data_dir, resources = triage_pipeline(tmp_path, tiny_model_dir)
    instance = dg.DagsterInstance.ephemeral()
    assets = [*DATA_ASSETS, *DATA_CHECKS, base_model, lora_adapter]
    assert dg.materialize(assets, instance=instance, resources=resources,
                          selection=dg.AssetSelection.assets(*DATA_ASSETS)).success
    run_config = {"ops": {"lora_adapter": {"config": {
        "max_steps": 6, "per_device_batch_size": 2, "gradient_accumulation_steps": 1, "save_steps": 2,
        "learning_rate": 3e-3, "nproc_per_node": 2, "device": "cpu"}}}}
    training = dg.AssetSelection.assets(base_model, lora_adapter)

    monkeypatch.setenv(CRASH_AFTER_STEP_ENV, "4")  # rank 0 SIGKILLs itself once checkpoint-4 is written
    killed = dg.materialize(assets, instance=instance, resources=resources, run_config=run_config,
                            selection=training, raise_on_error=False)
    assert not killed.success
    assert not killed.asset_materializations_for_node("lora_adapter")
    monkeypatch.delenv(CRASH_AFTER_STEP_ENV)

    resumed = dg.materialize(assets, instance=instance, resources=resources, run_config=run_config,
                             selection=training)
    assert resumed.success
    [materialization] = resumed.asset_materializations_for_node("lora_adapter")  # rank 0's report only
    metadata = materialization.metadata
    assert metadata["world_size"].value == 2 and metadata["steps"].value == 6
    assert metadata["resumed_from_step"].value == 4
    assert math.isfinite(metadata["train_loss"].value) and math.isfinite(metadata["eval_loss"].value)
    logs = [e.user_message for e in instance.all_logs(resumed.run_id) if e.user_message]
    assert any("world size 2" in m for m in logs), "rank 0 reports the process count through Pipes"
    assert any("resuming from" in m for m in logs)

    paths = DataPaths(data_dir)
    adapter_id = metadata["adapter_id"].value
    assert [p.name for p in paths.adapters.iterdir() if not p.name.startswith(".")] == [adapter_id]
    with connect(paths.registry, read_only=True) as con:
        trained = [e for e in read_events(con) if e["kind"] == "adapter_trained"]
        assert con.execute("SELECT count(*) FROM adapters").fetchone()[0] == 1
    assert [e["subject"] for e in trained] == [adapter_id]
    metrics = json.loads((Path(metadata["path"].value) / "training_metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["trained_tokens"] > 0
