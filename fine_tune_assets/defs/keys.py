"""The asset graph's keys, in pipeline order. Definitions refer to their upstream assets through these
keys rather than by importing each other's asset objects, so every module under ``defs/`` loads on its own."""

from collections.abc import Mapping

import dagster as dg

RAW_CONVERSATIONS = dg.AssetKey("raw_conversations")
SCRUBBED_CONVERSATIONS = dg.AssetKey("scrubbed_conversations")
VALIDATED_CONVERSATIONS = dg.AssetKey("validated_conversations")
DATASET_VERSION = dg.AssetKey("dataset_version")
BASE_MODEL = dg.AssetKey("base_model")
LORA_ADAPTER = dg.AssetKey("lora_adapter")
EVAL_REPORT = dg.AssetKey("eval_report")
MODEL_DOSSIER = dg.AssetKey("model_dossier")
DRIFT_REPORT = dg.AssetKey("drift_report")

# Training and evaluation load a model each and fill the machine's accelerator (or its cores): the
# instance's ``concurrency.pools.default_limit: 1`` (dagster.yaml) lets one step of this pool run at a
# time, across all runs, so a drift retrain never trains beside a manual run.
ACCELERATOR_POOL = "accelerator"

# Run tags the retraining sensors set: the trigger (drift or erasure) and its evidence, each key under
# this prefix; lora_adapter records them as the adapter's trigger, champion_challenger reads the trigger.
TAG_PREFIX = "fine_tune_assets/"
TRIGGER_TAG = f"{TAG_PREFIX}trigger"
# Set by Dagster itself on the runs a sensor or a schedule requests.
SENSOR_NAME_TAG = "dagster/sensor_name"
SCHEDULE_NAME_TAG = "dagster/schedule_name"


def automatic_launcher(tags: Mapping[str, str]) -> str | None:
    """Who launched a run no person launched: ``sensor:NAME`` (else ``sensor:<trigger>`` for a retraining
    sensor's request run outside the daemon) or ``schedule:NAME``; None for a person's run. lora_adapter
    records it as the adapter's ``launched_by`` and champion_challenger promotes as it, so a sensor is never
    the second pair of eyes on its own adapter (``audit.access``)."""
    if tags.get(SENSOR_NAME_TAG):
        return f"sensor:{tags[SENSOR_NAME_TAG]}"
    if tags.get(SCHEDULE_NAME_TAG):
        return f"schedule:{tags[SCHEDULE_NAME_TAG]}"
    return f"sensor:{tags[TRIGGER_TAG]}" if tags.get(TRIGGER_TAG) else None
