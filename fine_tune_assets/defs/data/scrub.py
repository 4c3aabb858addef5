"""scrubbed_conversations: Presidio over every message of every role, after cheap size guards."""


import time

import dagster as dg

from fine_tune_assets.lib.data.stages import SCRUB_CODE_VERSION, scrub_stage

from ..keys import RAW_CONVERSATIONS
from ..metadata import md_table, stage_metadata
from ..openlineage import emits_openlineage
from ..resources import PipelineResource, upstream_stage


@dg.asset(group_name="data", code_version=SCRUB_CODE_VERSION, deps=[RAW_CONVERSATIONS],
          kinds={"presidio", "parquet"})
@emits_openlineage
def scrubbed_conversations(context: dg.AssetExecutionContext,
                           pipeline: PipelineResource) -> dg.MaterializeResult:
    """PII replaced by typed placeholders (``<PERSON_1>`` stays one person within a conversation) or
    keyed pseudonyms. Per-record provenance: entity counts, policy hash, Presidio version; never the
    raw values."""
    ingested = upstream_stage(context, RAW_CONVERSATIONS)
    policy = pipeline.policy()
    started = time.perf_counter()
    stage = scrub_stage(pipeline.paths, ingested, policy, workers=pipeline.scrub_workers,
                        max_record_chars=pipeline.max_record_chars, progress=context.log.info)
    seconds = time.perf_counter() - started
    metadata = stage_metadata(stage)
    counts = stage.summary["entity_counts"]
    metadata.update({
        "scrub_policy_hash": stage.summary["policy_hash"],
        "presidio_version": stage.summary["presidio_version"],
        "entities_replaced": dg.MetadataValue.int(sum(counts.values())),
        "entities_by_type": md_table(["entity type", "replaced"], [[k, v] for k, v in counts.items()]),
    })
    if not stage.reused and seconds > 0:
        metadata["records_per_second"] = dg.MetadataValue.float(round(stage.summary["inputs"] / seconds, 1))
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(stage.data_version))
