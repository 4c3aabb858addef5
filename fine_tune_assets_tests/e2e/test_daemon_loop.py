"""The closed loop under a real dagster-daemon: a shifted file dropped into raw/ is picked up by the
raw-arrival sensor once it settles, data_job publishes it and decides drift (a hard signal), the drift
sensor launches retrain_job, and a new adapter appears, trained on the drifted version, evaluated,
with the drift evaluation in its lineage and its dossier.

It runs on the shared deployment's configuration: the Dagster instance from deploy/dagster.postgres.yaml and
the registry, both in PostgreSQL (fresh databases on the tests' server), so the web-less team setup is
exercised end to end: sensors, the daemon's run queue, the training and evaluation workers writing the
registry through FINE_TUNE_REGISTRY_URL. (The embedded SQLite instance and DuckDB file are covered by the
browser test and the asset tests.)"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from fine_tune_assets.lib.common.paths import REGISTRY_URL_ENV, DataPaths
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets_tests.factories import (
    REPO,
    new_product_line,
    publish_test_adapter,
    publish_test_dataset,
    sample_conversations,
)
from fine_tune_assets_tests.registry_backends import drop_database, fresh_database, postgres_server

pytestmark = pytest.mark.slow
DEADLINE_S = 900


def _write_config(data: Path) -> None:
    """The repository's drift policy and answer format; the gate on eval loss (the tiny model's greedy
    answers are noise after a short training; its held-out loss drops reliably), short generations."""
    config = data / "config"
    config.mkdir(parents=True)
    for name in ("drift_policy.yaml", "triage_answer.schema.json"):
        shutil.copy(REPO / "data" / "config" / name, config / name)
    (config / "evaluation.yaml").write_text(
        "response_format: {json_schema: triage_answer.schema.json}\n"
        f"general_prompts: {REPO / 'data' / 'eval' / 'general_prompts.jsonl'}\n"
        "primary_metric: eval_loss\nmax_general_regression: 10.0\n"
        "max_new_tokens: 16\ngeneration_batch_size: 16\nexamples_in_report: 2\n")


def _runs(instance: dg.DagsterInstance, job: str) -> list:
    return list(instance.get_runs(filters=dg.RunsFilter(job_name=job)))


def _wait(what: str, done, deadline: float, logs: Path):
    while time.time() < deadline:
        value = done()
        if value:
            return value
        time.sleep(3)
    raise AssertionError(f"timed out waiting for {what}; daemon log tail:\n{logs.read_text()[-4000:]}")


@pytest.fixture
def team_deployment(tmp_path, monkeypatch):
    """A DAGSTER_HOME with deploy/dagster.postgres.yaml and the DAGSTER_PG_* and FINE_TUNE_REGISTRY_URL
    variables of two fresh PostgreSQL databases (dropped afterwards); yields the home."""
    from fine_tune_assets_tests.defs.test_instance import postgres_instance_env

    server = postgres_server()
    (instance_url, instance_db), (registry_url, registry_db) = fresh_database(server), fresh_database(server)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    for name, value in postgres_instance_env(instance_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(REGISTRY_URL_ENV, registry_url)
    try:
        yield home
    finally:
        drop_database(server, instance_db)
        drop_database(server, registry_db)


def test_a_shifted_file_ends_in_a_retrained_adapter(tmp_path, tiny_model_dir, team_deployment):
    home, data = team_deployment, tmp_path / "data"
    _write_config(data)
    paths, chats = DataPaths(data), sample_conversations()
    reference = publish_test_dataset(paths, tmp_path, chats[:300], eval_fraction=0.1)
    publish_test_adapter(paths, tmp_path, reference)  # the newest adapter: the drift reference
    # the repository's code location; the tiny model as the deployment's base model (sensor runs carry
    # no run config), so that the retrain takes seconds on a CPU
    env = {**os.environ, "DAGSTER_HOME": str(home), "FINE_TUNE_DATA_DIR": str(data),
           "FINE_TUNE_BASE_MODEL": str(tiny_model_dir)}
    bin_dir = Path(sys.executable).parent
    workspace = ["-w", str(REPO / "workspace.yaml")]
    for sensor in ("new_raw_files", "drift_on_new_data"):
        subprocess.run([str(bin_dir / "dagster"), "sensor", "start", sensor, *workspace], env=env, check=True,
                       capture_output=True, timeout=180)
    logs = tmp_path / "daemon.log"
    with open(logs, "w") as out:
        daemon = subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", *workspace], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + DEADLINE_S
        raw = data / "raw"
        raw.mkdir()
        rows = chats[300:480] + [new_product_line(i) for i in range(60)]  # a quarter: a new product line
        partial = raw / "export.jsonl.part"  # still being written: ignored
        partial.write_text("".join(json.dumps({"messages": m}) + "\n" for m in rows))
        partial.rename(raw / "export.jsonl")

        with dg.DagsterInstance.from_config(str(home)) as instance:
            data_run = _wait("data_job to succeed", lambda: next(
                (r for r in _runs(instance, "data_job") if r.status == dg.DagsterRunStatus.SUCCESS), None),
                deadline, logs)
            assert data_run.tags.get("dagster/sensor_name") == "new_raw_files"
            retrain = _wait("retrain_job to finish", lambda: next(
                (r for r in _runs(instance, "retrain_job") if r.is_finished), None), deadline, logs)
            assert retrain.status == dg.DagsterRunStatus.SUCCESS, logs.read_text()[-4000:]
            assert len(_runs(instance, "retrain_job")) == 1 and len(_runs(instance, "data_job")) == 1
            assert retrain.tags["fine_tune_assets/trigger"] == "drift"
            assert retrain.tags["dagster/sensor_name"] == "drift_on_new_data"
            candidate = retrain.tags["fine_tune_assets/drift_candidate"]
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)

    with connect(paths.registry, read_only=True) as con:
        drift = con.execute("SELECT evaluation_id, decision, candidate, event_seq, retrain_requested_at "
                            "FROM drift_evaluations").fetchall()
        adapters = con.execute("SELECT adapter_id, dataset_version, lineage FROM adapters "
                               "ORDER BY created_at").fetchall()
        evaluations = con.execute("SELECT adapter_id FROM evaluations").fetchall()
    [(evaluation_id, decision, evaluated, seq, requested)] = drift
    assert decision == "confirmed" and evaluated == candidate and requested is not None
    new_id, version, lineage = adapters[-1]
    assert len(adapters) == 2 and version == candidate and (new_id,) in evaluations
    trigger = json.loads(lineage)["trigger"]
    assert trigger["drift_evaluation"] == evaluation_id and trigger["drift_ledger_seq"] == str(seq)
    assert json.loads(lineage)["launched_by"] == "sensor:drift_on_new_data"  # the trainer the four-eyes rule sees
    dossier = subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", "dossier", new_id[:12]],
                             env=env, capture_output=True, text=True, timeout=300, check=True).stdout
    assert f"drift evaluation {evaluation_id} (ledger seq {seq})" in dossier
