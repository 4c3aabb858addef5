"""validated_conversations: role order, whitespace, token length, duplicates; gated by blocking checks."""


import dagster as dg

from fine_tune_assets.lib.data.stages import VALIDATE_CODE_VERSION, validate_stage

from ..keys import SCRUBBED_CONVERSATIONS
from ..metadata import stage_metadata
from ..openlineage import emits_openlineage
from ..resources import PipelineResource, upstream_stage


@dg.asset(group_name="data", code_version=VALIDATE_CODE_VERSION, deps=[SCRUBBED_CONVERSATIONS],
          kinds={"python", "parquet"})
@emits_openlineage
def validated_conversations(context: dg.AssetExecutionContext,
                            pipeline: PipelineResource) -> dg.MaterializeResult:
    """Scrubbed records that pass the content checks, with their token counts (base model's tokenizer
    and chat template). Exact and near duplicates keep the record with the smallest id."""
    scrubbed = upstream_stage(context, SCRUBBED_CONVERSATIONS)
    stage = validate_stage(pipeline.paths, scrubbed, pipeline.tokenizer(), pipeline.tokenizer_id(),
                           pipeline.validation_settings(), progress=context.log.info)
    metadata = stage_metadata(stage)
    cumulative = stage.summary["cumulative"]
    metadata["input_records_all_stages"] = dg.MetadataValue.int(cumulative["inputs"])
    metadata["quarantined_all_stages"] = dg.MetadataValue.int(cumulative["quarantined"])
    if not stage.reused and "cache" in stage.summary:  # the others' token counts came from the validate cache
        metadata["tokenized_in_this_run"] = dg.MetadataValue.int(stage.summary["cache"]["computed"])
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(stage.data_version))
