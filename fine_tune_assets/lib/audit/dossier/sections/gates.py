"""Quality gates: the dataset gates recorded with the version, and the adapter's promotion gate."""

from __future__ import annotations

from ....common.render import value_text
from ..blocks import fields, item, section, table
from ..context import DossierContext
from ..values import load_json, percent


def _dataset_gate_rows(checks: list) -> list[list]:
    rows = []
    for c in checks:
        verdict = "PASS" if c.get("passed") else "FAIL"
        if c.get("passed") and c.get("severity") == "WARN":
            verdict = "PASS (warning)"
        rows.append(["dataset", c.get("name"), c.get("description"), c.get("threshold"), c.get("observed"), verdict,
                     "blocking" if c.get("blocking") else "advisory"])
    return rows


def _adapter_gate_rows(gate: dict, regression: dict) -> list[list]:
    rows = []
    if gate:
        primary = gate.get("primary_metric")
        direction = "higher" if gate.get("higher_is_better", True) else "lower"
        rows.append(["adapter", f"promotion gate: {primary}",
                     f"fine-tuned must beat the base model ({direction} is better)",
                     f"base {value_text(gate.get('base'))}", value_text(gate.get("fine_tuned")),
                     "PASS" if gate.get("passed") else "FAIL", "blocking (promotion_gate asset check)"])
    if regression:
        rows.append(["adapter", "promotion gate: general-prompt regression",
                     f"relative change of {regression.get('metric', 'general_loss')} vs the base model",
                     f"<= +{percent(regression.get('threshold'))}", percent(regression.get("relative_change"))
                     if regression.get("relative_change") is not None else "not measured (no general prompts)",
                     "PASS" if regression.get("passed") else "FAIL", "blocking (part of the promotion gate)"])
    return rows


def gates(ctx: DossierContext) -> dict:
    checks = ctx.checks
    report = ctx.report or {}
    gate = report.get("gate") or load_json((ctx.evaluation or {}).get("gate")) or {}
    regression = report.get("regression") or gate.get("regression") or {}
    rows = _dataset_gate_rows(checks or []) + _adapter_gate_rows(gate, regression)
    blocks = [table("Gate results", ["applies to", "gate", "what it checks", "threshold", "observed", "verdict",
                                      "blocking"], rows,
                    gap="no quality gate results recorded for this dataset version or adapter")]
    suite = next((c for c in checks or [] if c.get("name") == "expectation_suite"), None)
    expectations = ((suite or {}).get("details") or {}).get("expectations") or []
    if suite:
        blocks.append(table("Expectation suite (Great Expectations), one row per expectation",
                            ["table", "column", "expectation", "result", "unexpected"],
                            [[e.get("table"), e.get("column") or "-", e.get("expectation"),
                              "PASS" if e.get("success") else "FAIL", e.get("unexpected_count")]
                             for e in expectations], gap="the expectation results were not recorded"))
    blocks.append(fields(
        item("dataset gates", f"{len(checks)} recorded" if checks else None,
             gap=None if checks else "no dataset gate results recorded for this dataset version"),
        item("adapter gates", "recorded" if gate else None,
             gap=None if gate else "no evaluation recorded for this adapter: promotion gate never ran"),
    ))
    return section("gates", "Quality gates", blocks)
