"""Evaluations in the registry: the ``evaluations`` row and its ledger event, written together, and read back.

An evaluation's id is its content: the same adapter on the same held-out set with the same spec and logic is
the same evaluation (recording it again replaces the row).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ..common.hashing import canonical_json, sha256_file, sha256_json
from ..registry.connection import connect
from ..registry.ledger import EventKind, append_event, transaction
from .spec import EVAL_LOGIC_VERSION


def evaluation_id(report: dict) -> str:
    """Same adapter, same held-out set, same spec and logic = same evaluation."""
    return sha256_json({"adapter": report["adapter_id"], "eval_set": report["eval_set"]["sha256"],
                        "spec": report["config"]["spec_hash"], "logic": EVAL_LOGIC_VERSION})


def record_evaluation(registry: Path | str, report: dict, report_path: Path, card_sha256: str | None = None) -> str:
    """The evaluation's row and ledger event. ``card_sha256``: the adapter's README.md as the evaluation rewrote
    it with its results (``verify`` then expects that card instead of the one training wrote)."""
    eval_id = evaluation_id(report)
    metrics = report["metrics"]
    gate = report["gate"]
    folder = Path(report_path).parent  # the report files, hashed so that `verify` notices an edited report
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()} if folder.is_dir() else {}
    with connect(registry) as con, transaction(con):  # the row and its ledger event, or neither
        con.execute("DELETE FROM evaluations WHERE eval_id = ?", [eval_id])
        con.execute("INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [eval_id, report["adapter_id"], datetime.now(UTC), report["dataset_version"],
                     report["eval_set"]["sha256"], report["config"]["spec_hash"], canonical_json(metrics),
                     canonical_json({**gate, "regression": report["regression"]}), str(report_path)])
        append_event(con, EventKind.EVALUATION_COMPLETED, eval_id, {
            "eval_id": eval_id, "adapter_id": report["adapter_id"],
            "eval_set_sha256": report["eval_set"]["sha256"], "spec_hash": report["config"]["spec_hash"],
            "gate_passed": bool(gate.get("passed")),
            "primary_metric": {"name": gate.get("primary_metric"), "base": gate.get("base"),
                               "fine_tuned": gate.get("fine_tuned")},
            **({"files": files} if files else {}),
            **({"card_sha256": card_sha256} if card_sha256 else {})})
    return eval_id


def latest_evaluation(con, adapter_id: str) -> dict | None:
    """The newest evaluation of an adapter as {eval_id, created_at, base, fine_tuned, gate, report}, or None."""
    row = con.execute("SELECT eval_id, created_at, metrics, gate, report_path FROM evaluations WHERE adapter_id = ? "
                      "ORDER BY created_at DESC LIMIT 1", [adapter_id]).fetchone()
    if row is None:
        return None
    metrics = json.loads(row[2])
    return {"eval_id": row[0], "created_at": row[1].isoformat(), "base": metrics.get("base"),
            "fine_tuned": metrics.get("fine_tuned"), "gate": json.loads(row[3]), "report": row[4]}
