"""The evaluation report (base model vs fine-tuned adapter) as Markdown, as one HTML page, and its loss curve.

Plain Python with no Dagster import, so the assets, the CLI and the tests share one renderer. Both formats are
built from the same rows (``_rows``), so they never disagree on a number, and matplotlib is imported only by
``plot_loss_curve``, so rendering text needs no plotting stack. The report dict comes from the evaluation code;
every key is optional here: a missing or None value shows as "n/a" instead of failing the run that wrote it.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import quote

NA = "n/a"
PROMPT_CHARS = 400

# Digits per kind of number; "pct" values are fractions shown as percentages (1 decimal).
_DIGITS = {"loss": 4, "ppl": 2, "count": 1, "seconds": 1}
# (label, metrics key, kind, better direction or None when neither direction is an improvement)
_METRICS = [
    ("eval loss", "eval_loss", "loss", "lower"),
    ("perplexity", "perplexity", "ppl", "lower"),
    ("format compliance", "format_compliance", "pct", "higher"),
    ("field accuracy", "field_accuracy", "pct", "higher"),
    ("domain-term recall", "domain_term_recall", "pct", "higher"),
    ("general-text loss (regression check)", "general_loss", "loss", "lower"),
    ("mean generated tokens", "mean_generated_tokens", "count", None),
    ("generation seconds", "generation_seconds", "seconds", "lower"),
]
_ARROW = {"lower": " ↓", "higher": " ↑", None: ""}
_TRAINING = [("steps", "steps", "{:d}"), ("train seconds", "train_seconds", "{:.1f}"),
             ("trained tokens/s", "trained_tokens_per_s", "{:.1f}"), ("learning rate", "learning_rate", "{:g}"),
             ("per-device batch size", "per_device_batch_size", "{:d}"), ("config hash", "config_hash", "{}")]
_MARK = {True: "✓ compliant", False: "✗ not compliant", None: NA}


# ---------------------------------------------------------------- number formatting shared by both renderers

def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value) -> str:
    return NA if value is None else str(value)


def _fmt(value, kind: str) -> str:
    """A metric value in its kind's format; non-numbers are shown as they are rather than rejected."""
    if not _is_num(value):
        return _text(value)
    return f"{value * 100:.1f}%" if kind == "pct" else f"{value:.{_DIGITS[kind]}f}"


def _signed_pct(fraction) -> str:
    return f"{fraction * 100:+.1f}%" if _is_num(fraction) else _text(fraction)


def _change(base, tuned, kind: str, better: str | None) -> tuple[str, str | None]:
    """Signed delta fine-tuned minus base (percentage points for rates) and whether it is better or worse."""
    if not (_is_num(base) and _is_num(tuned)):
        return NA, None
    delta = tuned - base
    text = f"{delta * 100:+.1f} pp" if kind == "pct" else f"{delta:+.{_DIGITS[kind]}f}"
    if better is None or delta == 0 or math.isnan(delta):
        return text, None
    status = "better" if (delta < 0) == (better == "lower") else "worse"
    return f"{text} ({status})", status


def _truncate(text, limit: int = PROMPT_CHARS) -> str:
    text = _text(text)
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


# ---------------------------------------------------------------- the report as rows (format-neutral)

