"""Wall time and peak memory of each data stage as the landing folder grows (10k, 100k, 1M messages).

    python bench/growth.py --sizes 10000 100000 [--out docs/results/growth.json]
    python bench/growth.py --sizes 1000000 --merge   # adds 1M to the file, keeping 10k and 100k

For each size: a landing folder from ``bench/landing.py``, then each data asset materialized by the real
Dagster code, one stage per process (``raw_conversations``, ``scrubbed_conversations``,
``validated_conversations`` with its blocking checks, the GX suite among them, and ``dataset_version``), on
one persistent instance so that each stage finds its input the way a run does. Per stage: wall time
(process start included: ``startup_s`` measures an empty one) and peak RSS, the largest of the stage's
process and its children (a scrub worker, say), from ``wait4``. ``--stage`` is the child's entry point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("raw_conversations", "scrubbed_conversations", "validated_conversations", "dataset_version")


def run_stage(stage: str, data_dir: Path) -> None:
    """In the child: materialize one data asset (with its checks) on $DAGSTER_HOME's instance."""
    import dagster as dg

    from fine_tune_assets.defs.data.dataset import dataset_version
    from fine_tune_assets.defs.data.ingest import raw_conversations
    from fine_tune_assets.defs.data.quality_gates import validated_conversations_checks
    from fine_tune_assets.defs.data.scrub import scrubbed_conversations
    from fine_tune_assets.defs.data.validate import validated_conversations
    from fine_tune_assets.defs.resources import PipelineResource

    assets = [raw_conversations, scrubbed_conversations, validated_conversations, dataset_version,
              *validated_conversations_checks]
    if stage == "startup":
        return
    selection = dg.AssetSelection.assets(stage)
    if stage == "validated_conversations":
        selection = selection | dg.AssetSelection.checks_for_assets(stage)
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(assets, instance=instance, selection=selection, raise_on_error=False,
                                resources={"pipeline": PipelineResource(data_dir=str(data_dir),
                                                                        quarantine_rate_ceiling=1.0)})
    if not result.success:
        sys.exit(f"{stage} failed")


def measure(stage: str, data_dir: Path, home: Path) -> dict:
    """Run one stage in a child process: wall seconds and peak RSS (MiB) of it and its descendants."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "FINE_TUNE_DATA_DIR": str(data_dir)}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, __file__, "--stage", stage, "--data-dir", str(data_dir)], env=env)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage} failed on {data_dir}")
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024)}


def counts(data_dir: Path) -> dict:
    from fine_tune_assets.lib.common.paths import DataPaths
    from fine_tune_assets.lib.registry.connection import connect
    from fine_tune_assets.lib.registry.queries import dataset_versions

    with connect(DataPaths(data_dir).registry_file, read_only=True) as con:
        row = dataset_versions(con)[0]
    return {k: row[k] for k in ("input_records", "accepted", "quarantined", "n_train", "n_eval")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "growth.json")
    parser.add_argument("--merge", action="store_true", help="keep the other sizes already in --out")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        run_stage(args.stage, args.data_dir)
        return
    sys.path.insert(0, str(REPO / "bench"))
    from landing import build

    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "sizes": []}
    if args.merge and args.out.exists():  # keep the other sizes of an earlier run; this run's sizes replace theirs
        earlier = json.loads(args.out.read_text())["sizes"]
        results["sizes"] = [e for e in earlier if e["target_messages"] not in args.sizes]
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as scratch:
            data_dir, home = Path(scratch) / "data", Path(scratch) / "home"
            home.mkdir()
            shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
            landing = build(size, data_dir)
            shutil.copytree(REPO / "data" / "config", data_dir / "config")
            if (REPO / "data" / "models").is_dir():  # the tokenizer conversion is a one-time cost, not growth
                (data_dir / "models").symlink_to(REPO / "data" / "models", target_is_directory=True)
            os.environ.pop("FINE_TUNE_REGISTRY_URL", None)  # the embedded DuckDB file: one machine
            entry = {"target_messages": size, **landing, "startup_s": measure("startup", data_dir, home)["seconds"],
                     "stages": {}}
            for stage in STAGES:
                entry["stages"][stage] = measure(stage, data_dir, home)
                print(f"{size:>9,} {stage:<26} {entry['stages'][stage]}", file=sys.stderr, flush=True)
            entry["counts"] = counts(data_dir)
            results["sizes"].append(entry)
            results["sizes"].sort(key=lambda e: e["target_messages"])
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")  # after each size: a later failure keeps it
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
