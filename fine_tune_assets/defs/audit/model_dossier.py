"""model_dossier: the audit dossier of an adapter, generated from the registry, the ledger and its files."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from fine_tune_assets.lib.audit.dossier import DossierError, build_dossier, content_hash, write_dossier

from ..keys import EVAL_REPORT, LORA_ADAPTER
from ..openlineage import emits_openlineage
from ..resources import PipelineResource

DOSSIER_CODE_VERSION = "dossier-1"
DOSSIER_FOLDER = "audit"  # below the adapter's top level: outside its content hash and `verify`'s file list


class DossierConfig(dg.Config):
    adapter_id: str = Field(default="", description="Adapter id, unique prefix or 'latest'; empty = the adapter "
                                                    "of the latest eval_report")


def _adapter_to_document(context, config: DossierConfig) -> str:
    if config.adapter_id:
        return config.adapter_id
    for key in (EVAL_REPORT, LORA_ADAPTER):
        event = context.instance.get_latest_materialization_event(key)
        if event is not None and event.asset_materialization is not None:
            value = event.asset_materialization.metadata.get("adapter_id")
            if value is not None:
                return value.value
    raise dg.Failure("neither eval_report nor lora_adapter has been materialized yet; train and evaluate first, "
                     "or give adapter_id")


@dg.asset(group_name="audit", code_version=DOSSIER_CODE_VERSION, deps=[EVAL_REPORT], kinds={"html", "markdown"})
@emits_openlineage
def model_dossier(context: dg.AssetExecutionContext, config: DossierConfig,
                  pipeline: PipelineResource) -> dg.MaterializeResult:
    """The audit dossier of an adapter (default: the one the latest ``eval_report`` evaluated): identity, data,
    de-identification, quality gates, training, evaluation, operations (stages, erasures, drift) and integrity
    (``verify``), generated from the registry, the ledger and the adapter's files; every missing item is shown
    as an explicit gap. Written to ``adapters/<id>/audit/dossier.md`` and ``dossier.html`` (a sub-folder, so
    the adapter's content hash and ``verify`` are unaffected); the Markdown is this asset's ``summary``."""
    paths = pipeline.paths
    try:
        dossier = build_dossier(paths, _adapter_to_document(context, config))
    except DossierError as exc:
        raise dg.Failure(str(exc)) from None
    adapter_id = dossier["adapter_id"]
    written = write_dossier(dossier, paths.adapters / adapter_id / DOSSIER_FOLDER)
    hashes = dossier["hashes"]
    head = dossier["ledger_head"]
    for banner in dossier["banners"]:
        (context.log.error if banner["level"] == "critical" else context.log.warning)(banner["text"])
    context.log.info(f"dossier of adapter {adapter_id[:12]}: {len(dossier['gaps'])} gap(s), written to "
                     f"{written['dossier.html'].parent}")
    # The adapter links to its dossier: an observation on lora_adapter (its own materialization predates it).
    context.log_event(dg.AssetObservation(asset_key=LORA_ADAPTER, metadata={
        "adapter_id": adapter_id, "dossier": dg.MetadataValue.path(str(written["dossier.html"]))}))
    return dg.MaterializeResult(
        metadata={
            "adapter_id": adapter_id,
            "dataset_version": dossier["dataset_version"],
            "dataset_manifest_sha256": hashes["dataset_manifest_sha256"] or "(not recorded)",
            "training_config_hash": hashes["training_config_hash"],
            "base_model_identity_hash": hashes["base_model_identity_hash"] or "(not recorded)",
            "eval_set_sha256": hashes["eval_set_sha256"] or "(no evaluation)",
            "ledger_head": f"seq {head['seq']} {head['event_hash']}" if head else "(no ledger events)",
            "integrity_ok": dossier["integrity_ok"],
            "needs_retraining": dossier["needs_retraining"],
            "gaps": dg.MetadataValue.int(len(dossier["gaps"])),
            "dossier": dg.MetadataValue.path(str(written["dossier.html"])),
            "dossier_md": dg.MetadataValue.path(str(written["dossier.md"])),
            "dossier_url": dg.MetadataValue.url(Path(written["dossier.html"]).resolve().as_uri()),
            "summary": dg.MetadataValue.md(written["dossier.md"].read_text(encoding="utf-8")),
        },
        data_version=dg.DataVersion(content_hash(dossier)),
    )
