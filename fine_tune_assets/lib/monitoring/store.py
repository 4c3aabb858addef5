"""Drift evaluations in the registry: one ``drift_evaluations`` row and its ``drift_evaluation``
ledger event, written in one transaction, so that an evaluation is either recorded and chained or
not there at all. Earlier evaluations of the same reference feed the next decision (confirmation
over disjoint windows, cooldown)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ..common.hashing import sha256_json
from ..registry.connection import rows_as_dicts
from ..registry.ledger import EventKind, append_event, transaction
from .drift import DriftReport, PastEvaluation
from .policy import DRIFT_LOGIC_VERSION
from .sources import Reference

DRIFT_CODE_VERSION = f"drift-{DRIFT_LOGIC_VERSION}"


def evaluation_id(report: DriftReport, reference: Reference, candidate: str) -> str:
    return sha256_json({"reference": reference.version_id, "candidate": candidate, "created_at": report.created_at,
                        "window": report.window_ids_sha256, "policy": report.policy_hash})[:16]


def record_evaluation(con, report: DriftReport, reference: Reference, candidate: str,
                      code_version: str = DRIFT_CODE_VERSION) -> dict:
    """Insert the evaluation and append its ledger event; returns ``evaluation_id`` and ``event_seq``."""
    eid = evaluation_id(report, reference, candidate)
    summary = report.to_dict()
    payload = {"evaluation_id": eid, "reference_adapter": reference.adapter_id,
               "reference_version": reference.version_id, "reference_chosen": reference.how,
               "candidate": candidate, "decision": report.decision, "reasons": report.reasons,
               "n_reference": report.n_reference, "n_window": report.n_window,
               "window_ids_sha256": report.window_ids_sha256, "detectors": summary["detectors"],
               "control": summary["control"], "policy_hash": report.policy_hash, "code_version": code_version}
    with transaction(con):
        event = append_event(con, EventKind.DRIFT_EVALUATION, reference.adapter_id or reference.version_id, payload)
        con.execute("INSERT INTO drift_evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [eid, datetime.fromisoformat(report.created_at), reference.adapter_id, reference.version_id,
                     candidate, report.decision, report.n_reference, report.n_window, report.window_ids_sha256,
                     json.dumps(report.window_ids), json.dumps(summary, default=str), report.policy_hash,
                     code_version, None, event["seq"]])
    return {"evaluation_id": eid, "event_seq": event["seq"]}


def past_evaluations(con, reference_version: str) -> list[PastEvaluation]:
    """Earlier evaluations against this reference, as the decision reads them."""
    rows = rows_as_dicts(con.execute(
        "SELECT decision, window_ids, created_at, retrain_requested_at FROM drift_evaluations "
        "WHERE reference_version = ? ORDER BY created_at", [reference_version]))
    return [PastEvaluation(r["decision"], frozenset(json.loads(r["window_ids"])), _aware(r["created_at"]),
                           r["retrain_requested_at"] is not None) for r in rows]


def mark_retrain_requested(con, eid: str, at: datetime | None = None) -> None:
    con.execute("UPDATE drift_evaluations SET retrain_requested_at = ? WHERE evaluation_id = ?",
                [at or datetime.now(UTC), eid])


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
