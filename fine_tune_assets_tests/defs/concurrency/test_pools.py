"""Training and evaluation are serialized: they share a pool, and the instance's pool limit really
holds a second run's step back under the in-process executor the jobs use."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from fine_tune_assets.definitions import defs as load_definitions
from fine_tune_assets.defs.keys import ACCELERATOR_POOL, EVAL_REPORT, LORA_ADAPTER
from fine_tune_assets_tests.defs.test_instance import INSTANCE_FILES, postgres_instance_env
from fine_tune_assets_tests.factories import REPO
from fine_tune_assets_tests.registry_backends import drop_database, fresh_database, postgres_server

PROBE = Path(__file__).with_name("pool_probe.py")


def test_training_and_evaluation_share_the_accelerator_pool():
    graph = load_definitions().resolve_asset_graph()
    for key in (LORA_ADAPTER, EVAL_REPORT):
        assert graph.get(key).pools == {ACCELERATOR_POOL}, key


def test_the_repository_instance_limits_the_pool_and_sensor_retrains(tmp_path):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 1
        limits = concurrency.run_queue_config.tag_concurrency_limits
        assert {"key": "fine_tune_assets/trigger", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 60


@pytest.fixture(params=sorted(INSTANCE_FILES))
def instance_home(request, tmp_path):
    """A DAGSTER_HOME with the repository's instance file (SQLite) or the shared deployment's (a fresh
    PostgreSQL database); yields (home, the environment its processes need)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(INSTANCE_FILES[request.param], home / "dagster.yaml")
    if request.param == "embedded":
        yield home, {}
        return
    server = postgres_server()
    url, name = fresh_database(server)
    try:
        yield home, postgres_instance_env(url)
    finally:
        drop_database(server, name)


def test_a_second_run_waits_for_the_pool_slot(tmp_path, instance_home):
    """A run holds the pool's slot; a second run started meanwhile on an instance configured like the
    repository's (or the shared deployment's, on PostgreSQL) is blocked until the first one's step ends
    (the Dagster CLI, two processes, one instance)."""
    home, instance_env = instance_home
    log = tmp_path / "probe.jsonl"
    env = {**os.environ, **instance_env, "DAGSTER_HOME": str(home), "POOL_PROBE_LOG": str(log),
           "PYTHONPATH": str(REPO)}
    dagster = Path(sys.executable).parent / "dagster"
    command = [str(dagster), "job", "execute", "-f", str(PROBE), "-j", "probe_job"]

    def start() -> subprocess.Popen:
        return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)

    runs = [start()]
    holding = Path(f"{log}.holding")
    deadline = time.time() + 180
    while not holding.exists() and runs[0].poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert holding.exists(), runs[0].communicate(timeout=60)[0][-3000:]
    runs.append(start())  # the first run holds the slot and waits until this one reports it is blocked
    outputs = [run.communicate(timeout=180)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [out[-3000:] for out in outputs]
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert second["start"] >= first["end"], (first, second)
    assert f"blocked by limit for pool {ACCELERATOR_POOL}" in outputs[1]
