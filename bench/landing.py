"""Large synthetic landing folders with the sample's mix: chat JSONL, ticket CSV and Parquet (through the
sample's mapping), planted PII, bad lines, duplicates and near-duplicates.

    python bench/landing.py --messages 100000 --out /tmp/landing-100k

Each block is the sample generator (``scripts/make_sample_data.py``) run with its own seed, its files
renamed ``<name>.s<seed>.<ext>``: the same distribution as the committed sample, new conversations and PII
per block, so the data grows instead of repeating (repeats would only measure the duplicate filter).
Blocks are added until the raw files hold at least ``--messages`` messages (counted in the chat files'
parseable lines plus three messages per ticket row, as the mapping builds them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_SEED = 1_000_000  # far from the committed sample's seed and the drift bench's


def count_messages(raw: Path) -> int:
    """Messages in a sample block's raw files (unparseable lines count zero; ticket rows count three)."""
    import csv
    import io

    import pyarrow.parquet as pq

    total = 0
    for path in raw.iterdir():
        if path.suffix == ".jsonl":
            for line in path.read_bytes().splitlines():
                try:
                    total += len(json.loads(line).get("messages") or [])
                except (ValueError, AttributeError):
                    continue
        elif path.suffix == ".csv":
            rows = csv.reader(io.StringIO(path.read_bytes().decode("utf-8", "replace"), newline=""))
            total += 3 * max(0, sum(1 for _ in rows) - 1)  # ragged rows included: they are inputs too
        elif path.suffix == ".parquet":
            total += 3 * pq.read_metadata(path).num_rows
    return total


def _make_block(seed: int, scratch: Path) -> Path:
    """One run of the sample generator with ``seed`` into ``scratch/<seed>`` (a process: threads suffice)."""
    block = scratch / str(seed)
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_sample_data.py"), "--data-dir", str(block),
                    "--seed", str(seed)], check=True, capture_output=True)
    return block


def build(messages: int, out: Path, jobs: int | None = None) -> dict:
    """Write blocks under ``out`` (raw/ and mappings/) until it holds ``messages``; returns the counts.

    Blocks are generated ``jobs`` at a time (default: one per core; ~6 s each, so 1M messages is ~250 blocks)
    but kept in seed order up to the first that reaches ``messages``: the same folder as one at a time.
    """
    (out / "raw").mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    total, blocks = 0, 0
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(jobs) as pool:
        scratch = Path(tmp)
        while total < messages:
            seeds = range(FIRST_SEED + blocks, FIRST_SEED + blocks + jobs)
            for seed, block in zip(seeds, pool.map(lambda seed: _make_block(seed, scratch), seeds)):
                if total < messages:
                    total += count_messages(block / "raw")
                    for path in (block / "raw").iterdir():
                        shutil.move(str(path), out / "raw" / f"{path.stem}.s{seed}{path.suffix}")
                    if blocks == 0:
                        shutil.copytree(block / "mappings", out / "mappings", dirs_exist_ok=True)
                    blocks += 1
                    print(f"  block {blocks}: {total:,} messages", file=sys.stderr, flush=True)
                shutil.rmtree(block)
    return {"messages": total, "blocks": blocks, "files": len(list((out / "raw").iterdir())),
            "bytes": sum(p.stat().st_size for p in (out / "raw").iterdir())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(build(args.messages, args.out)))


if __name__ == "__main__":
    main()
