"""The evaluation metrics as a reader sees them: label, kind, better direction, format and change.

One catalogue for every place that shows base vs fine-tuned numbers (the evaluation report and the audit
dossier), so a metric reads the same everywhere; ``PRIMARY_METRICS`` are those a spec may gate promotion on.
"""

from __future__ import annotations

import math

from ..common.render import NA, is_number, number, percent

PRIMARY_METRICS = {"format_compliance": True, "field_accuracy": True, "eval_loss": False}  # name -> higher is better
# Digits per kind of number; "pct" values are fractions shown as percentages (1 decimal).
DIGITS = {"loss": 4, "ppl": 2, "count": 1, "seconds": 1}
# (label, metrics key, kind, better direction or None when neither direction is an improvement)
METRICS = [
    ("eval loss", "eval_loss", "loss", "lower"),
    ("perplexity", "perplexity", "ppl", "lower"),
    ("format compliance", "format_compliance", "pct", "higher"),
    ("field accuracy", "field_accuracy", "pct", "higher"),
    ("domain-term recall", "domain_term_recall", "pct", "higher"),
    ("general-text loss (regression check)", "general_loss", "loss", "lower"),
    ("mean generated tokens", "mean_generated_tokens", "count", None),
    ("generation seconds", "generation_seconds", "seconds", "lower"),
]


def format_metric(value, kind: str) -> str:
    """A metric value in its kind's format; non-numbers are shown as they are rather than rejected."""
    return percent(value) if kind == "pct" else number(value, DIGITS[kind])


def metric_change(base, tuned, kind: str, better: str | None) -> tuple[str, str | None]:
    """Signed delta fine-tuned minus base (percentage points for rates) and whether it is better or worse."""
    if not (is_number(base) and is_number(tuned)):
        return NA, None
    delta = tuned - base
    text = f"{delta * 100:+.1f} pp" if kind == "pct" else f"{delta:+.{DIGITS[kind]}f}"
    if better is None or delta == 0 or math.isnan(delta):
        return text, None
    status = "better" if (delta < 0) == (better == "lower") else "worse"
    return f"{text} ({status})", status
