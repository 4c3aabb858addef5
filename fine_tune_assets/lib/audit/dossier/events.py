"""Reading the ledger for one adapter: which events concern it, and who holds each stage.

Stage transitions, erasures and drift evaluations are ledger events (kinds ``promotion``, ``rollback``,
``erasure``, ``drift_evaluation``); the dossier shows them with their ``seq``, ``created_at`` and ``event_hash``.
"""

from __future__ import annotations

from ...common.render import iso_time
from ...registry.ledger import STAGE_KINDS, EventKind


def payload(event: dict) -> dict:
    """The event's payload, or {} when it is not a JSON object (no longer valid JSON, or a bare value)."""
    return event["payload"] if isinstance(event["payload"], dict) else {}


def event_time(event: dict) -> str:
    return iso_time(event["created_at"]) or "-"


def mentions(event: dict, adapter_id: str, version: str) -> bool:
    """Does this event concern the adapter (or, for data events, its dataset version)?"""
    p = payload(event)
    kind, subject = event["kind"], event["subject"]
    if kind == EventKind.DATASET_PUBLISHED:
        return subject == version or p.get("version_id") == version
    if kind == EventKind.ADAPTER_TRAINED:
        return subject == adapter_id or p.get("adapter_id") == adapter_id
    if kind == EventKind.EVALUATION_COMPLETED:
        return p.get("adapter_id") == adapter_id
    if kind == EventKind.PROMOTION:
        return adapter_id in (subject, p.get("adapter_id"), p.get("previous_adapter_id"))
    if kind == EventKind.ROLLBACK:
        return adapter_id in (p.get("adapter_id"), p.get("rolled_back_adapter_id"))
    if kind == EventKind.ERASURE:
        return adapter_id in (p.get("affected_adapters") or []) or version in (p.get("affected_versions") or [])
    # drift_evaluation and anything newer: free-form, so any mention of the adapter or its dataset counts
    return subject in (adapter_id, version) or adapter_id in (event.get("payload_text") or "")


def stage_holders(events: list[dict]) -> dict[str, dict]:
    """stage -> {adapter_id, seq}: who holds each stage after replaying every promotion and rollback."""
    holders: dict[str, dict] = {}
    for e in events:
        p = payload(e)
        if e["kind"] in STAGE_KINDS and p.get("stage"):
            holders[p["stage"]] = {"adapter_id": p.get("adapter_id"), "seq": e["seq"]}
    return holders
