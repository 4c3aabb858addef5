"""The cookbook-style report of a chat JSONL file (``fine-tune-assets validate``).

Same keys and logic as OpenAI's "Data preparation and analysis for chat model fine-tuning"
notebook (format errors, missing system / user messages, token distributions, examples over the
limit, billable tokens x default epochs), with tokens counted by the project's base-model
tokenizer and chat template instead of tiktoken, and lines that are not JSON reported with their
line numbers instead of crashing.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from ..common.jsonl import iter_json_lines
from ..models.base_model import count_chat_tokens
from .chat_format import COOKBOOK_FORMAT_ERRORS, format_errors

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


def default_epochs(n_examples: int) -> int:
    """OpenAI's rule for the default number of epochs."""
    if n_examples == 0:
        return TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def distribution(values: list[int]) -> dict:
    if not values:
        return {"min": None, "max": None, "mean": None, "median": None, "p5": None, "p95": None}
    ordered = sorted(values)

    def pct(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"min": ordered[0], "max": ordered[-1], "mean": round(statistics.fmean(ordered), 1),
            "median": statistics.median(ordered), "p5": pct(0.05), "p95": pct(0.95)}


def analyze_file(path: str | Path, tokenizer, max_tokens: int = 4096, epochs: int | None = None,
                 price_per_million: float = 3.0, batch_size: int = 256) -> dict:
    format_counts: Counter = Counter()
    unreadable: list[dict] = []
    n_examples = n_missing_system = n_missing_user = 0
    messages_per_example: list[int] = []
    total_tokens: list[int] = []
    assistant_tokens: list[int] = []
    over_limit_lines: list[int] = []
    pending: list[tuple[int, list[dict]]] = []

    def flush() -> None:
        if not pending:
            return
        lines, conversations = zip(*pending)
        totals = count_chat_tokens(tokenizer, list(conversations))
        answers = [" ".join(m["content"] for m in c if m["role"] == "assistant") for c in conversations]
        answer_tokens = [len(ids) for ids in tokenizer(answers, add_special_tokens=False)["input_ids"]]
        for line, n, a in zip(lines, totals, answer_tokens):
            total_tokens.append(n)
            assistant_tokens.append(a)
            if n > max_tokens:
                over_limit_lines.append(line)
        pending.clear()

    for item in iter_json_lines(path):
        if item.error:
            unreadable.append({"line": item.line, "reason": item.error, "detail": item.detail})
            continue
        n_examples += 1
        errors = format_errors(item.value)
        format_counts.update(errors)
        if errors:
            continue
        messages = item.value["messages"]
        messages_per_example.append(len(messages))
        n_missing_system += not any(m["role"] == "system" for m in messages)
        n_missing_user += not any(m["role"] == "user" for m in messages)
        pending.append((item.line, [{"role": m["role"], "content": m["content"]} for m in messages]))
        if len(pending) >= batch_size:
            flush()
    flush()

    n_epochs = epochs or default_epochs(n_examples)
    billing_tokens = sum(min(max_tokens, n) for n in total_tokens)
    return {
        "file": str(path),
        "n_examples": n_examples,
        "format_errors": {code: format_counts[code] for code in COOKBOOK_FORMAT_ERRORS if format_counts[code]},
        "unreadable_lines": unreadable,
        "n_missing_system": n_missing_system,
        "n_missing_user": n_missing_user,
        "messages_per_example": distribution(messages_per_example),
        "total_tokens_per_example": distribution(total_tokens),
        "assistant_tokens_per_example": distribution(assistant_tokens),
        "max_tokens": max_tokens,
        "n_over_token_limit": len(over_limit_lines),
        "over_token_limit_lines": over_limit_lines,
        "billing": {
            "tokens_in_dataset": billing_tokens,
            "epochs": n_epochs,
            "billable_tokens": billing_tokens * n_epochs,
            "price_per_million_tokens": price_per_million,
            "estimated_cost": round(billing_tokens * n_epochs * price_per_million / 1e6, 4),
        },
    }


def has_errors(report: dict) -> bool:
    return bool(report["format_errors"] or report["unreadable_lines"])
