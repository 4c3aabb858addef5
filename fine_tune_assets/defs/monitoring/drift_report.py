"""drift_report: the newest dataset version against the data of the adapter in production."""

import dagster as dg

from fine_tune_assets.lib.monitoring.drift import CONFIRMED, SIGNAL, WITHHELD
from fine_tune_assets.lib.monitoring.evaluate import evaluate_candidate
from fine_tune_assets.lib.monitoring.report import write_report
from fine_tune_assets.lib.monitoring.store import DRIFT_CODE_VERSION, record_evaluation
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.resolve import LATEST, NotFound

from ..keys import DATASET_VERSION, DRIFT_REPORT
from ..metadata import md_table
from ..resources import PipelineResource

WITHIN_POLICY = "drift_within_policy"
NEGATIVE_CONTROL = "drift_negative_control"


def _candidate(context: dg.AssetExecutionContext) -> str:
    """The dataset version the upstream materialization published (the newest, without erased records,
    when that is not known)."""
    event = context.instance.get_latest_materialization_event(DATASET_VERSION)
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
    value = meta.get("dataset_version")
    return getattr(value, "value", None) or LATEST


@dg.asset(key=DRIFT_REPORT, group_name="monitoring", code_version=DRIFT_CODE_VERSION, deps=[DATASET_VERSION],
          kinds={"scikitlearn", "duckdb"},
          check_specs=[dg.AssetCheckSpec(WITHIN_POLICY, asset=DRIFT_REPORT,
                                         description="Warns on a drift signal, fails on confirmed drift"),
                       dg.AssetCheckSpec(NEGATIVE_CONTROL, asset=DRIFT_REPORT,
                                         description="Fails when the detectors flag two random halves of "
                                                     "the reference: they are miscalibrated for this data")])
def drift_report(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """Compares the newest dataset version's new records with the train split of the adapter in
    production (the newest adapter when none is), records the decision in the registry and the
    ledger, and writes a JSON and a Markdown report and a plot under ``monitoring/drift/``. The
    ``drift_on_new_data`` sensor reads the decision; nothing here starts a run."""
    paths = pipeline.paths
    candidate = _candidate(context)
    try:
        evaluation = evaluate_candidate(paths, candidate, progress=context.log.info)
    except NotFound as exc:  # no adapter yet: nothing to compare with
        context.log.info(f"no drift evaluation: {exc}")
        return dg.MaterializeResult(
            metadata={"decision": "no_reference", "why": str(exc)},
            check_results=[dg.AssetCheckResult(check_name=name, passed=True, metadata={"why": "no reference"})
                           for name in (WITHIN_POLICY, NEGATIVE_CONTROL)])
    report = evaluation.report
    if report.n_candidate_new - report.n_already_judged == 0:
        ids = {"evaluation_id": None, "event_seq": None}
        context.log.info(f"dataset version {candidate[:12]} holds no record new to the reference that an earlier "
                         f"window has not judged ({report.n_already_judged} judged): nothing recorded")
    else:
        with connect(paths.registry) as con:
            ids = record_evaluation(con, report, evaluation.reference, evaluation.candidate)
    name = ids["evaluation_id"] or f"unrecorded-{report.window_ids_sha256[:12]}"
    folder = paths.root / "monitoring" / "drift" / name
    files = write_report(evaluation, folder, ids["evaluation_id"], ids["event_seq"])
    context.log.info(f"drift decision {report.decision}: " + "; ".join(report.reasons))
    metadata = {
        "decision": report.decision,
        "drift": report.drift,
        "evaluation_id": ids["evaluation_id"] or "-",
        "ledger_event": ids["event_seq"] or "-",
        "reference_version": evaluation.reference.version_id,
        "reference_adapter": evaluation.reference.adapter_id or "-",
        "candidate_version": evaluation.candidate,
        "n_reference": dg.MetadataValue.int(report.n_reference),
        "n_window": dg.MetadataValue.int(report.n_window),
        "policy_hash": report.policy_hash,
        "detectors": md_table(["family", "statistic", "p-value", "flagged", "control flagged"],
                              [[name, d["statistic"], f"{d['p_value']:.3g}", d["flagged"],
                                report.control.get(name, {}).get("flagged")] for name, d in report.detectors.items()]),
        "report": dg.MetadataValue.md(files["markdown"].read_text(encoding="utf-8")),
        "report_path": dg.MetadataValue.path(str(files["json"])),
    }
    for name, d in report.detectors.items():
        metadata[f"{name}_statistic"] = dg.MetadataValue.float(float(d["statistic"]))
    if "plot" in files:
        metadata["plot_path"] = dg.MetadataValue.path(str(files["plot"]))
    return dg.MaterializeResult(metadata=metadata, check_results=[
        dg.AssetCheckResult(check_name=WITHIN_POLICY, passed=report.decision not in (SIGNAL, CONFIRMED),
                            severity=dg.AssetCheckSeverity.ERROR if report.decision == CONFIRMED
                            else dg.AssetCheckSeverity.WARN,
                            metadata={"decision": report.decision, "reasons": "; ".join(report.reasons)}),
        dg.AssetCheckResult(check_name=NEGATIVE_CONTROL, passed=report.decision != WITHHELD, metadata={
            f"{name}_{key}": dg.MetadataValue.float(float(d[key])) if key != "flagged" else str(d[key])
            for name, d in report.control.items() for key in ("statistic", "p_value", "flagged")}),
    ])
