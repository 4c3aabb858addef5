"""Detection delay of the drift decision on a stream of 50-record files, as the pipeline sees them.

    .venv/bin/python bench/drift_delay.py [--streams 3] [--files 24] [--smoke]

Each file is a new dataset version; after each one ``drift_report`` evaluates the records new to the
reference that no earlier window judged (tumbling windows), with the history of earlier decisions,
exactly as ``evaluate_drift(history=...)`` does in the asset. Below 200 unjudged records the decision
is ``insufficient_data`` and the records wait for the next file.

Streams: the generator's other seeds through the real ingest, scrub and validate stages (as in
``drift_power.py``), 50 records a file. From the first file on, a share of each file is shifted (25%,
or 10% for the contamination stream); a clean stream measures how long it runs without a
confirmation. Reported per stream: records (and files) until the first signal and until
``confirmed``. The retraining request follows the confirmed decision at the ``drift_on_new_data``
sensor's next tick (every 30 s): no further records are needed, so "until the request" equals "until
confirmed" in records. Writes ``docs/results/drift_delay.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from drift_power import SHIFTS, pipeline_records  # noqa: E402 - the same shifts and data

from fine_tune_assets.lib.monitoring.drift import (  # noqa: E402
    CONFIRMED,
    DRIFT_DECISIONS,
    PastEvaluation,
    evaluate_drift,
)
from fine_tune_assets.lib.monitoring.policy import load_drift_policy  # noqa: E402

FILE = 50
OUT = ROOT / "docs" / "results" / "drift_delay.json"
PLAN = [("clean", None, 0.0), ("new_product_line", "new_product_line", 0.25),
        ("another_language", "another_language", 0.25), ("doubled_pii", "doubled_pii", 0.25),
        ("new_system_prompt", "new_system_prompt", 0.25), ("new_product_line@10%", "new_product_line", 0.10)]


def shift_chunk(chunk: list[dict], shift: str, share: float, rng: random.Random) -> list[dict]:
    """``share`` of the file's records in their shifted form (records a shift does not apply to, such
    as one naming no product, stay as they are and the next one is shifted instead)."""
    need, out = round(len(chunk) * share), []
    for r in chunk:
        new = SHIFTS[shift](r, rng) if need else None
        out.append(new if new is not None else r)
        need -= new is not None
    return out


def run_stream(reference: list[dict], pool: list[dict], shift: str | None, share: float, files: int,
               seed: int, policy, response_format) -> dict:
    """Feed ``files`` files of 50 records; return the decisions and the delays."""
    rng = random.Random(seed)
    order = rng.sample(pool, len(pool))
    history: list[PastEvaluation] = []
    candidate = list(reference)  # a dataset version holds the reference's records and everything since
    now = datetime(2026, 12, 1, tzinfo=UTC)
    steps, first_signal, confirmed = [], None, None
    for f in range(files):
        chunk = order[f * FILE:(f + 1) * FILE]
        if len(chunk) < FILE:
            break
        if shift:
            chunk = shift_chunk(chunk, shift, share, random.Random(seed * 1000 + f))
        candidate += chunk
        now += timedelta(hours=1)
        t = time.perf_counter()
        report = evaluate_drift(reference, candidate, policy, history=history, response_format=response_format,
                                now=now)
        seconds = time.perf_counter() - t
        records = (f + 1) * FILE
        flagged = [k for k, d in report.detectors.items() if d["flagged"]]
        steps.append({"file": f + 1, "records": records, "decision": report.decision, "window": report.n_window,
                      "flagged": flagged, "seconds": round(seconds, 2)})
        if report.decision != "insufficient_data":
            print(f"  file {f + 1:>2} ({records} records): {report.decision} window {report.n_window} "
                  f"{flagged} ({seconds:.1f} s)", flush=True)
        history.append(PastEvaluation(report.decision, frozenset(report.window_ids), now,
                                          retrain_requested=report.decision == CONFIRMED))
        if report.decision in DRIFT_DECISIONS and first_signal is None:
            first_signal = records
        if report.decision == CONFIRMED:
            confirmed = records
            break
    return {"steps": steps, "records_until_signal": first_signal, "records_until_confirmed": confirmed,
            "files_until_confirmed": None if confirmed is None else confirmed // FILE,
            "records_fed": steps[-1]["records"] if steps else 0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=3, help="streams (generator seeds) per scenario")
    ap.add_argument("--files", type=int, default=24, help="50-record files per stream at most")
    ap.add_argument("--policy", default=str(ROOT / "data" / "config" / "drift_policy.yaml"))
    ap.add_argument("--smoke", action="store_true", help="1 stream per scenario, 8 files")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    if args.smoke:
        args.streams, args.files = 1, 8

    from fine_tune_assets.lib.data.scrub import load_policy
    from fine_tune_assets.lib.evaluation.spec import load_eval_spec
    from fine_tune_assets.lib.models.base_model import DEFAULT_BASE_MODEL, load_tokenizer

    assert {s for _, s, _ in PLAN if s} <= set(SHIFTS)
    policy = load_drift_policy(args.policy)
    response_format = load_eval_spec(ROOT / "data" / "config" / "evaluation.yaml").response_format
    scrub_policy = load_policy(ROOT / "data" / "config" / "scrub_policy.yaml")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="drift-delay-") as tmp:
        tokenizer = load_tokenizer(DEFAULT_BASE_MODEL, str(ROOT / "data" / "models"))
        reference = pipeline_records(None, Path(tmp), tokenizer, scrub_policy)
        known = {r["record_id"] for r in reference}
        pools = []
        for s in range(1, args.streams + 1):
            records = pipeline_records(100 + s, Path(tmp), tokenizer, scrub_policy)
            pool = [r for r in records if r["record_id"] not in known]
            pools.append(pool)
            print(f"seed {100 + s}: {len(pool)} records through ingest, scrub and validate", flush=True)
    results: dict[str, list[dict]] = {}
    for name, shift, share in PLAN:
        results[name] = []
        for i, pool in enumerate(pools):
            print(f"{name}, stream {i + 1}", flush=True)
            results[name].append(run_stream(reference, pool, shift, share, args.files, 100 + i, policy,
                                            response_format))
    summary = {}
    for name, streams in results.items():
        delays = [s["records_until_confirmed"] for s in streams]
        summary[name] = {"streams": len(streams), "confirmed": sum(d is not None for d in delays),
                         "records_until_signal": [s["records_until_signal"] for s in streams],
                         "records_until_confirmed": delays, "records_fed": [s["records_fed"] for s in streams]}
    out = {"platform": platform.platform(), "policy": policy.policy_hash, "reference_records": len(reference),
           "file_records": FILE, "seconds": round(time.perf_counter() - t0, 1), "summary": summary,
           "streams": results}
    print(f"\n{'stream':<24} confirmed  records until signal / confirmed (per stream)")
    for name, s in summary.items():
        print(f"{name:<24} {s['confirmed']}/{s['streams']}        {s['records_until_signal']} / "
              f"{s['records_until_confirmed']} (fed {s['records_fed']})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
