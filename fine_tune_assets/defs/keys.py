"""The asset graph's keys, in pipeline order. Definitions refer to their upstream assets through these
keys rather than by importing each other's asset objects, so every module under ``defs/`` loads on its own."""

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
