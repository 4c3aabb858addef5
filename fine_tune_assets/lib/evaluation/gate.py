"""The promotion verdict: beat the base model on the primary metric, and do not get worse at general prompts.

The ``promotion_gate`` asset check and the promotion command read this verdict from the report; it is computed
once, here.
"""

from __future__ import annotations

from .metrics import PRIMARY_METRICS
from .spec import EvalSpec


def promotion_gate(spec: EvalSpec, base: dict, fine_tuned: dict) -> tuple[dict, dict]:
    """(regression, gate): beat the base on the primary metric; general loss may not rise beyond the threshold."""
    reasons, passed = [], True
    primary, higher = spec.primary_metric, PRIMARY_METRICS[spec.primary_metric]
    b, f = base.get(primary), fine_tuned.get(primary)
    if b is None or f is None:
        passed = False
        reasons.append(f"{primary} could not be measured (no held-out reference satisfies the response format?); "
                       "set primary_metric: eval_loss in the evaluation spec for free-text data")
    elif (f > b) if higher else (f < b):
        reasons.append(f"{primary} {f:.3f} beats base {b:.3f}")
    else:
        passed = False
        reasons.append(f"{primary} {f:.3f} does not beat base {b:.3f}")
    gb, gf = base.get("general_loss"), fine_tuned.get("general_loss")
    change = (gf - gb) / gb if gb and gf is not None else None
    regression_ok = change is None or change <= spec.max_general_regression
    regression = {"metric": "general_loss", "base": gb, "fine_tuned": gf, "relative_change": change,
                  "threshold": spec.max_general_regression, "passed": regression_ok}
    if change is None:
        reasons.append("general-prompt regression check skipped: no general prompts configured")
    elif regression_ok:
        reasons.append(f"general loss {change:+.1%} <= +{spec.max_general_regression:.0%}")
    else:
        passed = False
        reasons.append(f"general loss {change:+.1%} > +{spec.max_general_regression:.0%}: the model got worse "
                       "at general prompts")
    gate = {"primary_metric": primary, "higher_is_better": higher, "base": b, "fine_tuned": f,
            "passed": passed, "reasons": reasons}
    return regression, gate


def champion_gate(spec: EvalSpec, champion_id: str, scopes: dict[str, dict]) -> dict:
    """Challenger (the adapter under evaluation) against champion (the adapter in production), on the
    primary metric, per scope ({"overall": {"champion": x, "challenger": y, "n": n}, "new_records": ...}):
    the challenger may trail by at most ``champion_tolerance`` (relative) in every scope that could be
    measured. A scope without records or without a measurable metric is reported, not failed."""
    primary, higher = spec.primary_metric, PRIMARY_METRICS[spec.primary_metric]
    tol = spec.champion_tolerance
    reasons, passed = [], True
    for scope, values in scopes.items():
        c, f, n = values.get("champion"), values.get("challenger"), values.get("n", 0)
        if not n or c is None or f is None:
            reasons.append(f"{scope}: {primary} not measurable ({n} records)")
            continue
        floor = c * (1 - tol) if higher else c * (1 + tol)
        ok = f >= floor if higher else f <= floor
        passed &= ok
        reasons.append(f"{scope} ({n} records): {primary} {f:.3f} vs production {c:.3f} "
                       f"({'within' if ok else 'beyond'} the {tol:.0%} tolerance)")
    return {"champion_adapter_id": champion_id, "primary_metric": primary, "higher_is_better": higher,
            "tolerance": tol, "scopes": scopes, "passed": passed, "reasons": reasons}
