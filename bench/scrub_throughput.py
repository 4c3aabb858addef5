"""Throughput of ``scrub_conversations`` against a naive per-message Presidio loop.

    .venv/bin/python bench/scrub_throughput.py [--conversations 1000] [--workers 2] [--policy PATH]

Messages: every message of ``data/raw/*.jsonl`` when there are any, else the 1,500 sentences of
Presidio's synthetic benchmark, used twice (the second copy tagged so that no text repeats), as
conversations of a shared system prompt + three turns, as chat exports look.

* naive: one ``AnalyzerEngine.analyze`` + one ``AnonymizerEngine.anonymize`` per message, in this
  process, with the same recognizers, model, thresholds and post-processing (same Scrubber class,
  only its batched analysis replaced by a per-message loop without cache), with Presidio's stock
  parts where the project has faster equivalents: the spaCy pipeline as the model ships it
  (sentences from the dependency parser, where the project runs ``senter``) and Presidio's
  ``LemmaContextAwareEnhancer`` (the project's ``IndexedContextEnhancer`` indexes its lookups).
* project: ``scrub_conversations(workers=N, batch_size=64)``: spaCy ``nlp.pipe`` batches,
  repeated texts analysed once, N spawned worker processes; wall time includes their start-up.

Both must report the same findings (counts per entity type). Prints messages/s and the ratio
and writes ``bench/results/scrub_throughput.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Importing the package sets its offline defaults. Presidio is imported inside functions: worker
# processes are spawned and re-import this module.
from fine_tune_assets.lib.data.scrub import load_policy, scrub_conversations  # noqa: E402 - after sys.path above

BENCH_DATA = ROOT / "bench" / "data" / "presidio_synth_dataset_v2.json"  # vendored, see its README.md
SYSTEM_PROMPT = (
    "You are the customer support assistant of Hanse Bank. Answer politely and concisely, never "
    "ask for full card numbers, and escalate fraud reports to a human agent."
)


def naive_scrubber(policy):
    """The same scrubber on Presidio's per-message path: ``AnalyzerEngine.analyze()`` once per
    text (no spaCy batching) and no cache of repeated texts."""
    from fine_tune_assets.lib.data.scrub import Scrubber

    class NaiveScrubber(Scrubber):
        def _analyze_pieces(self, pieces, batch_size):
            for text in pieces:
                yield self.analyzer.analyze(text=text, language="en")

    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

    naive = NaiveScrubber(policy, cache_size=0)
    naive.analyzer.context_aware_enhancer = LemmaContextAwareEnhancer()  # Presidio's own, not the indexed one
    nlp = naive.analyzer.nlp_engine.nlp["en"]
    if "senter" in nlp.pipe_names:  # the model's pipeline as it ships: sentences from the parser
        nlp.disable_pipe("senter")
        nlp.enable_pipe("parser")
    return naive


def load_conversations(n_conversations: int, source: str = "auto"):
    raw_files = sorted(glob.glob(str(ROOT / "data" / "raw" / "*.jsonl"))) if source in ("auto", "raw") else []
    conversations = []
    for path in raw_files:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                messages = record.get("messages") if isinstance(record, dict) else None
                if isinstance(messages, list) and messages:
                    conversations.append(messages)
    if conversations:
        return conversations[:n_conversations] if n_conversations else conversations, "data/raw/*.jsonl"
    sentences = [x["full_text"] for x in json.loads(BENCH_DATA.read_text(encoding="utf-8"))]
    texts = sentences + [f"{s} (case 2)" for s in sentences]
    roles = ["user", "assistant", "user"]
    for i in range(n_conversations):
        turns = [texts[(3 * i + j) % len(texts)] for j in range(3)]
        conversations.append([{"role": "system", "content": SYSTEM_PROMPT}] +
                             [{"role": r, "content": t} for r, t in zip(roles, turns)])
    return conversations, "presidio_synth_dataset_v2 sentences"


def main(argv=None) -> int:
    # Imported here, not at the top: spawned workers re-import this module, and the stages module
    # pulls in validation and dedup (about 0.45 s per worker) that the pipeline's workers never load.
    from fine_tune_assets.lib.data.stages import DEFAULT_MAX_RECORD_CHARS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=1000,
                    help="benchmark sentences: conversations to build; raw data: at most this many (0: all)")
    ap.add_argument("--source", choices=["auto", "raw", "bench"], default="auto",
                    help="auto: data/raw/*.jsonl when present, else the benchmark sentences")
    ap.add_argument("--max-record-chars", type=int, default=DEFAULT_MAX_RECORD_CHARS,
                    help="leave out conversations longer than this, as the pipeline's size guard does "
                         "before the PII pass (0: keep all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--policy", default=str(ROOT / "data" / "config" / "scrub_policy.yaml"),
                    help="scrub policy YAML (default: the sample company's, data/config/scrub_policy.yaml)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scrub_throughput.json"))
    args = ap.parse_args(argv)

    policy = load_policy(args.policy)
    conversations, source = load_conversations(args.conversations, args.source)
    if args.max_record_chars:
        before = len(conversations)
        conversations = [c for c in conversations
                         if sum(len(m["content"]) for m in c if isinstance(m.get("content"), str))
                         <= args.max_record_chars]
        source += f", without {before - len(conversations)} conversations over " \
                  f"{args.max_record_chars} characters (the pipeline's size guard)"
    n_messages = sum(len(c) for c in conversations)
    print(f"{len(conversations)} conversations, {n_messages} messages from {source}; "
          f"{os.cpu_count()} CPUs; policy {policy.hash[:12]}")

    t0 = time.perf_counter()
    naive = naive_scrubber(policy)
    naive.analyze("warm up, Anna Smith")
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive_counts: Counter = Counter()
    naive_texts = []
    for messages in conversations:
        result = naive.scrub_conversation(messages)
        naive_counts.update(result.entity_counts)
        naive_texts.append([m.get("content") for m in result.messages])
    t_naive = time.perf_counter() - t0
    del naive

    t0 = time.perf_counter()
    project_counts: Counter = Counter()
    project_texts = []
    for _, result in scrub_conversations(enumerate(conversations), policy, workers=args.workers,
                                         batch_size=args.batch_size):
        project_counts.update(result.entity_counts)
        project_texts.append([m.get("content") for m in result.messages])
    t_project = time.perf_counter() - t0

    same_counts = dict(naive_counts) == dict(project_counts)
    same_texts = naive_texts == project_texts
    naive_rate = n_messages / t_naive
    project_rate = n_messages / t_project
    ratio = project_rate / naive_rate
    print(f"\n{'':<10}{'seconds':>9}{'msg/s':>9}")
    print(f"{'naive':<10}{t_naive:>9.1f}{naive_rate:>9.0f}")
    print(f"{'project':<10}{t_project:>9.1f}{project_rate:>9.0f}   ({args.workers} workers, incl. start-up)")
    print(f"ratio {ratio:.2f}x; same findings per entity type: {same_counts}; identical output text: {same_texts}")
    print(f"findings: {dict(sorted(project_counts.items()))}")
    if not same_counts:
        print(f"naive:   {dict(sorted(naive_counts.items()))}")

    result = {
        "source": source,
        "conversations": len(conversations),
        "messages": n_messages,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "workers": args.workers,
        "batch_size": args.batch_size,
        "policy_hash": policy.hash,
        "engine_build_seconds": t_build,
        "naive": {"seconds": t_naive, "messages_per_second": naive_rate, "entity_counts": dict(naive_counts)},
        "project": {"seconds": t_project, "messages_per_second": project_rate,
                    "entity_counts": dict(project_counts)},
        "ratio": ratio,
        "same_entity_counts": same_counts,
        "identical_output": same_texts,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    runs = previous.get("runs", {}) if isinstance(previous, dict) else {}
    runs[source] = result
    out.write_text(json.dumps({"latest": result, "runs": runs}, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0 if same_counts else 1


if __name__ == "__main__":
    raise SystemExit(main())
