"""Four processes, 50 registry operations each (publish, register, promote, erase, mixed), on each backend:
nothing fails on a lock, no version is registered twice, the ledger's chain verifies, and every
operation is accounted for by exactly the ledger events it should have written."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time

from fine_tune_assets.lib.audit.verify import verify_all
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.ledger import read_events
from fine_tune_assets_tests.factories import publish_test_dataset
from fine_tune_assets_tests.lib.registry.concurrency_worker import seed_conversations

WORKERS, OPS = 4, 50
LOCK_WORDS = ("lock", "busy", "deadlock", "could not serialize", "timeout")


def test_four_processes_of_mixed_operations(tmp_path, registry_backend):
    paths = DataPaths.from_env(tmp_path / "data")
    seed_version = publish_test_dataset(paths, tmp_path, seed_conversations(WORKERS * OPS))
    started = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "fine_tune_assets_tests.lib.registry.concurrency_worker",
                               str(paths.root), str(w), str(OPS), str(tmp_path / f"ops-{w}.jsonl")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for w in range(WORKERS)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    elapsed = time.monotonic() - started
    assert [p.returncode for p in procs] == [0] * WORKERS, outputs
    ops = [json.loads(line) for w in range(WORKERS)
           for line in (tmp_path / f"ops-{w}.jsonl").read_text().splitlines()]
    assert len(ops) == WORKERS * OPS  # every operation ran and reported

    failed = [o for o in ops if not o["ok"]]
    on_locks = [o for o in failed if any(w in o["message"].lower() for w in LOCK_WORDS)]
    assert on_locks == [], on_locks
    assert failed == [], [(o["kind"], o["error"], o["message"]) for o in failed]
    done = collections.Counter(o["kind"] for o in ops if not o.get("skipped"))

    with connect(paths.registry, read_only=True) as con:
        events = read_events(con)
        versions = [v for (v,) in con.execute("SELECT version_id FROM dataset_versions").fetchall()]
        n_adapters = con.execute("SELECT count(*) FROM adapters").fetchone()[0]
        n_stage_rows = con.execute("SELECT count(*) FROM adapter_stages").fetchone()[0]
        n_requests = con.execute("SELECT count(DISTINCT request_id) FROM erasures").fetchone()[0]
    kinds = collections.Counter(e["kind"] for e in events)

    # no duplicate versions: one row and one dataset_published event per version, one folder each
    published = [e["subject"] for e in events if e["kind"] == "dataset_published"]
    assert len(published) == len(set(published)) == len(versions) == len(set(versions))
    assert sorted(p.name for p in paths.datasets.iterdir() if not p.name.startswith(".")) == sorted(versions)
    # the four publishes of each shared key: one version, created by exactly one of them
    by_key = collections.defaultdict(list)
    for o in ops:
        if o["kind"] == "publish":
            by_key[o["key"]].append(o["version"])
    assert all(len(set(vs)) == 1 for vs in by_key.values()), by_key
    created_by_erasure = sum(o["created"] for o in ops if o["kind"] == "erase")
    assert len(versions) == 1 + len(by_key) + created_by_erasure  # the seed, each key, erasure re-publications

    # every operation is accounted for by its ledger events
    registered = [o["adapter"] for o in ops if o["kind"] == "register"]
    assert kinds["adapter_trained"] == n_adapters == len(set(registered)) == done["register"]
    assert kinds["evaluation_completed"] == done["register"]
    promoted = [o for o in ops if o["kind"] == "promote" and not o.get("skipped")]
    assert kinds["promotion"] == n_stage_rows == len(promoted)
    assert sorted(o["seq"] for o in promoted) == list(range(1, len(promoted) + 1))  # a linear stage history
    assert kinds["erasure"] == n_requests == done["erase"]
    assert sum(kinds.values()) == len(events)

    # the chain is linear and verifies, with every registry row covered
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    result = verify_all(paths)
    assert result["ok"], result["problems"]
    backend = "postgresql" if registry_backend else "duckdb"
    print(f"{backend}: {len(ops)} operations by {WORKERS} processes in {elapsed:.1f} s, "
          f"{len(events)} ledger events, {len(versions)} dataset versions ({seed_version[:8]} seed)")
