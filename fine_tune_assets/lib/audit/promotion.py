"""Adapter stages: promote an adapter to a named stage (staging, production, ...) or roll a stage back.

Every transition is one row of the ``adapter_stages`` table and one ledger event (``promotion`` or
``rollback``), written in one transaction, so a crash leaves neither. The current holder of a stage
is not stored anywhere else: it is derived by replaying the stage's rows in ``seq`` order.

The rule (a stack per stage):

- ``promote X`` pushes X onto the stage's stack; X is now the stage's holder. Promoting the current
  holder again is refused. X may appear further down the stack (it held the stage earlier): that
  entry stays, it is history.
- ``rollback`` pops the current holder; the entry below it, i.e. the adapter that held the stage
  right before the current holder was promoted, holds the stage again. The rolled-back promotion
  is gone from the stack, so no later rollback restores it: only a new ``promote`` does (or an
  earlier promotion of the same adapter that is still on the stack).
  So ``promote A, promote B, promote C, rollback, rollback`` leaves A (C then B were undone), a
  third rollback is refused; ``promote A, promote B, rollback, promote C, rollback`` leaves A (B was
  rolled back before C came, so it is skipped); ``promote A, promote B, promote A, rollback,
  rollback`` leaves B then A (each rollback undoes exactly one promotion that is still in effect).
- A rollback never empties a stage: with nothing below the current holder it is refused. So the
  ``rollback`` event's ``adapter_id`` is always the adapter now in the stage (never null).
- A rollback is refused when the adapter it would restore is no longer registered or is flagged
  ``needs_retraining`` (``adapter_flags``, written by the erasure feature): promote another adapter
  instead, or promote that one explicitly with ``force``. A rollback does not re-check the
  evaluation gate: it restores a state that was already accepted once.

Promotion checks (each overridable with ``allow_failed_gate`` / ``--force``, which is then recorded
as ``"forced": true``): the adapter's newest evaluation passed its promotion gate (no evaluation
counts as not passed), and the adapter is not flagged ``needs_retraining``.

In the ``adapter_stages`` table ``adapter_id`` is the adapter that holds the stage *after* the
transition and ``previous_adapter_id`` the one that held it *before* (for a rollback: the adapter
that was rolled back). ``forced`` is true only when a refused check was overridden.

Ledger payloads (other code reads these keys):

- ``promotion``, subject = the promoted adapter: {adapter_id, stage, previous_adapter_id (or null),
  reason, user, forced, gate}; ``gate`` is the state of the promotion checks at that moment:
  {evaluated, eval_id, passed, primary_metric, reasons, needs_retraining}.
- ``rollback``, subject = the adapter now in the stage: {stage, adapter_id, rolled_back_adapter_id,
  reason, user}.
"""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path

from ..registry.connection import connect, rows_as_dicts, table_names
from ..registry.ledger import append_event, current_user, transaction

STAGE_PATTERN = re.compile(r"[a-z][a-z0-9_-]*")

