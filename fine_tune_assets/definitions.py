"""The single Dagster entry point: ``dagster dev -m fine_tune_assets.definitions``."""

from __future__ import annotations

import os

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")  # before Presidio is imported anywhere
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dagster as dg  # noqa: E402

from .defs.audit.assets import model_dossier  # noqa: E402
from .defs.dataset.assets import dataset_version  # noqa: E402
from .defs.evaluation.assets import eval_report, promotion_gate  # noqa: E402
from .defs.ingest.assets import raw_conversations  # noqa: E402
from .defs.ingest.sensors import new_raw_files  # noqa: E402
from .defs.resources import DataPipelineResource  # noqa: E402
from .defs.scrub.assets import scrubbed_conversations  # noqa: E402
from .defs.training.assets import base_model, lora_adapter  # noqa: E402
from .defs.validate.assets import validated_conversations  # noqa: E402
from .defs.validate.checks import validated_conversations_checks  # noqa: E402

data_assets = [raw_conversations, scrubbed_conversations, validated_conversations, dataset_version]

data_job = dg.define_asset_job(
    "data_job", selection=dg.AssetSelection.assets(*data_assets),
    description="Ingest raw/, scrub PII, validate and gate quality, publish a dataset version.",
    # The stages run one after another and the scrub stage starts its own worker processes, so one
    # process per run is enough; it also works on an ephemeral instance (no DAGSTER_HOME).
    executor_def=dg.in_process_executor,
    # INFO on the console: progress and results, without Dagster's per-event DEBUG lines.
    config={"loggers": {"console": {"config": {"log_level": "INFO"}}}})

training_assets = [base_model, lora_adapter, eval_report]
audit_assets = [model_dossier]

pipeline_job = dg.define_asset_job(
    "pipeline_job", selection=dg.AssetSelection.assets(*data_assets, *training_assets, *audit_assets),
    description="The whole graph: publish a dataset version, train a LoRA adapter on it, evaluate it against "
                "the base model, gate its promotion and write its audit dossier.",
    executor_def=dg.in_process_executor,  # training and evaluation run in their own processes (Pipes)
    config={"loggers": {"console": {"config": {"log_level": "INFO"}}}})

defs = dg.Definitions(
    assets=[*data_assets, *training_assets, *audit_assets],
    asset_checks=[*validated_conversations_checks, promotion_gate],
    jobs=[data_job, pipeline_job],
    sensors=[new_raw_files],
    resources={"pipeline": DataPipelineResource(), "pipes_subprocess_client": dg.PipesSubprocessClient()},
)
