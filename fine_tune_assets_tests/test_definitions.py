"""The code location loads, validates, and the raw-files sensor behaves."""

import os
import subprocess

import dagster as dg

from fine_tune_assets.definitions import defs
from fine_tune_assets.defs.ingest.sensors import new_raw_files
from fine_tune_assets.defs.resources import DataPipelineResource

from .conftest import REPO


def test_definitions_validate_with_the_dagster_cli(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run([str(REPO / ".venv" / "bin" / "dagster"), "definitions", "validate", "-m",
                           "fine_tune_assets.definitions"], capture_output=True, text=True, cwd=REPO, timeout=180,
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]


def test_data_job_covers_the_data_assets_and_checks():
    job = defs.resolve_job_def("data_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert keys == {"raw_conversations", "scrubbed_conversations", "validated_conversations", "dataset_version"}
    checks = {c.name for c in job.asset_layer.asset_graph.asset_check_keys}
    assert checks == {"expectation_suite", "no_residual_pii", "quarantine_rate", "minimum_examples"}


def test_sensor_requests_a_run_once_per_content(tmp_path):
    (tmp_path / "raw").mkdir()
    resource = DataPipelineResource(data_dir=str(tmp_path))
    ctx = dg.build_sensor_context(resources={"pipeline": resource})
    assert isinstance(new_raw_files(ctx), dg.SkipReason)
    (tmp_path / "raw" / "a.jsonl").write_text('{"messages": []}\n')
    first = new_raw_files(ctx)
    assert isinstance(first, dg.RunRequest)
    ctx = dg.build_sensor_context(resources={"pipeline": resource}, cursor=ctx.cursor)
    assert isinstance(new_raw_files(ctx), dg.SkipReason)
    (tmp_path / "raw" / "a.jsonl").write_text('{"messages": [1]}\n')
    second = new_raw_files(ctx)
    assert isinstance(second, dg.RunRequest) and second.run_key != first.run_key
