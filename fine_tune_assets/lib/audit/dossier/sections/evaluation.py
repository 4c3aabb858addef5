"""Evaluation: the adapter against the base model and against the previous adapter, and the promotion gate.

The evaluation report's generated answers are not copied: the section links to the report files instead.
"""

from __future__ import annotations

from ....common.hashing import sha256_file
from ....common.render import iso_time, short, value_text
from ....evaluation.metrics import METRICS, format_metric, metric_change
from ....evaluation.store import evaluation_id
from ..blocks import fields, item, section, table
from ..context import DossierContext
from ..values import load_json, percent

NOT_EVALUATED = "no evaluation recorded for this adapter"
NO_REPORT = "the evaluation report file is missing"


def _metric_rows(left: dict, right: dict) -> list[list]:
    """One row per metric either side recorded: label, left, right, change from left to right."""
    return [[label, format_metric(left.get(key), kind), format_metric(right.get(key), kind),
             metric_change(left.get(key), right.get(key), kind, better)[0]]
            for label, key, kind, better in METRICS if left.get(key) is not None or right.get(key) is not None]


def _settings_text(config: dict) -> str:
    return (f"response format {value_text((config.get('response_format') or {}).get('name'))}, accuracy fields "
            f"{', '.join(config.get('accuracy_fields') or []) or '-'}, {len(config.get('domain_terms') or [])} domain "
            f"terms, max {config.get('max_new_tokens')} new tokens (greedy), max general regression "
            f"{percent(config.get('max_general_regression'))}, logic version {config.get('logic_version')}")


def _report_items(ctx: DossierContext, report: dict, evaluation: dict | None) -> list[dict]:
    """Which evaluation, on which held-out set, under which spec, and where its report files are."""
    eval_set, config = report.get("eval_set") or {}, report.get("config") or {}
    gate = report.get("gate") or load_json((evaluation or {}).get("gate")) or {}
    report_dir = ctx.report_path.parent if ctx.report_path else None
    try:
        report_eval_id = evaluation_id(report) if report else None
    except (KeyError, TypeError):
        report_eval_id = None
    mismatch = evaluation and report_eval_id and report_eval_id != evaluation["eval_id"]
    return [
        item("evaluation id", (evaluation or {}).get("eval_id"), gap=None if evaluation else (
            "not registered: no evaluations row and no evaluation_completed event (evaluated before the audit "
            "ledger); the figures below come from the report file only")),
        item("evaluated at", iso_time((evaluation or {}).get("created_at")) or report.get("created_at")),
        *([item("report file matches the registry row", "no: the report on disk is from another evaluation; "
                "figures below are the report's" if mismatch else "yes")] if evaluation and report else []),
        item("eval set sha256", eval_set.get("sha256") or (evaluation or {}).get("eval_set_sha256")),
        item("eval set", f"split {eval_set.get('split')}, {eval_set.get('n_examples')} examples, "
                         f"{eval_set.get('n_format_applicable')} format-applicable" if eval_set else None,
             gap=None if eval_set else NO_REPORT),
        item("general prompts (regression check)", eval_set.get("n_general_prompts"),
             gap=None if eval_set else NO_REPORT),
        item("evaluation spec hash", config.get("spec_hash") or (evaluation or {}).get("spec_hash")),
        item("evaluation spec file", config.get("source"), gap=None if config else NO_REPORT),
        item("primary metric", gate.get("primary_metric") or config.get("primary_metric")),
        item("evaluation settings", _settings_text(config) if config else None, gap=None if config else NO_REPORT),
        item("evaluation device", report.get("device"), gap=None if report else NO_REPORT),
        item("report (generated answers and examples are there, not here)",
             None if report_dir is None else ", ".join(str(report_dir / n) for n in ("report.html", "report.md",
                                                                                      "eval_report.json")
                                                       if (report_dir / n).exists()),
             gap=None if report_dir else NO_REPORT),
        item("eval_report.json sha256", sha256_file(ctx.report_path) if ctx.report_path else None,
             gap=None if ctx.report_path else NO_REPORT),
    ]


def _previous_comparison(ctx: DossierContext, tuned: dict, eval_sha: str | None) -> list[dict]:
    previous = ctx.previous
    if not previous.adapter_id:
        return [fields(item("comparison with the previous adapter", None, gap=(
            "no previous adapter: none replaced in a stage, and none trained earlier on this dataset lineage")))]
    prev_eval, prev_report = previous.evaluation, previous.report or {}
    prev_metrics = (prev_report.get("metrics") or load_json((prev_eval or {}).get("metrics")) or {}).get("fine_tuned") \
        or {}
    prev_sha = (prev_eval or {}).get("eval_set_sha256") or (prev_report.get("eval_set") or {}).get("sha256")
    comparable = "yes: same eval set" if prev_sha and prev_sha == eval_sha else (
        f"no: different eval sets ({short(prev_sha)} vs {short(eval_sha)}): read the change with care")
    return [
        fields(
            item("previous adapter", previous.adapter_id),
            item("chosen because", previous.rule),
            item("previous adapter's evaluation", (prev_eval or {}).get("eval_id"),
                 gap=None if prev_eval else "the previous adapter has no registered evaluation"),
            item("same held-out set", comparable if prev_metrics else None,
                 gap=None if prev_metrics else "nothing to compare"),
        ),
        table("Comparison with the previous adapter (fine-tuned metrics of each)",
              ["metric", "previous adapter", "this adapter", "change"],
              _metric_rows(prev_metrics, tuned) if prev_metrics else [],
              gap="the previous adapter has no recorded evaluation metrics"),
    ]


def _champion_text(champion: dict | None) -> str | None:
    if not champion:
        return None
    if "passed" not in champion:
        return f"none: {champion.get('none')}"
    return (f"{'PASSED' if champion['passed'] else 'FAILED'} against {champion['champion_adapter_id'][:12]}: "
            + "; ".join(champion.get("reasons") or []))


def evaluation(ctx: DossierContext) -> dict:
    row, report = ctx.evaluation, ctx.report
    if not row and not report:
        return section("evaluation", "Evaluation", [fields(
            item("evaluation", None, gap=f"{NOT_EVALUATED} (materialize eval_report)"),
            item("comparison with the base model", None, gap=NOT_EVALUATED),
            item("comparison with the previous adapter", None, gap=NOT_EVALUATED))])
    report = report or {}
    metrics = report.get("metrics") or load_json((row or {}).get("metrics")) or {}
    gate = report.get("gate") or load_json((row or {}).get("gate")) or {}
    base, tuned = metrics.get("base") or {}, metrics.get("fine_tuned") or {}
    reasons = "; ".join(map(str, gate.get("reasons") or []))
    eval_sha = (report.get("eval_set") or {}).get("sha256") or (row or {}).get("eval_set_sha256")
    blocks = [
        fields(*_report_items(ctx, report, row)),
        table("Comparison with the base model (same weights, adapter off)",
              ["metric", "base model", "this adapter", "change"], _metric_rows(base, tuned), gap="no metrics recorded"),
        fields(item("promotion gate", None if not gate else
                    f"{'PASSED' if gate.get('passed') else 'FAILED'}" + (f": {reasons}" if reasons else ""),
                    gap=None if gate else "no gate verdict recorded"),
               item("champion/challenger (against the adapter in production, this version's held-out split)",
                    _champion_text(report.get("champion")),
                    gap=None if report.get("champion") else "not recorded (evaluated before champion/challenger)")),
        *_previous_comparison(ctx, tuned, eval_sha),
    ]
    return section("evaluation", "Evaluation", blocks)
