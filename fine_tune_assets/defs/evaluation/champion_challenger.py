"""champion_challenger: the blocking check that a new adapter does not trail the adapter in production,
and the one automatic promotion this project makes: to ``staging``, for a sensor-triggered retrain."""

import dagster as dg

from fine_tune_assets.lib.audit.access import AccessDenied, AccessError, load_access
from fine_tune_assets.lib.audit.promotion import PromotionError, promote
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.stages import current_stages

from ..keys import EVAL_REPORT, TRIGGER_TAG, automatic_launcher
from ..resources import PipelineResource
from .latest_report import NOT_MATERIALIZED, latest_eval_report

AUTO_STAGE = "staging"


def auto_promote(paths: DataPaths, adapter_id: str, champion_id: str, trigger: str, user: str) -> str:
    """Promote a sensor-triggered challenger that passed to staging (production stays a human decision), as
    ``user`` (the sensor) under the deployment's roles: staging is not protected unless access.yaml says so;
    returns what happened, for the check's metadata."""
    with connect(paths.registry, read_only=True) as con:
        if current_stages(con).get(AUTO_STAGE) == adapter_id:
            return f"already holds {AUTO_STAGE}"
    try:
        promote(paths.registry, adapter_id, AUTO_STAGE, user=user, access=load_access(paths.access),
                reason=f"automatic: retrained on a {trigger} trigger, passed its promotion gate and the "
                       f"champion/challenger check against production adapter {champion_id[:12]}")
    except (PromotionError, AccessDenied, AccessError) as exc:
        return f"not promoted: {exc}"
    return f"promoted to {AUTO_STAGE}"


@dg.asset_check(asset=EVAL_REPORT, name="champion_challenger", blocking=True,
                required_resource_keys={"pipeline"},
                description="The new adapter does not trail the adapter in production on the primary metric, "
                            "overall and on the records the production adapter's data never held (tolerance: "
                            "champion_tolerance in config/evaluation.yaml). A retrain started by a sensor that "
                            "passes is promoted to staging; production stays a recorded human promote.")
def champion_challenger(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    report = latest_eval_report(context.instance)
    if report is None:
        return NOT_MATERIALIZED
    champion = report.get("champion") or {}
    if "passed" not in champion:
        return dg.AssetCheckResult(passed=True, description=champion.get("none", "no champion recorded"),
                                   metadata={"adapter_id": report["adapter_id"], "champion": "none"})
    metadata = {"adapter_id": report["adapter_id"], "champion": champion["champion_adapter_id"],
                "primary_metric": champion["primary_metric"], "tolerance": champion["tolerance"]}
    for scope, values in champion["scopes"].items():
        for side in ("champion", "challenger"):
            value = values.get(side)
            metadata[f"{scope}_{side}"] = value if value is not None else "n/a"
        metadata[f"{scope}_records"] = values.get("n", 0)
    trigger = context.run.tags.get(TRIGGER_TAG)
    if champion["passed"] and report["gate"]["passed"] and trigger:
        pipeline: PipelineResource = context.resources.pipeline
        metadata["auto_promotion"] = auto_promote(pipeline.paths, report["adapter_id"],
                                                  champion["champion_adapter_id"], trigger,
                                                  automatic_launcher(context.run.tags))
    return dg.AssetCheckResult(passed=bool(champion["passed"]), severity=dg.AssetCheckSeverity.ERROR,
                               description="; ".join(champion["reasons"]), metadata=metadata)
