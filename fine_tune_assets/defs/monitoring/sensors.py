"""The retraining sensors: each turns recorded evidence into at most one retraining run (retrain_job),
and computes nothing itself.

* drift_on_new_data: a confirmed drift decision (drift_report's materialization);
* erasure_retrain: an erasure that flagged the adapter in production or staging ``needs_retraining``.
"""

import json

import dagster as dg

from fine_tune_assets.lib.monitoring.drift import CONFIRMED
from fine_tune_assets.lib.monitoring.store import DRIFT_CODE_VERSION, mark_retrain_requested
from fine_tune_assets.lib.registry.connection import connect, registry_exists
from fine_tune_assets.lib.registry.erasures import erased_stage_holders
from fine_tune_assets.lib.registry.resolve import LATEST, NotFound, resolve_dataset_version

from ..jobs import INFO_LOGS
from ..keys import DRIFT_REPORT, TRIGGER_TAG
from ..resources import PipelineResource


def _value(metadata: dict, key: str):
    entry = metadata.get(key)
    return getattr(entry, "value", entry)


@dg.asset_sensor(asset_key=DRIFT_REPORT, job_name="retrain_job", minimum_interval_seconds=30,
                 default_status=dg.DefaultSensorStatus.STOPPED, required_resource_keys={"pipeline"},
                 description="Reads each drift_report decision (it computes nothing). On 'confirmed' it requests "
                             "one retraining run (lora_adapter, eval_report, model_dossier) pinned to the candidate "
                             "dataset version; the run key is built from the reference, the candidate and the drift "
                             "code version, so one decision never trains twice.")
def drift_on_new_data(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    materialization = asset_event.asset_materialization
    metadata = dict(materialization.metadata) if materialization else {}
    decision = _value(metadata, "decision")
    if decision != CONFIRMED:
        return dg.SkipReason(f"drift_report decided {decision!r}: no retraining "
                             f"({_value(metadata, 'candidate_version') or 'no candidate'})")
    reference, candidate = _value(metadata, "reference_version"), _value(metadata, "candidate_version")
    evaluation_id, seq = _value(metadata, "evaluation_id"), _value(metadata, "ledger_event")
    scores = {k.removesuffix("_statistic"): round(float(_value(metadata, k)), 4)
              for k in metadata if k.endswith("_statistic")}
    pipeline: PipelineResource = context.resources.pipeline
    with connect(pipeline.paths.registry) as con:  # the cooldown of later decisions counts from here
        mark_retrain_requested(con, evaluation_id)
    return dg.RunRequest(
        run_key=f"drift-{reference[:16]}-{candidate[:16]}-{DRIFT_CODE_VERSION}",
        run_config={**INFO_LOGS, "ops": {"lora_adapter": {"config": {"dataset_version": candidate}}}},
        tags={TRIGGER_TAG: "drift", "fine_tune_assets/drift_evaluation": str(evaluation_id),
              "fine_tune_assets/drift_ledger_seq": str(seq), "fine_tune_assets/drift_reference": reference,
              "fine_tune_assets/drift_candidate": candidate, "fine_tune_assets/drift_scores": json.dumps(scores)})


ERASURE_CODE_VERSION = "erasure-retrain-1"


@dg.sensor(job_name="retrain_job", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           required_resource_keys={"pipeline"},
           description="Reads the registry (it computes nothing). When an erasure flagged the adapter holding "
                       "production or staging as needs_retraining, it requests one retraining run on the newest "
                       "dataset version without erased records; the run key comes from the erasure request, so one "
                       "request never trains twice.")
def erasure_retrain(context: dg.SensorEvaluationContext):
    pipeline: PipelineResource = context.resources.pipeline
    registry = pipeline.paths.registry
    if not registry_exists(registry):
        return dg.SkipReason("no registry yet")
    with connect(registry, read_only=True) as con:
        due = erased_stage_holders(con)
        if not due:
            return dg.SkipReason("no adapter in production or staging is flagged needs_retraining")
        try:
            version = resolve_dataset_version(con, LATEST)["version_id"]
        except NotFound as exc:
            return dg.SkipReason(f"an erasure flagged a staged adapter, but there is no clean version to retrain "
                                 f"on: {exc}")
    requests = []
    for request_id, holders in sorted(due.items()):
        replaces = holders.get("production") or holders["staging"]
        requests.append(dg.RunRequest(
            run_key=f"erasure-{request_id[:16]}-{ERASURE_CODE_VERSION}",
            run_config={**INFO_LOGS, "ops": {"lora_adapter": {"config": {"dataset_version": version}}}},
            tags={TRIGGER_TAG: "erasure", "fine_tune_assets/erasure_request": request_id,
                  "fine_tune_assets/erasure_version": version, "fine_tune_assets/erasure_replaces": replaces,
                  "fine_tune_assets/erasure_stages": ",".join(sorted(holders))}))
    return requests
