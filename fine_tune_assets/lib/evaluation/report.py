"""The evaluation report (base model vs fine-tuned adapter): its examples, Markdown, one HTML page, and the folder.

Both formats are laid out by templates (``templates/report.{md,html}.jinja``) from the same rows (``_rows``), so
they never disagree on a number. The report dict comes from ``evaluate_adapter``; every key is optional here: a
missing or None value shows as "n/a" instead of failing the run that wrote it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from ..common.render import NA, render_template, signed_percent, text, truncate
from .metrics import METRICS, format_metric, metric_change
from .plots import plot_loss_curve
from .spec import EvalSpec

PROMPT_CHARS = 400

_ARROW = {"lower": " ↓", "higher": " ↑", None: ""}
_TRAINING = [("steps", "steps", "{:d}"), ("train seconds", "train_seconds", "{:.1f}"),
             ("trained tokens/s", "trained_tokens_per_s", "{:.1f}"), ("learning rate", "learning_rate", "{:g}"),
             ("per-device batch size", "per_device_batch_size", "{:d}"), ("config hash", "config_hash", "{}")]
_MARK = {True: "✓ compliant", False: "✗ not compliant", None: NA}
_STATUS = {True: "pass", False: "fail"}  # CSS class of a verdict or a compliance mark; anything else is "na"


def _rows(report: dict) -> dict:
    """Everything both templates show, as plain strings, so Markdown and HTML stay in step."""
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
    specs = list(METRICS)
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
        change, status = metric_change(b, t, kind, better)
        label += _ARROW[better] + (" (primary)" if key == primary else "")
        metric_rows.append((label, format_metric(b, kind), format_metric(t, kind), change, status))

    reg = report.get("regression") or {}
    regression = (f"{text(reg.get('metric'))}: base {format_metric(reg.get('base'), 'loss')} → fine-tuned "
                  f"{format_metric(reg.get('fine_tuned'), 'loss')}, relative change "
                  f"{signed_percent(reg.get('relative_change'))} vs threshold {signed_percent(reg.get('threshold'))} → "
                  + {True: "PASSED", False: "FAILED"}.get(reg.get("passed"), NA)) if reg else NA

    champion = report.get("champion") or {}
    if "passed" in champion:
        champion_text = (f"against adapter {text(champion.get('champion_adapter_id'))[:12]} (production): "
                         + "; ".join(map(str, champion.get("reasons") or [])) + " → "
                         + {True: "PASSED", False: "FAILED"}.get(champion.get("passed"), NA))
    else:
        champion_text = text(champion.get("none")) if champion else NA

    training = report.get("training") or {}
    known = {key for _, key, _ in _TRAINING}
    train_rows = [(label, _safe_format(pattern, training.get(key))) for label, key, pattern in _TRAINING]
    train_rows += [(key, text(value)) for key, value in training.items() if key not in known]

    examples = [{"prompt": truncate(ex.get("prompt"), PROMPT_CHARS), "reference": text(ex.get("reference")),
                 "base": text(ex.get("base")), "fine_tuned": text(ex.get("fine_tuned")),
                 "base_mark": _MARK.get(ex.get("base_compliant"), NA),
                 "fine_tuned_mark": _MARK.get(ex.get("fine_tuned_compliant"), NA),
                 "base_status": _status(ex.get("base_compliant")),
                 "fine_tuned_status": _status(ex.get("fine_tuned_compliant"))}
                for ex in report.get("examples") or []]
    return {"title": f"Evaluation report: adapter {text(report.get('adapter_id'))[:12]}",
            "verdict": verdict, "verdict_status": _status(passed), "reasons": reasons,
            "identity": [(k, text(v)) for k, v in identity],
            "metrics": metric_rows, "metric_cells": [m[:4] for m in metric_rows],
            "regression": regression, "regression_status": _status(reg.get("passed")),
            "champion": champion_text, "champion_status": _status(champion.get("passed")),
            "training": train_rows, "examples": examples}


def _status(passed) -> str:
    return _STATUS.get(passed, "na")


def _safe_format(pattern: str, value) -> str:
    try:
        return NA if value is None else pattern.format(value)
    except (TypeError, ValueError):  # e.g. a float step count: show it rather than fail the report
        return str(value)


def pick_examples(spec: EvalSpec, prompts: list[list[dict]], references: list[str], answers: dict[str, list[str]],
                  scores: dict[str, dict], is_clean: Callable[[str], bool] | None = None) -> tuple[list[dict], int]:
    """A few side-by-side examples: format-scored ones first, then a free-text one; none with residual PII."""
    applicable = [i for i, e in enumerate(scores["fine_tuned"]["per_example"]) if e["applicable"]]
    others = [i for i in range(len(prompts)) if i not in set(applicable)]
    wanted = spec.examples_in_report
    candidates = applicable[: max(wanted - 1, 1)] + others[:1] + applicable[max(wanted - 1, 1):]
    chosen, withheld = [], 0
    for i in candidates:
        if len(chosen) >= wanted:
            break
        prompt = next((m["content"] for m in reversed(prompts[i]) if m["role"] == "user"), "")
        texts = [prompt, references[i], answers["base"][i], answers["fine_tuned"][i]]
        if is_clean and not all(is_clean(t) for t in texts):
            withheld += 1
            continue
        chosen.append({"prompt": prompt, "reference": references[i], "base": answers["base"][i],
                       "fine_tuned": answers["fine_tuned"][i],
                       "base_compliant": scores["base"]["per_example"][i]["compliant"],
                       "fine_tuned_compliant": scores["fine_tuned"]["per_example"][i]["compliant"]})
    return chosen, withheld


def render_markdown(report: dict, loss_curve: str | None = None) -> str:
    """The report as Markdown; ``loss_curve`` is the PNG's file name next to the report (a relative link)."""
    return render_template("evaluation/templates/report.md.jinja", r=_rows(report), loss_curve=loss_curve)


