"""Messages/s of the scrub stage's two executors on the same input: the local process pool and Ray Data.

    .venv/bin/python bench/scrub_ray.py [--runs 3] [--workers 2] [--copies 1 3] [--policy PATH]

Input: the conversations ``bench/scrub_throughput.py`` uses (every chat of ``data/raw/*.jsonl``,
without those over the size guard), in each of ``--copies`` sizes: that many copies, each copy's
texts tagged so that no text repeats (the analysis cache would otherwise make copies free).

Each run scrubs every size with both executors, alternated, each started from nothing as the
pipeline starts them:

* local: ``scrub_conversations(workers=N, min_parallel=0)``: N spawned processes, each building an engine.
* ray: ``scrub_conversations(executor="ray", workers=N)`` with no Ray running: ``ray.init(num_cpus=N)``,
  N actors each building an engine, the run, ``ray.shutdown()``.

Per run and size: the wall time (everything included: msg/s) and the time to the first results.
Across sizes, the marginal rate (extra messages / extra seconds), which leaves every fixed cost out:
what a long input sees. Fixed costs are also measured apart on one conversation (so one worker):
each executor's whole start and end, and ``ray.init`` and ``ray.shutdown`` alone. The 1-min load
average goes with each run: on a shared machine, other work slows both. Every run must give the
output the local pool gave for that size. Writes ``bench/results/scrub_ray.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # scrub_throughput, next to this file

# Importing the package sets its offline defaults (RAY_USAGE_STATS_ENABLED=0 among them). Ray and
# Presidio are imported inside functions: the local pool's workers are spawned and re-import this module.
from fine_tune_assets.lib.data.scrub import load_policy, scrub_conversations  # noqa: E402 - after sys.path

DEFAULT_MAX_RECORD_CHARS = 200_000  # the pipeline's size guard (stages.DEFAULT_MAX_RECORD_CHARS)


def conversations(repeat: int) -> tuple[list, str]:
    from scrub_throughput import load_conversations

    base, source = load_conversations(0, "raw")
    base = [c for c in base
            if sum(len(m["content"]) for m in c if isinstance(m.get("content"), str)) <= DEFAULT_MAX_RECORD_CHARS]
    out = []
    for copy in range(repeat):
        tag = f" (copy {copy + 1})" if copy else ""
        out += [[{**m, "content": m["content"] + tag} if isinstance(m.get("content"), str) and tag else m
                 for m in c] for c in base]
    return out, f"{source} within the size guard, x{repeat}"


def scrub(convs, policy, workers: int, executor: str) -> dict:
    """One run: wall time and time to the first results, with the output to compare."""
    first: list[float] = []
    texts, counts = [], Counter()
    kwargs = {"min_parallel": 0} if executor == "local" else {}
    started = time.perf_counter()
    for _, result in scrub_conversations(enumerate(convs), policy, workers=workers, executor=executor,
                                         progress=lambda done: first or first.append(time.perf_counter()),
                                         **kwargs):
        texts.append([m.get("content") for m in result.messages])
        counts.update(result.entity_counts)
    wall = time.perf_counter() - started
    return {"seconds": wall, "first_results_s": first[0] - started, "texts": texts, "counts": counts}


def ray_init_and_shutdown(workers: int) -> tuple[float, float]:
    import logging

    import ray

    started = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    up = time.perf_counter()
    ray.shutdown()
    return up - started, time.perf_counter() - up


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each executor, alternated")
    ap.add_argument("--workers", type=int, default=2, help="processes (local) or actors (ray)")
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 3],
                    help="input sizes, in copies of the sample (texts tagged per copy)")
    ap.add_argument("--policy", default=str(ROOT / "data" / "config" / "scrub_policy.yaml"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scrub_ray.json"))
    args = ap.parse_args(argv)

    policy = load_policy(args.policy)
    inputs = {n: conversations(n) for n in args.copies}
    messages = {n: sum(len(c) for c in convs) for n, (convs, _) in inputs.items()}
    source = inputs[args.copies[0]][1].rsplit(",", 1)[0]
    print(f"{source}: " + ", ".join(f"x{n}: {len(inputs[n][0])} conversations, {messages[n]} messages"
                                    for n in args.copies) + f"; {os.cpu_count()} CPUs; {args.workers} workers; "
          f"policy {policy.hash[:12]}")

    one = inputs[args.copies[0]][0][:1]
    fixed = {"local_start_s": scrub(one, policy, args.workers, "local")["seconds"],
             "ray_start_s": scrub(one, policy, args.workers, "ray")["seconds"]}
    fixed["ray_init_s"], fixed["ray_shutdown_s"] = ray_init_and_shutdown(args.workers)
    print("fixed costs (one conversation, one worker): " + ", ".join(f"{k} {v:.1f}" for k, v in fixed.items()))

    runs: list[dict] = []
    reference: dict[int, tuple] = {}
    identical = True
    for run in range(args.runs):
        for n in args.copies:
            for executor in ("local", "ray"):
                load_before = os.getloadavg()[0]
                r = scrub(inputs[n][0], policy, args.workers, executor)
                same = (r.pop("texts"), r.pop("counts"))
                reference.setdefault(n, same)
                identical &= same == reference[n]
                r.update(run=run + 1, copies=n, executor=executor, messages=messages[n],
                         messages_per_second=messages[n] / r["seconds"], identical=same == reference[n],
                         load_average=round(max(load_before, os.getloadavg()[0]), 1))
                runs.append({k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()})
                print(f"run {run + 1} x{n} {executor:<6}{r['seconds']:>6.1f} s {r['messages_per_second']:>5.0f} msg/s; "
                      f"first results after {r['first_results_s']:.1f} s; load {r['load_average']}; "
                      f"identical: {r['identical']}")

    def pick(executor, n, key):
        return [r[key] for r in runs if r["executor"] == executor and r["copies"] == n]

    summary = {}
    small, big = min(args.copies), max(args.copies)
    for executor in ("local", "ray"):
        summary[executor] = {f"x{n}_messages_per_second": pick(executor, n, "messages_per_second") for n in args.copies}
        if big > small:  # per run: the extra messages of the big input over its extra seconds
            summary[executor]["marginal_messages_per_second"] = [
                round((messages[big] - messages[small]) / (tb - ts), 1)
                for ts, tb in zip(pick(executor, small, "seconds"), pick(executor, big, "seconds"))]
        print(f"{executor:<6}" + "; ".join(
            f"{k.removesuffix('_messages_per_second')} {min(v):.0f}-{max(v):.0f} (median {statistics.median(v):.0f})"
            for k, v in summary[executor].items()) + " msg/s")
    print(f"identical output in every run: {identical}")
    result = {
        "source": source, "messages": messages, "cpus": os.cpu_count(), "platform": platform.platform(),
        "workers": args.workers, "policy_hash": policy.hash,
        "fixed_costs_s": {k: round(v, 2) for k, v in fixed.items()},
        "summary": summary, "runs": runs, "identical_output": identical,
        "entity_counts": {n: dict(sorted(ref[1].items())) for n, ref in reference.items()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    by_input = previous.get("runs", {}) if isinstance(previous, dict) else {}
    by_input[f"{source}, x{'/'.join(map(str, args.copies))}, {args.workers} workers"] = result
    out.write_text(json.dumps({"latest": result, "runs": by_input}, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
