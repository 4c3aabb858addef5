"""Memory of the two validate-side parts that hold state across the whole data set, at up to 1M messages.

    python bench/validate_memory.py [--records 18600 186000] [--out docs/results/validate_memory.json]

``bench/growth.py`` runs every stage for real but needs ~50 min of scrubbing on 2 cores for 1M messages;
these two parts do not depend on what scrubbing did, so they are measured here on synthetic input of the
sizes 100k and 1M messages give (5.4 messages a record, as the sample's mix):

* the near-duplicate index (``dedup.DuplicateFinder``) fed one fingerprint per record (random MinHash
  signatures: no near duplicates, so every record is kept and indexed, the worst case for memory);
* the Great Expectations suite (``expectations.run_suite``) over a validated file whose messages have the
  sample's lengths, once with the message table in batches of ``MESSAGES_PER_BATCH`` (the pipeline's way)
  and once whole (as before issue 13).

Each measurement runs in its own process: wall time and peak RSS (``wait4``), with an empty child's RSS
(the imports) given for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MESSAGES_PER_RECORD = 5.4


def write_validated(path: Path, records: int, seed: int = 5) -> int:
    """A validated file of ``records`` synthetic conversations; returns the number of messages."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    from fine_tune_assets.lib.data.records import RECORD_SCHEMA

    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    schema = RECORD_SCHEMA.append(pa.field("n_tokens", pa.int64()))
    messages_total = 0
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, records, 10_000):
            rows = []
            for i in range(start, min(records, start + 10_000)):
                turns = 2 * rng.choice((1, 2, 3)) + 1  # system + 1-3 exchanges: 5.4 on average with odd rows
                messages = [{"role": "system", "content": "You are the support agent of Halcyon Broadband."}]
                for t in range(1, turns):
                    messages.append({"role": "user" if t % 2 else "assistant",
                                     "content": " ".join(rng.choices(words, k=rng.randint(8, 80)))})
                messages_total += len(messages)
                rows.append({"record_id": f"{i:064x}", "messages_json": json.dumps(messages),
                             "source_file": "chats.jsonl", "source_sha256": "ab" * 32, "source_line": i + 1,
                             "source_format": "jsonl", "mapping": None, "n_tokens": 40 + i % 300})
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    return messages_total


def child(kind: str, records: int, path: str) -> None:
    """In the child: one measured part."""
    if kind == "index":
        import numpy as np

        from fine_tune_assets.lib.data.dedup import NUM_PERM, SIGNATURE_DTYPE, DuplicateFinder, Fingerprint

        rng = np.random.default_rng(3)
        finder = DuplicateFinder()
        for i in range(records):
            signature = rng.integers(0, 2**32 - 1, NUM_PERM, dtype=np.uint64).astype(SIGNATURE_DTYPE).tobytes()
            assert finder.check(f"{i:064x}", known=Fingerprint(f"{i:064x}", f"{i:064d}", signature)) is None
    elif kind in ("suite_batched", "suite_whole"):
        from fine_tune_assets.lib.data.expectations import run_suite

        per_batch = 200_000 if kind == "suite_batched" else 10**12
        outcomes = run_suite(Path(path), max_tokens=4096, messages_per_batch=per_batch)
        assert all(o.success for o in outcomes), [o for o in outcomes if not o.success]
    elif kind == "imports":
        import great_expectations  # noqa: F401

        import fine_tune_assets.lib.data.dedup
        import fine_tune_assets.lib.data.expectations  # noqa: F401


def measure(kind: str, records: int, path: Path) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, "--child", kind, "--n", str(records), "--path", str(path)])
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{kind} failed at {records} records")
    return {"seconds": round(time.perf_counter() - started, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="*", default=[18_600, 186_000])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "validate_memory.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n, args.path)
        return
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
               "sizes": []}
    with tempfile.TemporaryDirectory() as scratch:
        for records in args.records:
            path = Path(scratch) / f"validated-{records}.parquet"
            messages = write_validated(path, records)
            entry = {"records": records, "messages": messages, "file_mib": round(path.stat().st_size / 2**20, 1)}
            for kind in ("imports", "index", "suite_batched", "suite_whole"):
                entry[kind] = measure(kind, records, path)
                print(f"{records:>9,} records {kind:<14} {entry[kind]}", file=sys.stderr, flush=True)
            results["sizes"].append(entry)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