def _rows(report: dict) -> dict:
    """Everything both renderers show, as plain strings, so Markdown and HTML stay in step."""
    eval_set, config = report.get("eval_set") or {}, report.get("config") or {}
    metrics, gate = report.get("metrics") or {}, report.get("gate") or {}
    base, tuned = metrics.get("base") or {}, metrics.get("fine_tuned") or {}

    reasons = gate.get("reasons") or []
    reasons = "; ".join(map(str, reasons)) if isinstance(reasons, (list, tuple)) else str(reasons)
    passed = gate.get("passed")
    verdict = {True: "PROMOTION GATE PASSED", False: "PROMOTION GATE FAILED"}.get(passed, "PROMOTION GATE: n/a")

    fmt = config.get("response_format") or {}
    if isinstance(fmt, dict):
        fmt = f"{fmt.get('kind', NA)}: {fmt.get('name') or fmt.get('pattern') or NA}" if fmt else None
    identity = [("adapter id", report.get("adapter_id")), ("dataset version", report.get("dataset_version")),
                ("base model", report.get("base_model")), ("eval set sha256", eval_set.get("sha256")),
                ("split", eval_set.get("split")), ("examples", eval_set.get("n_examples")),
                ("format-applicable examples", eval_set.get("n_format_applicable")),
                ("general-text prompts", eval_set.get("n_general_prompts")), ("response format", fmt),
                ("max new tokens", config.get("max_new_tokens")), ("created at", report.get("created_at"))]

    primary = gate.get("primary_metric") or config.get("primary_metric")
    specs = list(_METRICS)
    fields = {**(base.get("field_accuracy_by_field") or {}), **(tuned.get("field_accuracy_by_field") or {})}
    at = [key for _, key, _, _ in specs].index("field_accuracy") + 1
    specs[at:at] = [(f"field accuracy ({name})", ("field_accuracy_by_field", name), "pct", "higher")
                    for name in fields]
    metric_rows = []
    for label, key, kind, better in specs:
        if isinstance(key, tuple):
            b, t = ((m.get(key[0]) or {}).get(key[1]) for m in (base, tuned))
        else:
            b, t = base.get(key), tuned.get(key)
        change, status = _change(b, t, kind, better)
        label += _ARROW[better] + (" (primary)" if key == primary else "")
        metric_rows.append((label, _fmt(b, kind), _fmt(t, kind), change, status))

    reg = report.get("regression") or {}
    regression = (f"{_text(reg.get('metric'))}: base {_fmt(reg.get('base'), 'loss')} → fine-tuned "
                  f"{_fmt(reg.get('fine_tuned'), 'loss')}, relative change {_signed_pct(reg.get('relative_change'))}"
                  f" vs threshold {_signed_pct(reg.get('threshold'))} → "
                  + {True: "PASSED", False: "FAILED"}.get(reg.get("passed"), NA)) if reg else NA

    training = report.get("training") or {}
    known = {key for _, key, _ in _TRAINING}
    train_rows = [(label, _safe_format(pattern, training.get(key))) for label, key, pattern in _TRAINING]
    train_rows += [(key, _text(value)) for key, value in training.items() if key not in known]

    examples = [{"prompt": _truncate(ex.get("prompt")), "reference": _text(ex.get("reference")),
                 "base": _text(ex.get("base")), "fine_tuned": _text(ex.get("fine_tuned")),
                 "base_mark": _MARK.get(ex.get("base_compliant"), NA),
                 "fine_tuned_mark": _MARK.get(ex.get("fine_tuned_compliant"), NA)}
                for ex in report.get("examples") or []]
    return {"title": f"Evaluation report: adapter {_text(report.get('adapter_id'))[:12]}", "passed": passed,
            "verdict": verdict, "reasons": reasons, "identity": [(k, _text(v)) for k, v in identity],
            "metrics": metric_rows, "regression": regression, "regression_passed": reg.get("passed"),
            "primary": primary, "training": train_rows, "examples": examples}


def _safe_format(pattern: str, value) -> str:
    try:
        return NA if value is None else pattern.format(value)
    except (TypeError, ValueError):  # e.g. a float step count: show it rather than fail the report
        return str(value)


# ---------------------------------------------------------------- Markdown

def _md(text: str) -> str:
    """Inline Markdown text, one line: pipes escaped for tables; only what could start an HTML tag or
    entity is escaped, so "<=" and "&" in gate reasons stay readable in the raw file."""
    text = re.sub(r"&(?=#?\w+;)", "&amp;", text)
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text).replace("|", "\\|").replace("\n", " ")


def _fence(text: str) -> str:
    """A fenced block whose fence is longer than any backtick run inside ``text``, so it cannot be closed early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}" if not text.endswith("\n") else f"{fence}text\n{text}{fence}"


def _md_table(header: tuple[str, ...], rows, align: str) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|",
            *("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows)]


def render_markdown(report: dict, loss_curve: str | None = None) -> str:
    """The report as Markdown; ``loss_curve`` is the PNG's file name next to the report (a relative link)."""
    r = _rows(report)
    out = [f"# {_md(r['title'])}", "", f"**{r['verdict']}**" + (f" — {_md(r['reasons'])}" if r["reasons"] else ""),
           "", "## Identity", "", *_md_table(("Field", "Value"), r["identity"], ("---", "---")),
           "", "## Metrics", "",
           *_md_table(("Metric", "Base", "Fine-tuned", "Change"), [m[:4] for m in r["metrics"]],
                      ("---", "---:", "---:", "---:")),
           "", "↓ lower is better, ↑ higher is better; changes are fine-tuned minus base (pp: percentage points).",
           "", "## Regression check", "", _md(r["regression"]), ""]
    if loss_curve:
        out += ["## Loss curve", "", f"![Training loss]({quote(loss_curve)})", ""]
    out += ["## Training", "", *_md_table(("Field", "Value"), r["training"], ("---", "---")), "", "## Examples", ""]
    if not r["examples"]:
        out += [NA, ""]
    for i, ex in enumerate(r["examples"], 1):
        out += [f"### Example {i}", "", "**Prompt**", "", _fence(ex["prompt"]), "", "**Reference**", "",
                _fence(ex["reference"]), "", f"**Base model** — {ex['base_mark']}", "", _fence(ex["base"]), "",
                f"**Fine-tuned** — {ex['fine_tuned_mark']}", "", _fence(ex["fine_tuned"]), ""]
    return "\n".join(out)


