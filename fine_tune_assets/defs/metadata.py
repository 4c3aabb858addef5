"""Dagster metadata for the data stages: counts and reasons, never record content."""

from __future__ import annotations

import dagster as dg

from fine_tune_assets.lib.common import render
from fine_tune_assets.lib.data.stages import StageOutput


def md_table(header: list[str], rows: list[list]) -> dg.MetadataValue:
    return dg.MetadataValue.md(render.md_table(header, rows))


def stage_metadata(stage: StageOutput) -> dict:
    summary = stage.summary
    metadata = {
        "staging_path": dg.MetadataValue.path(str(stage.folder)),
        "data_version": stage.data_version,
        "inputs": dg.MetadataValue.int(summary["inputs"]),
        "records": dg.MetadataValue.int(summary["records"]),
        "quarantined": dg.MetadataValue.int(summary["rejected"]),
        "reused_cached_output": stage.reused,
    }
    if summary["rejected_by_reason"]:
        metadata["quarantined_by_reason"] = md_table(["reason", "records"],
                                                     [[k, v] for k, v in summary["rejected_by_reason"].items()])
    return metadata
