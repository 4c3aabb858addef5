"""The jobs, selected by asset group so a new asset joins its job by its ``group_name`` alone."""

import dagster as dg

# INFO on the console: progress and results, without Dagster's per-event DEBUG lines.
INFO_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

data_job = dg.define_asset_job(
    "data_job", selection=dg.AssetSelection.groups("data", "monitoring"),
    description="Ingest raw/, scrub PII, validate and gate quality, publish a dataset version, and decide "
                "whether it drifted from the data of the adapter in production.",
    # The stages run one after another and the scrub stage starts its own worker processes, so one
    # process per run is enough; it also works on an ephemeral instance (no DAGSTER_HOME).
    executor_def=dg.in_process_executor,
    config=INFO_LOGS)

pipeline_job = dg.define_asset_job(
    "pipeline_job", selection=dg.AssetSelection.groups("data", "training", "evaluation", "audit"),
    description="The whole graph: publish a dataset version, train a LoRA adapter on it, evaluate it against "
                "the base model, gate its promotion and write its audit dossier.",
    executor_def=dg.in_process_executor,  # training and evaluation run in their own processes (Pipes)
    config=INFO_LOGS)

retrain_job = dg.define_asset_job(
    "retrain_job", selection=dg.AssetSelection.assets("lora_adapter", "eval_report", "model_dossier"),
    description="Retrain on a pinned dataset version (started by the drift_on_new_data and erasure_retrain sensors, "
                "pinned by their run config), evaluate it against the base model and the adapter in production, and "
                "write the audit dossier.",
    executor_def=dg.in_process_executor,
    config=INFO_LOGS)
