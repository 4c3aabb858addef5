"""The jobs, selected by asset group so a new asset joins its job by its ``group_name`` alone."""

import dagster as dg

# INFO on the console: progress and results, without Dagster's per-event DEBUG lines.
_INFO_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

data_job = dg.define_asset_job(
    "data_job", selection=dg.AssetSelection.groups("data"),
    description="Ingest raw/, scrub PII, validate and gate quality, publish a dataset version.",
    # The stages run one after another and the scrub stage starts its own worker processes, so one
    # process per run is enough; it also works on an ephemeral instance (no DAGSTER_HOME).
    executor_def=dg.in_process_executor,
    config=_INFO_LOGS)

pipeline_job = dg.define_asset_job(
    "pipeline_job", selection=dg.AssetSelection.groups("data", "training", "evaluation", "audit"),
    description="The whole graph: publish a dataset version, train a LoRA adapter on it, evaluate it against "
                "the base model, gate its promotion and write its audit dossier.",
    executor_def=dg.in_process_executor,  # training and evaluation run in their own processes (Pipes)
    config=_INFO_LOGS)
