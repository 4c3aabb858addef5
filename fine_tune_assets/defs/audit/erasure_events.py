"""Make an erasure applied from the command line visible in the Dagster UI.

``fine-tune-assets erase`` runs outside any Dagster run. When a Dagster instance is configured
(``$DAGSTER_HOME``), it reports runless events there: a materialization of ``dataset_version`` for
the version published without the erased records (so ``lora_adapter`` shows as stale: its upstream
changed) and, for every adapter trained on erased records, an observation of ``lora_adapter`` whose
metadata says ``needs_retraining``. Ids, counts and the request's reason only; never record content.
"""

from __future__ import annotations

import dagster as dg

from fine_tune_assets.lib.audit.erasure import ErasureResult


def erasure_events(result: ErasureResult) -> list:
    events: list = []
    if result.new_version_created and result.new_version:
        events.append(dg.AssetMaterialization(
            asset_key="dataset_version",
            description=f"published by erasure request {result.request_id[:12]} (outside a run)",
            metadata={"dataset_version": result.new_version, "erasure_request": result.request_id,
                      "erased_records": dg.MetadataValue.int(len(result.record_ids)),
                      "new_version": True, "accepted": dg.MetadataValue.int(result.counts.get("accepted", 0)),
                      "train_examples": dg.MetadataValue.int(result.counts.get("train", 0)),
                      "eval_examples": dg.MetadataValue.int(result.counts.get("eval", 0))}))
    for adapter_id in result.affected_adapters:
        events.append(dg.AssetObservation(
            asset_key="lora_adapter",
            description=f"adapter {adapter_id[:12]} needs retraining: trained on erased records",
            metadata={"adapter_id": adapter_id, "needs_retraining": True, "erasure_request": result.request_id,
                      "reason": result.reason, "requested_by": result.user,
                      "replacement_dataset_version": result.new_version or "(none: newest version unaffected)"}))
    return events


def report_to_dagster(result: ErasureResult) -> int:
    """Report ``erasure_events`` to the configured instance; returns how many were written."""
    instance = dg.DagsterInstance.get()
    events = erasure_events(result)
    for event in events:
        instance.report_runless_asset_event(event)
    return len(events)
