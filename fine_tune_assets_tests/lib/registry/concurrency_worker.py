"""One of the processes of ``test_concurrency``: ``n`` registry operations, mixed, each outcome a JSON line.

    python -m fine_tune_assets_tests.lib.registry.concurrency_worker DATA_DIR WORKER N OUT.jsonl

Operation ``j`` of worker ``i`` is ``KINDS[(i + j) % 4]``:
- ``publish``: a dataset whose content is keyed by ``j // 4`` only, so the four workers publish every key,
  at about the same moment: exactly one of them may create the version;
- ``register``: an adapter with weights of its own, and a passing evaluation of it;
- ``promote``: this worker's newest adapter to ``staging``;
- ``erase``: one record of the seed version (``seed_conversations``), a different one per operation.
An error is recorded with its type and message, never raised: the test judges them.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

KINDS = ("publish", "register", "promote", "erase")


def shared_conversations(key: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"shared {key} question {n}"},
             {"role": "assistant", "content": f"shared {key} answer {n}"}] for n in range(6)]


def seed_conversations(n: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"seed question {k}"}, {"role": "assistant", "content": f"seed answer {k}"}]
            for k in range(n)]


def erase_target(worker: int, j: int, ops: int) -> int:
    """The seed record operation ``j`` of ``worker`` erases: distinct across all workers and operations."""
    return worker * ops + j


def run(data_dir: Path, worker: int, ops: int, out: Path) -> None:
    from fine_tune_assets.lib.audit.erasure import erase
    from fine_tune_assets.lib.audit.promotion import promote
    from fine_tune_assets.lib.common.hashing import record_id_for
    from fine_tune_assets.lib.common.paths import DataPaths
    from fine_tune_assets_tests.factories import (
        publish_test_adapter,
        publish_test_dataset,
        record_test_evaluation,
    )

    paths = DataPaths(data_dir)
    scratch = data_dir.parent / f"worker-{worker}"
    scratch.mkdir(exist_ok=True)
    seed = seed_conversations(4 * ops)
    mine: list[str] = []
    with out.open("w") as log:
        for j in range(ops):
            kind = KINDS[(worker + j) % 4]
            outcome: dict = {"worker": worker, "op": j, "kind": kind}
            try:
                if kind == "publish":
                    before = len(list(paths.datasets.iterdir())) if paths.datasets.exists() else 0
                    version = publish_test_dataset(paths, scratch, shared_conversations(j // 4))
                    outcome.update(key=j // 4, version=version, folders_before=before)
                elif kind == "register":
                    version = publish_test_dataset(paths, scratch, shared_conversations(0))
                    adapter_id = publish_test_adapter(paths, scratch, version, f"w-{worker}-{j}".encode())
                    record_test_evaluation(paths, adapter_id, version)
                    mine.append(adapter_id)
                    outcome.update(adapter=adapter_id)
                elif kind == "promote":
                    if not mine:
                        outcome.update(skipped="no adapter registered by this worker yet")
                    else:
                        row = promote(paths.registry, mine[-1], "staging", f"worker {worker} op {j}",
                                      user=f"worker-{worker}")
                        outcome.update(adapter=mine[-1], seq=row["seq"])
                else:
                    record = record_id_for(seed[erase_target(worker, j, ops)])
                    result = erase(paths, f"DSR worker {worker} op {j}", record_refs=[record],
                                   user=f"worker-{worker}")
                    outcome.update(request=result.request_id, created=result.new_version_created,
                                   new_version=result.new_version)
                outcome["ok"] = True
            except Exception as exc:  # recorded for the test to judge
                outcome.update(ok=False, error=type(exc).__name__, message=str(exc),
                               trace=traceback.format_exc(limit=4))
            log.write(json.dumps(outcome) + "\n")
            log.flush()


if __name__ == "__main__":
    run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
