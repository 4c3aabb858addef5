"""dataset_version: split, canonical JSONL + Parquet, content-addressed folder, DuckDB registry."""


import json

import dagster as dg

from fine_tune_assets.lib.common.hashing import sha256_file
from fine_tune_assets.lib.data.publish import PublishRequest, publish_dataset
from fine_tune_assets.lib.data.quality_gates import evaluate_gates
from fine_tune_assets.lib.registry.ledger import EventKind, event_reference

from ..keys import VALIDATED_CONVERSATIONS
from ..metadata import md_table
from ..openlineage import emits_openlineage
from ..resources import PipelineResource, upstream_stage

DATASET_CODE_VERSION = "dataset-1"


@dg.asset(group_name="data", code_version=DATASET_CODE_VERSION, deps=[VALIDATED_CONVERSATIONS],
          kinds={"duckdb", "parquet"})
@emits_openlineage
def dataset_version(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """Publishes the validated records as a dataset version whose id is the sha256 of its content.
    Refuses to publish unless every blocking quality gate passed on exactly this validated data.
    Unchanged input publishes no new version."""
    validated = upstream_stage(context, VALIDATED_CONVERSATIONS)
    gates = evaluate_gates(validated, pipeline.policy(), pipeline.gate_settings())
    failed = [g for g in gates if g.blocking and not g.passed]
    if failed:
        raise dg.Failure(
            description="Blocking quality gates failed: " + ", ".join(
                f"{g.name} (observed {g.observed}, threshold {g.threshold})" for g in failed),
            metadata={"validated_data_version": validated.data_version})
    cumulative = validated.summary["cumulative"]
    result = publish_dataset(pipeline.paths, PublishRequest(
        validated_path=validated.records_path,
        quarantine_paths=cumulative["quarantine_files"],
        file_reports=cumulative["files"],
        scrub_policy=cumulative["scrub"]["policy"],
        scrub_policy_hash=cumulative["scrub"]["policy_hash"],
        scrub_entity_counts=cumulative["scrub"]["entity_counts"],
        checks=[g.to_dict() for g in gates],
        settings=pipeline.settings_dict(),
        eval_fraction=pipeline.eval_fraction,
        code_version=DATASET_CODE_VERSION,
        run_id=context.run_id,
    ))
    if result.created:
        context.log.info(f"published dataset version {result.version_id} at {result.path}")
    else:
        context.log.info(f"input unchanged: dataset version {result.version_id} already published")
    metadata = {
        "dataset_version": result.version_id,
        "path": dg.MetadataValue.path(str(result.path)),
        "new_version": result.created,
        "parent_version": result.parent_version or "(first version)",
        "scrub_policy_hash": cumulative["scrub"]["policy_hash"],
        "ledger_event": event_reference(pipeline.paths.registry, EventKind.DATASET_PUBLISHED, result.version_id) or "-",
    }
    manifest = result.path / "manifest.json"
    if manifest.exists():
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
        metadata["manifest_sha256"] = sha256_file(manifest)
        metadata["content_hashes"] = dg.MetadataValue.json(recorded.get("content_hashes") or {})
    if result.created:
        counts = result.counts
        metadata.update({
            "input_records": dg.MetadataValue.int(counts["input_records"]),
            "accepted": dg.MetadataValue.int(counts["accepted"]),
            "quarantined": dg.MetadataValue.int(counts["quarantined"]),
            "train_examples": dg.MetadataValue.int(counts["train"]),
            "eval_examples": dg.MetadataValue.int(counts["eval"]),
            "quarantined_by_reason": md_table(["reason", "records"],
                                              [[k, v] for k, v in counts["quarantined_by_reason"].items()]),
            "tokens": md_table(["split", "examples", "total", "min", "p50", "p95", "max"],
                               [[s, t["examples"], t["total"], t["min"], t["p50"], t["p95"], t["max"]]
                                for s, t in result.token_stats.items()]),
        })
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(result.version_id))
