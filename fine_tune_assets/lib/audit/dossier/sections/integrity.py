"""Integrity: ``verify_all``'s verdict when the dossier was generated, and the ledger events behind the dossier."""

from __future__ import annotations

from ....registry.ledger import EventKind
from ..blocks import fields, item, section, table
from ..context import DossierContext
from ..events import event_time

EXPECTED_EVENTS = (EventKind.DATASET_PUBLISHED, EventKind.ADAPTER_TRAINED, EventKind.EVALUATION_COMPLETED)


def _verdict(r: dict) -> tuple[str | None, str | None]:
    """(verdict, gap) of verify's result."""
    if r["nothing_to_verify"]:
        return None, ("the registry has no ledger events: it was written before the audit ledger existed, so "
                      "nothing can be re-hashed against recorded hashes")
    return (f"{'INTACT' if r['ok'] else 'PROBLEMS FOUND'}: {r['events']} ledger events, {r['datasets']} dataset "
            f"versions, {r['adapters']} adapters, {r['evaluations']} evaluations, {r['files']} files re-hashed"), None


def integrity(ctx: DossierContext) -> dict:
    r, head = ctx.integrity, ctx.head
    verdict, gap = _verdict(r)
    blocks = [fields(
        item("verify (re-hash every published file, recompute the ledger chain)", verdict, gap=gap),
        item("ledger head", None if head is None else f"seq {head['seq']}, event_hash {head['event_hash']}",
             gap=None if head else "no ledger events"),
    )]
    blocks.append(table("Problems found by verify", ["problem"], [[p] for p in r["problems"]],
                        empty=["none" if not r["nothing_to_verify"] else "nothing verified (no ledger events)"]))
    if r.get("warnings"):
        blocks.append(table("Warnings from verify", ["warning"], [[w] for w in r["warnings"]]))
    blocks.append(table("Ledger events about this adapter and its dataset version",
                        ["seq", "at (UTC)", "kind", "subject", "payload sha256", "event hash"],
                        [[e["seq"], event_time(e), e["kind"], e["subject"], e["payload_sha256"], e["event_hash"]]
                         for e in ctx.mine],
                        gap="no ledger event records this adapter or its dataset version (published before the audit "
                            "ledger)"))
    kinds = {e["kind"] for e in ctx.mine}
    missing = [k for k in EXPECTED_EVENTS if k not in kinds]
    if missing and ctx.mine:
        blocks.append(fields(item("expected events not in the ledger", None, gap=", ".join(missing) + (
            " not recorded (published before the ledger, or never evaluated)"))))
    return section("integrity", "Integrity", blocks)
