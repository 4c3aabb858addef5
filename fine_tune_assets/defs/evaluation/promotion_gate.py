"""promotion_gate: the blocking check on eval_report (the verdict itself is computed by the evaluation)."""

import dagster as dg

from ..keys import EVAL_REPORT
from .latest_report import NOT_MATERIALIZED, latest_eval_report


@dg.asset_check(asset=EVAL_REPORT, name="promotion_gate", blocking=True,
                description="The fine-tuned adapter beats its base model on the primary metric and does not "
                            "regress on general prompts beyond the threshold (config/evaluation.yaml).")
def promotion_gate(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    report = latest_eval_report(context.instance)
    if report is None:
        return NOT_MATERIALIZED
    gate, regression = report["gate"], report["regression"]
    return dg.AssetCheckResult(
        passed=bool(gate["passed"]), severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(gate["reasons"]),
        metadata={"adapter_id": report["adapter_id"], "primary_metric": gate["primary_metric"],
                  "base": gate["base"] if gate["base"] is not None else "n/a",
                  "fine_tuned": gate["fine_tuned"] if gate["fine_tuned"] is not None else "n/a",
                  "general_loss_change": regression["relative_change"]
                  if regression["relative_change"] is not None else "n/a",
                  "max_general_regression": regression["threshold"]})