# ---------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { font-size: 1.15em; font-weight: bold; padding: 0.6em 1em; border-radius: 4px; }
.pass, .better { color: #146c2e; } .fail, .worse { color: #b3261e; }
.verdict.pass { background: #e6f4ea; } .verdict.fail { background: #fce8e6; } .verdict.na { background: #eee; }
table.examples { width: 100%; table-layout: fixed; }
table.examples th:first-child { width: 2em; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0.3em 0 0; font-size: 0.85em; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.9em; }
"""


def _e(text) -> str:
    return html.escape(_text(text), quote=True)


def _html_table(header: tuple[str, ...], rows) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdict_class(passed) -> str:
    return {True: "pass", False: "fail"}.get(passed, "na")


def render_html(report: dict, loss_curve: str | None = None, *, loss_curve_bytes: bytes | None = None) -> str:
    """The report as one self-contained page: inline CSS, no JavaScript, every report text escaped.

    The loss curve is embedded as a data: URI when ``loss_curve_bytes`` is given (the page survives being
    copied alone), else linked by its relative file name ``loss_curve``.
    """
    r = _rows(report)
    metric_rows = "".join(
        f"<tr><td>{_e(label)}</td><td class='num'>{_e(b)}</td><td class='num'>{_e(t)}</td>"
        f"<td class='num{' ' + status if status else ''}'>{_e(change)}</td></tr>"
        for label, b, t, change, status in r["metrics"])
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{_e(r['title'])}</title>",
        f"<style>{_CSS}</style></head><body>", f"<h1>{_e(r['title'])}</h1>",
        f"<p class='verdict {_verdict_class(r['passed'])}'>{_e(r['verdict'])}"
        + (f" — {_e(r['reasons'])}" if r["reasons"] else "") + "</p>",
        "<h2>Identity</h2>", _html_table(("Field", "Value"), r["identity"]),
        "<h2>Metrics</h2>", "<table><tr><th>Metric</th><th>Base</th><th>Fine-tuned</th><th>Change</th></tr>",
        metric_rows, "</table>",
        ("<p class='note'>↓ lower is better, ↑ higher is better; changes are fine-tuned minus base "
         "(pp: percentage points).</p>"),
        "<h2>Regression check</h2>",
        f"<p class='{_verdict_class(r['regression_passed'])}'>{_e(r['regression'])}</p>"]
    src = None
    if loss_curve_bytes:
        src = "data:image/png;base64," + base64.b64encode(loss_curve_bytes).decode("ascii")
    elif loss_curve:
        src = _e(quote(loss_curve))
    if src:
        parts += ["<h2>Loss curve</h2>", f'<img src="{src}" alt="Training loss curve">']
    parts += ["<h2>Training</h2>", _html_table(("Field", "Value"), r["training"]), "<h2>Examples</h2>"]
    if r["examples"]:
        parts.append("<table class='examples'><tr><th>#</th><th>Prompt</th><th>Reference</th>"
                     "<th>Base model</th><th>Fine-tuned</th></tr>")
        for i, ex in enumerate(r["examples"], 1):
            cells = [("", ex["prompt"]), ("", ex["reference"]), (ex["base_mark"], ex["base"]),
                     (ex["fine_tuned_mark"], ex["fine_tuned"])]
            parts.append(f"<tr><td>{i}</td>" + "".join(
                f"<td>{_mark_html(mark)}<pre>{_e(text)}</pre></td>" for mark, text in cells) + "</tr>")
        parts.append("</table>")
    else:
        parts.append(f"<p>{NA}</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _mark_html(mark: str) -> str:
    if not mark:
        return ""
    cls = "pass" if mark == _MARK[True] else "fail" if mark == _MARK[False] else "na"
    return f"<span class='{cls}'>{_e(mark)}</span>"


# ---------------------------------------------------------------- loss curve

def _finite(value) -> bool:
    return _is_num(value) and math.isfinite(value)


def plot_loss_curve(log_history: list[dict], path: Path, eval_points: dict[str, float] | None = None) -> Path | None:
    """Training loss (and any eval_loss) vs step as a PNG; None, writing nothing, when there is no loss to plot.

    Uses a bare ``Figure`` on the Agg canvas (no pyplot: no GUI backend, no global figure state), a fixed size
    and no Software metadata, so the same history gives the same bytes; written via a temp file + os.replace so
    a reader never sees half a PNG.
    """
    points = {"loss": [], "eval_loss": []}
    for i, entry in enumerate(log_history or []):
        step = entry.get("step", i)
        for key, series in points.items():
            if _finite(entry.get(key)) and _is_num(step):
                series.append((step, entry[key]))
    if not points["loss"] and not points["eval_loss"]:
        return None

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=110, layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if points["loss"]:
        ax.plot(*zip(*points["loss"]), color="tab:blue", linewidth=1.5, label="training loss")
    if points["eval_loss"]:
        ax.plot(*zip(*points["eval_loss"]), "o", color="tab:orange", label="eval loss")
    colors = ["tab:red", "tab:green", "tab:purple", "tab:brown", "tab:gray"]
    for i, (label, value) in enumerate((eval_points or {}).items()):
        if _finite(value):
            ax.axhline(value, linestyle="--", linewidth=1.2, color=colors[i % len(colors)],
                       label=f"{label}: {value:.4f}")
    ax.set(title="Training loss", xlabel="step", ylabel="loss")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png", metadata={"Software": None})
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the report is meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
