"""raw_conversations: every file under raw/ as normalized records with provenance, or quarantine."""


import dagster as dg

from fine_tune_assets.lib.data.stages import INGEST_CODE_VERSION, ingest_stage

from ..metadata import md_table, stage_metadata
from ..openlineage import emits_openlineage
from ..resources import PipelineResource


@dg.asset(group_name="data", code_version=INGEST_CODE_VERSION, kinds={"python", "parquet"})
@emits_openlineage
def raw_conversations(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """Reads every JSONL, CSV and Parquet file under ``raw/`` (tabular files through a declared mapping).
    Each record gets a content-hash ``record_id`` and its source file, sha256 and line; anything
    unreadable is quarantined with a reason code, file and line."""
    stage = ingest_stage(pipeline.paths, pipeline.max_line_bytes, progress=context.log.info)
    files = stage.summary["cumulative"]["files"]
    metadata = stage_metadata(stage)
    metadata["files"] = md_table(
        ["file", "format", "mapping", "inputs", "records", "quarantined", "blank lines", "sha256"],
        [[f["path"], f["format"], f["mapping"] or "", f["inputs"], f["records"], f["rejected"], f["blank_lines"],
          f["sha256"][:16]] for f in files])
    metadata["n_files"] = dg.MetadataValue.int(len(files))
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(stage.data_version))