ADAPTER_STAGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS adapter_stages (
    seq BIGINT PRIMARY KEY,
    stage VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    adapter_id VARCHAR NOT NULL,
    previous_adapter_id VARCHAR,
    reason VARCHAR NOT NULL,
    user_name VARCHAR NOT NULL,
    forced BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    event_seq BIGINT NOT NULL
);
"""


class PromotionError(ValueError):
    """A refused promotion or rollback; the message says why (and what to do instead)."""


def check_stage(stage: str) -> str:
    if not isinstance(stage, str) or not STAGE_PATTERN.fullmatch(stage):
        raise PromotionError(f"invalid stage name {stage!r}: use lowercase letters, digits, '_' or '-', "
                             "starting with a letter (e.g. staging, production)")
    return stage


def check_reason(reason: str | None) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise PromotionError("a reason is required (--reason TEXT): it goes into the audit ledger")
    return reason.strip()


def _rows(con, where: str = "", params: list | None = None) -> list[dict]:
    if "adapter_stages" not in table_names(con):
        return []
    rows = rows_as_dicts(con.execute(f"SELECT * FROM adapter_stages {where} ORDER BY seq", params or []))
    for row in rows:
        row["created_at"] = row["created_at"].astimezone(UTC).isoformat()
    return rows


def stage_stacks(con) -> dict[str, list[str]]:
    """{stage: [adapter ids, bottom to top]}: the promotions still in effect, replayed from the table."""
    stacks: dict[str, list[str]] = {}
    for row in _rows(con):
        stack = stacks.setdefault(row["stage"], [])
        if row["action"] == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != row["adapter_id"]:  # only if the table was edited by hand
                stack.append(row["adapter_id"])
        else:
            stack.append(row["adapter_id"])
    return {stage: stack for stage, stack in stacks.items() if stack}


def current_stages(con) -> dict[str, str]:
    """{stage: adapter_id} for every stage that has a holder."""
    return {stage: stack[-1] for stage, stack in sorted(stage_stacks(con).items())}


def stages_of(con, adapter_id: str) -> list[str]:
    """The stages an adapter holds now, sorted."""
    return [stage for stage, holder in current_stages(con).items() if holder == adapter_id]


def stage_history(con, adapter_id: str | None = None, stage: str | None = None) -> list[dict]:
    """Transitions, oldest first. With ``adapter_id``: those that moved it into or out of a stage
    (it is ``adapter_id`` or ``previous_adapter_id`` of the row); with ``stage``: that stage's."""
    clauses, params = [], []
    if adapter_id is not None:
        clauses.append("(adapter_id = ? OR previous_adapter_id = ?)")
        params += [adapter_id, adapter_id]
    if stage is not None:
        clauses.append("stage = ?")
        params.append(stage)
    return _rows(con, ("WHERE " + " AND ".join(clauses)) if clauses else "", params)


def resolve_adapter(con, ref: str) -> str:
    """A registered adapter id from a full id, a unique prefix, or 'latest' (the newest), as ``adapters show``."""
    if "adapters" not in table_names(con):
        raise PromotionError("no adapters registered yet: materialize lora_adapter first")
    if ref == "latest":
        ids = [r[0] for r in con.execute("SELECT adapter_id FROM adapters ORDER BY created_at DESC LIMIT 1").fetchall()]
    else:
        ids = [r[0] for r in con.execute("SELECT adapter_id FROM adapters WHERE starts_with(adapter_id, ?) "
                                         "ORDER BY created_at DESC", [ref or ""]).fetchall()] if ref else []
    if len(ids) != 1:
        what = "no adapter" if not ids else f"{len(ids)} adapters"
        raise PromotionError(f"{what} match {ref!r}; see `fine-tune-assets adapters list`")
    return ids[0]


def needs_retraining(con, adapter_id: str) -> bool:
    """Whether the erasure feature flagged the adapter (table ``adapter_flags``, if it exists)."""
    if "adapter_flags" not in table_names(con):
        return False
    return con.execute("SELECT count(*) FROM adapter_flags WHERE adapter_id = ? AND flag = 'needs_retraining'",
                       [adapter_id]).fetchone()[0] > 0


def gate_state(con, adapter_id: str) -> dict:
    """The promotion checks as recorded in a ``promotion`` event's ``gate``."""
    from ..evaluation.evaluate import latest_evaluation

    evaluation = latest_evaluation(con, adapter_id)
    gate = (evaluation or {}).get("gate") or {}
    return {"evaluated": evaluation is not None,
            "eval_id": evaluation["eval_id"] if evaluation else None,
            "passed": bool(gate.get("passed")) if evaluation else None,
            "primary_metric": gate.get("primary_metric"),
            "reasons": list(gate.get("reasons") or []),
            "needs_retraining": needs_retraining(con, adapter_id)}


