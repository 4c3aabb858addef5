"""What committed erasure requests leave behind, as later work reads it: the deny-list that every
publish applies, and the ``needs_retraining`` flags of adapters trained on erased records.

Writing them is ``audit.erasure``'s job (one transaction with the re-published version and the ledger
event); reading them sits here, below the data layer, because publishing a dataset needs the deny-list.
"""

from __future__ import annotations

from pathlib import Path

from .connection import connect, rows_as_dicts

NEEDS_RETRAINING = "needs_retraining"


def denylist(registry: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """Every erasure already committed: ({record_id: request_id}, {source sha256: request_id})."""
    with connect(registry, read_only=True) as con:
        rows = con.execute("SELECT request_id, record_id, source_sha256 FROM erasures ORDER BY created_at").fetchall()
    records = {r: req for req, r, _ in rows if r}
    sources = {s: req for req, r, s in rows if s and not r}
    return records, sources


def erased_records_in(con, version_id: str) -> int:
    """How many records of a dataset version are under an erasure request."""
    return con.execute("SELECT count(DISTINCT r.record_id) FROM dataset_records r JOIN erasures e "
                       "ON r.record_id = e.record_id WHERE r.version_id = ?", [version_id]).fetchone()[0]


def adapter_flags(con, adapter_ids: list[str] | None = None) -> dict[str, list[dict]]:
    """Open flags (e.g. ``needs_retraining`` after an erasure) per adapter id, oldest first."""
    flags: dict[str, list[dict]] = {}
    for row in rows_as_dicts(con.execute("SELECT * FROM adapter_flags ORDER BY created_at")):
        if adapter_ids is None or row["adapter_id"] in adapter_ids:
            row["created_at"] = row["created_at"].isoformat()
            flags.setdefault(row["adapter_id"], []).append(row)
    return flags


def needs_retraining(con, adapter_id: str) -> bool:
    """Whether an erasure flagged the adapter: it was trained on a version holding an erased record."""
    return con.execute("SELECT count(*) FROM adapter_flags WHERE adapter_id = ? AND flag = ?",
                       [adapter_id, NEEDS_RETRAINING]).fetchone()[0] > 0


def erased_stage_holders(con, stages: tuple[str, ...] = ("production", "staging")) -> dict[str, dict[str, str]]:
    """{erasure request id: {stage: adapter id}}: the holders of ``stages`` that an erasure flagged
    ``needs_retraining``, by the newest request that flagged each (what a retraining answers)."""
    from .stages import current_stages

    holders = {stage: a for stage, a in current_stages(con).items() if stage in stages}
    due: dict[str, dict[str, str]] = {}
    for stage, adapter_id in holders.items():
        row = con.execute("SELECT request_id FROM adapter_flags WHERE adapter_id = ? AND flag = ? "
                          "ORDER BY created_at DESC LIMIT 1", [adapter_id, NEEDS_RETRAINING]).fetchone()
        if row is not None:
            due.setdefault(row[0], {})[stage] = adapter_id
    return due
