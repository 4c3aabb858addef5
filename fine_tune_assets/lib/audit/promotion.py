"""Adapter stages: promote an adapter to a named stage (staging, production, ...) or roll a stage back.

Every transition is one row of the ``adapter_stages`` table and one ledger event (``promotion`` or
``rollback``), written in one transaction, so a crash leaves neither. The current holder of a stage
is not stored anywhere else: it is derived by replaying the stage's rows in ``seq`` order (``registry.stages``).

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

Access control (``audit.access``, when the caller passes the deployment's roles): a protected stage needs
the ``approver`` role for both transitions, and a promotion to it keeps the four-eyes rule (overridden only by
``--force`` with a second approver). It is asked first, before any of the checks above, and a refusal is a
``denied`` ledger event plus ``AccessDenied``, never a ``PromotionError``.

In the ``adapter_stages`` table ``adapter_id`` is the adapter that holds the stage *after* the
transition and ``previous_adapter_id`` the one that held it *before* (for a rollback: the adapter
that was rolled back). ``forced`` is true only when a refused check was overridden.

Ledger payloads (other code reads these keys):

- ``promotion``, subject = the promoted adapter: {adapter_id, stage, previous_adapter_id (or null),
  reason, user, forced, gate, approval}; ``gate`` is the state of the promotion checks at that moment:
  {evaluated, eval_id, passed, primary_metric, reasons, needs_retraining}; ``approval`` is
  ``access.approve_promotion``'s record (roles, trainer, four-eyes state, second approver).
- ``rollback``, subject = the adapter now in the stage: {stage, adapter_id, rolled_back_adapter_id,
  reason, user, approval}; ``approval``: {access, protected, roles}.
  (Events written before access control have no ``approval``.)
"""

from __future__ import annotations

from pathlib import Path

from ..evaluation.store import latest_evaluation
from ..registry.backends import display
from ..registry.connection import connect, registry_exists
from ..registry.erasures import needs_retraining
from ..registry.ledger import EventKind, append_event, current_user, transaction
from ..registry.resolve import resolve_adapter
from ..registry.stages import STAGE_PATTERN, current_stages, stage_stacks
from .access import NOT_CONFIGURED, OFF, OVERRIDDEN, AccessPolicy, approve_promotion, approve_rollback, launched_by


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


def gate_state(con, adapter_id: str) -> dict:
    """The promotion checks as recorded in a ``promotion`` event's ``gate``."""
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
    seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM adapter_stages").fetchone()[0]
    con.execute("INSERT INTO adapter_stages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [seq, stage, action, adapter_id, previous, reason, user, forced, event["created_at"],
                 event["seq"]])
    return {"seq": seq, "stage": stage, "action": action, "adapter_id": adapter_id,
            "previous_adapter_id": previous, "reason": reason, "user_name": user, "forced": forced,
            "created_at": event["created_at"].isoformat(), "event_seq": event["seq"]}


def _registry_or_fail(registry: str | Path) -> str | Path:
    if not registry_exists(registry):
        raise PromotionError(f"no registry at {display(registry)} yet: nothing has been published")
    return registry


def promote(registry_path: str | Path, adapter_id: str, stage: str, reason: str, user: str | None = None,
            allow_failed_gate: bool = False, access: AccessPolicy = OFF, second_approver: str | None = None) -> dict:
    """Make ``adapter_id`` (anything ``registry.resolve.resolve_adapter`` accepts) the holder of ``stage``;
    returns the ``adapter_stages`` row plus ``gate`` and ``approval`` (see the module docstring for the checks
    and the payload). ``access``: the deployment's roles (``load_access(paths.access)``); ``OFF`` checks none."""
    stage, reason = check_stage(stage), check_reason(reason)
    user = user or current_user()
    second_approver = (second_approver or "").strip() or None
    if second_approver and not access.protects(stage):
        raise PromotionError(f"--second-approver is for a protected stage, and {stage} is not one"
                             + ("" if access.configured else f" (access control: {NOT_CONFIGURED})"))
    with connect(_registry_or_fail(registry_path)) as con:
        adapter = resolve_adapter(con, adapter_id)
        adapter_id = adapter["adapter_id"]
        approval = approve_promotion(con, access, user, adapter_id, stage, launched_by(adapter), reason,
                                     allow_failed_gate, second_approver)  # commits a denied event and raises
        with transaction(con):
            return _promote(con, adapter_id, stage, reason, user, allow_failed_gate, approval)


def _promote(con, adapter_id: str, stage: str, reason: str, user: str, allow_failed_gate: bool,
             approval: dict) -> dict:
    """The promotion checks and the write, inside the caller's transaction, once access was granted."""
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
    if approval["four_eyes"] == OVERRIDDEN:
        problems.append(f"four-eyes rule ({approval['four_eyes_problem']}); second approver "
                        f"{approval['second_approver']}")
    forced = bool(problems)
    event = append_event(con, EventKind.PROMOTION, adapter_id, {
        "adapter_id": adapter_id, "stage": stage, "previous_adapter_id": previous, "reason": reason,
        "user": user, "forced": forced, "gate": gate, "approval": approval})
    row = _insert(con, stage, "promote", adapter_id, previous, reason, user, forced, event)
    return {**row, "gate": gate, "approval": approval, "overridden": problems}


def rollback(registry_path: str | Path, stage: str, reason: str, user: str | None = None,
             access: AccessPolicy = OFF) -> dict:
    """Give ``stage`` back to the adapter that held it before the current holder (see the module
    docstring for the rule); returns the ``adapter_stages`` row. ``access`` as for ``promote``."""
    stage, reason = check_stage(stage), check_reason(reason)
    user = user or current_user()
    with connect(_registry_or_fail(registry_path)) as con:
        holder = current_stages(con).get(stage)
        approval = approve_rollback(con, access, user, stage, holder or f"stage:{stage}", reason)
        with transaction(con):
            return _rollback(con, stage, reason, user, approval)


def _rollback(con, stage: str, reason: str, user: str, approval: dict) -> dict:
    """The rollback rule and the write, inside the caller's transaction, once access was granted."""
    stack = stage_stacks(con).get(stage, [])
    if not stack:
        raise PromotionError(f"stage {stage} has no adapter: nothing to roll back")
    current = stack[-1]
    if len(stack) < 2:
        raise PromotionError(f"cannot roll back {stage}: {current[:12]} is its first adapter still in effect "
                             "(no previous adapter to return to); promote another adapter instead")
    target = stack[-2]
    if not con.execute("SELECT count(*) FROM adapters WHERE adapter_id = ?", [target]).fetchone()[0]:
        raise PromotionError(f"cannot roll back {stage} to {target[:12]}: that adapter is no longer registered")
    if needs_retraining(con, target):
        raise PromotionError(f"cannot roll back {stage} to {target[:12]}: it is flagged needs_retraining "
                             "(trained on erased data); promote another adapter instead, or promote it "
                             "with --force")
    event = append_event(con, EventKind.ROLLBACK, target, {
        "stage": stage, "adapter_id": target, "rolled_back_adapter_id": current, "reason": reason,
        "user": user, "approval": approval})
    return _insert(con, stage, "rollback", target, current, reason, user, False, event)
