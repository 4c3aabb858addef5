"""The audit ledger: an append-only, hash-chained log of what the pipeline published, in the registry.

Each event is one row of the ``ledger`` table. ``payload_sha256`` is the sha256 of the payload's
canonical JSON; ``event_hash`` is the sha256 of the canonical JSON of (seq, kind, created_at,
subject, payload_sha256, prev_hash), and ``prev_hash`` is the previous event's ``event_hash`` (64
zeros for the first). So editing a payload, a field, or deleting a row in the middle is detected by
``verify_chain``. Events are appended inside the caller's transaction, next to the registry rows
they describe, so a crash leaves neither half written.

Limits (not a signature): someone who rewrites every later row consistently, or deletes the newest
rows, is not detected by the chain alone; anchoring the head hash elsewhere is a later increment.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from ..common.hashing import canonical_json, sha256_json, sha256_text
from ..common.render import abbreviated
from . import backends
from .connection import connect

GENESIS_HASH = "0" * 64
USER_ENV = "FINE_TUNE_USER"


class EventKind(StrEnum):
    """What a ledger event records. A member is a ``str`` equal to its value, so it hashes, compares and is
    stored exactly as the bare string did: event hashes of existing ledgers stay valid."""

    DATASET_PUBLISHED = "dataset_published"
    ADAPTER_TRAINED = "adapter_trained"
    EVALUATION_COMPLETED = "evaluation_completed"
    PROMOTION = "promotion"
    ROLLBACK = "rollback"
    ERASURE = "erasure"
    DRIFT_EVALUATION = "drift_evaluation"
    DENIED = "denied"  # a refused promote, rollback or erase (lib.audit.access): attempts are audited too


STAGE_KINDS = (EventKind.PROMOTION, EventKind.ROLLBACK)  # the events that move an adapter into or out of a stage


def _iso(value: datetime) -> str:
    """The created_at string that is hashed: always UTC, whatever time zone DuckDB hands back."""
    return value.astimezone(UTC).isoformat()


def event_hash(seq: int, kind: str, created_at: datetime, subject: str, payload_sha256: str, prev_hash: str) -> str:
    return sha256_json({"seq": seq, "kind": kind, "created_at": _iso(created_at), "subject": subject,
                        "payload_sha256": payload_sha256, "prev_hash": prev_hash})


def current_user() -> str:
    """Who is acting, for events a person triggers: ``$FINE_TUNE_USER`` (set it where the OS account is
    shared, e.g. a service account behind a UI), else the OS login name."""
    import getpass

    name = os.environ.get(USER_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no LOGNAME/USER
        return "unknown"


@contextmanager
def transaction(con):
    """BEGIN ... COMMIT around registry rows and their ledger event; ROLLBACK on any error. Writers take
    turns (``backends.begin``), so the event appended reads the newest head of the chain."""
    try:
        backends.begin(con)
        yield con
        con.execute("COMMIT")
    except BaseException:
        with suppress(Exception):  # a failed COMMIT may have ended the transaction; keep the first error
            con.execute("ROLLBACK")
        raise


def append_event(con, kind: EventKind | str, subject: str, payload: dict) -> dict:
    """Append one event using the caller's connection (and open transaction, if any); returns the row."""
    try:
        kind = EventKind(kind).value
    except ValueError:
        raise ValueError(f"unknown ledger event kind {kind!r}; expected one of {', '.join(EventKind)}") from None
    last = con.execute("SELECT seq, event_hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    created_at = datetime.now(UTC)
    payload_text = canonical_json(payload)
    payload_sha = sha256_text(payload_text)
    row = {"seq": seq, "event_id": uuid.uuid4().hex, "kind": kind, "created_at": created_at, "subject": subject,
           "payload": payload, "payload_sha256": payload_sha, "prev_hash": prev,
           "event_hash": event_hash(seq, kind, created_at, subject, payload_sha, prev)}
    con.execute("INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [seq, row["event_id"], kind, created_at, subject, payload_text, payload_sha, prev, row["event_hash"]])
    return row


def read_events(con) -> list[dict]:
    """Every ledger row in seq order, payload parsed (None if it is no longer valid JSON)."""
    cursor = con.execute("SELECT seq, event_id, kind, created_at, subject, payload, payload_sha256, prev_hash, "
                         "event_hash FROM ledger ORDER BY seq")
    columns = [d[0] for d in cursor.description]
    rows = [dict(zip(columns, r)) for r in cursor.fetchall()]
    for row in rows:
        row["payload_text"] = row["payload"]
        try:
            row["payload"] = json.loads(row["payload"])
        except (TypeError, ValueError):
            row["payload"] = None
    return rows


def verify_chain(con, events: list[dict] | None = None) -> list[str]:
    """Problems with the ledger itself: altered payloads or fields, broken links, deleted rows."""
    events = read_events(con) if events is None else events
    problems: list[str] = []
    expected_seq, prev_event_hash = 1, GENESIS_HASH
    for row in events:
        seq = row["seq"]
        gap = seq != expected_seq
        if gap:
            missing = range(expected_seq, seq)
            for m in missing:
                problems.append(f"ledger row seq {m} missing (deleted)")
        if row["payload"] is None:
            problems.append(f"ledger row seq {seq} altered: payload is no longer valid JSON")
        else:
            now = sha256_json(row["payload"])
            if now != row["payload_sha256"]:
                problems.append(f"ledger row seq {seq} altered: {row['kind']} payload for {row['subject'][:12]} "
                                f"no longer matches its payload_sha256 (recorded {abbreviated(row['payload_sha256'])}, "
                                f"now {abbreviated(now)})")
        recomputed = event_hash(seq, row["kind"], row["created_at"], row["subject"], row["payload_sha256"],
                                row["prev_hash"])
        if recomputed != row["event_hash"]:
            problems.append(f"ledger row seq {seq} altered: event_hash does not recompute (recorded "
                            f"{abbreviated(row['event_hash'])}, now {abbreviated(recomputed)}): kind, created_at, "
                            "subject, payload_sha256 or prev_hash changed")
        if not gap and row["prev_hash"] != prev_event_hash:  # across a gap the deletion is already reported
            previous = f"seq {seq - 1}'s event_hash" if seq > 1 else "the genesis hash (64 zeros)"
            problems.append(f"ledger row seq {seq} chain broken: prev_hash {abbreviated(row['prev_hash'])} does not "
                            f"match {previous} {abbreviated(prev_event_hash)}")
        expected_seq, prev_event_hash = seq + 1, row["event_hash"]
    return problems


def event_reference(registry: str | Path, kind: EventKind, subject: str) -> str | None:
    """``"seq N <event_hash>"`` of the newest ``kind`` event about ``subject`` (UI metadata, so a
    materialization points at its ledger entry), or None when there is none."""
    with connect(registry, read_only=True) as con:
        row = con.execute("SELECT seq, event_hash FROM ledger WHERE kind = ? AND subject = ? ORDER BY seq DESC "
                          "LIMIT 1", [kind, subject]).fetchone()
    return f"seq {row[0]} {row[1]}" if row else None