def _insert(con, stage: str, action: str, adapter_id: str, previous: str | None, reason: str, user: str,
            forced: bool, event: dict) -> dict:
    con.execute(ADAPTER_STAGES_SCHEMA)
    seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM adapter_stages").fetchone()[0]
    con.execute("INSERT INTO adapter_stages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [seq, stage, action, adapter_id, previous, reason, user, forced, event["created_at"],
                 event["seq"]])
    return {"seq": seq, "stage": stage, "action": action, "adapter_id": adapter_id,
            "previous_adapter_id": previous, "reason": reason, "user_name": user, "forced": forced,
            "created_at": event["created_at"].isoformat(), "event_seq": event["seq"]}


def _registry_or_fail(registry_path: str | Path) -> Path:
    path = Path(registry_path)
    if not path.exists():
        raise PromotionError(f"no registry at {path} yet: nothing has been published")
    return path


def promote(registry_path: str | Path, adapter_id: str, stage: str, reason: str, user: str | None = None,
            allow_failed_gate: bool = False) -> dict:
    """Make ``adapter_id`` (full id, unique prefix or 'latest') the holder of ``stage``; returns the
    ``adapter_stages`` row plus ``gate`` (see the module docstring for the checks and the payload)."""
    stage, reason = check_stage(stage), check_reason(reason)
    user = user or current_user()
    with connect(_registry_or_fail(registry_path)) as con, transaction(con):
        adapter_id = resolve_adapter(con, adapter_id)
        previous = current_stages(con).get(stage)
        if previous == adapter_id:
            raise PromotionError(f"adapter {adapter_id[:12]} is already in {stage}")
        gate = gate_state(con, adapter_id)
        problems = []
        if not gate["evaluated"]:
            problems.append("it has no evaluation (materialize eval_report)")
        elif not gate["passed"]:
            problems.append("its latest evaluation failed the promotion gate"
                            + (f" ({'; '.join(gate['reasons'])})" if gate["reasons"] else ""))
        if gate["needs_retraining"]:
            problems.append("it is flagged needs_retraining (trained on erased data)")
        if problems and not allow_failed_gate:
            raise PromotionError(f"refusing to promote {adapter_id[:12]} to {stage}: {'; '.join(problems)}; "
                                 "use --force to promote anyway (recorded in the ledger)")
        forced = bool(problems)
        event = append_event(con, "promotion", adapter_id, {
            "adapter_id": adapter_id, "stage": stage, "previous_adapter_id": previous, "reason": reason,
            "user": user, "forced": forced, "gate": gate})
        row = _insert(con, stage, "promote", adapter_id, previous, reason, user, forced, event)
    return {**row, "gate": gate, "overridden": problems}


def rollback(registry_path: str | Path, stage: str, reason: str, user: str | None = None) -> dict:
    """Give ``stage`` back to the adapter that held it before the current holder (see the module
    docstring for the rule); returns the ``adapter_stages`` row."""
    stage, reason = check_stage(stage), check_reason(reason)
    user = user or current_user()
    with connect(_registry_or_fail(registry_path)) as con, transaction(con):
        stack = stage_stacks(con).get(stage, [])
        if not stack:
            raise PromotionError(f"stage {stage} has no adapter: nothing to roll back")
        current = stack[-1]
        if len(stack) < 2:
            raise PromotionError(f"cannot roll back {stage}: {current[:12]} is its first adapter still in effect "
                                 "(no previous adapter to return to); promote another adapter instead")
        target = stack[-2]
        registered = "adapters" in table_names(con) and con.execute(
            "SELECT count(*) FROM adapters WHERE adapter_id = ?", [target]).fetchone()[0] > 0
        if not registered:
            raise PromotionError(f"cannot roll back {stage} to {target[:12]}: that adapter is no longer registered")
        if needs_retraining(con, target):
            raise PromotionError(f"cannot roll back {stage} to {target[:12]}: it is flagged needs_retraining "
                                 "(trained on erased data); promote another adapter instead, or promote it "
                                 "with --force")
        event = append_event(con, "rollback", target, {
            "stage": stage, "adapter_id": target, "rolled_back_adapter_id": current, "reason": reason,
            "user": user})
        return _insert(con, stage, "rollback", target, current, reason, user, False, event)
