"""A snapshot of the asset graph: keys, groups, upstream keys, code versions, checks, jobs, sensors and resources.

Any change to the graph shows up in review as a diff of ``snapshots/asset_graph.json``. After an intended
change, rewrite the snapshot with ``UPDATE_SNAPSHOTS=1 make test`` (or pytest on this file) and commit it.
"""

import json
import os
from pathlib import Path

import pytest

from fine_tune_assets.definitions import defs as load_definitions

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def graph_snapshot() -> dict:
    repo = load_definitions().get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "upstream": sorted(k.to_user_string() for k in node.parent_keys),
            "code_version": node.code_version,
            "kinds": sorted(node.kinds),
            "checks": sorted(c.name for c in node.check_keys),
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda c: c.to_user_string()):
        spec = graph.get_check_spec(check_key)
        checks[check_key.to_user_string()] = {"blocking": spec.blocking}
    jobs = {}
    for job in sorted(repo.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):  # Dagster's implicit asset job
            continue
        layer = job.asset_layer
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in layer.executable_asset_keys),
            "checks": sorted(c.to_user_string() for c in layer.asset_graph.asset_check_keys),
        }
    sensors = {s.name: {"job": s.job_name, "default_status": s.default_status.value,
                        "minimum_interval_seconds": s.minimum_interval_seconds}
               for s in sorted(repo.sensor_defs, key=lambda s: s.name)}
    return {"assets": assets, "asset_checks": checks, "jobs": jobs, "sensors": sensors,
            "resources": sorted(repo.get_top_level_resources())}


def test_asset_graph_matches_the_snapshot():
    current = graph_snapshot()
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    if not SNAPSHOT.exists():
        pytest.fail(f"no snapshot at {SNAPSHOT}; create it with UPDATE_SNAPSHOTS=1")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, (
        "the asset graph changed; if intended, run UPDATE_SNAPSHOTS=1 pytest "
        f"{Path(__file__).name} and commit the snapshot diff")