def render_html(report: dict, loss_curve: str | None = None, *, loss_curve_bytes: bytes | None = None) -> str:
    """The report as one self-contained page: inline CSS, no JavaScript, every report text escaped.

    The loss curve is embedded as a data: URI when ``loss_curve_bytes`` is given (the page survives being
    copied alone), else linked by its relative file name ``loss_curve``.
    """
    image = None
    if loss_curve_bytes:
        image = "data:image/png;base64," + base64.b64encode(loss_curve_bytes).decode("ascii")
    elif loss_curve:
        image = quote(loss_curve)
    return render_template("evaluation/templates/report.html.jinja", r=_rows(report), image=image)


def write_report(report: dict, adapter_dir: Path) -> Path:
    """``<adapter>/eval/``: eval_report.json (all generations), report.md, report.html, loss_curve.png.

    Written to a temporary folder and renamed into place, so a crash never leaves a half-written report.
    The folder sits below the adapter's top level, outside the adapter's content hash.
    """
    target = adapter_dir / "eval"
    tmp = adapter_dir / f".eval.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log_path = adapter_dir / "training_log.json"
    history = json.loads(log_path.read_text()) if log_path.exists() else []
    points = {f"{label} (held-out)": report["metrics"][side]["eval_loss"]
              for side, label in (("base", "base model"), ("fine_tuned", "fine-tuned"))
              if report["metrics"][side].get("eval_loss") is not None}
    curve = plot_loss_curve(history, tmp / "loss_curve.png", eval_points=points)
    name = curve.name if curve else None
    (tmp / "eval_report.json").write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
    (tmp / "report.md").write_text(render_markdown(report, loss_curve=name), encoding="utf-8")
    (tmp / "report.html").write_text(
        render_html(report, loss_curve=name, loss_curve_bytes=curve.read_bytes() if curve else None), encoding="utf-8")
    old = adapter_dir / f".eval.{os.getpid()}.old"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target
