"""Approvals: the separation of duties around the adapter. Who launched its training, who moved it into or out of
a stage and under which roles, whether the four-eyes rule held or was overridden (and by whom), and the refused
attempts about it (``audit.access``; ledger ``promotion``, ``rollback`` and ``denied`` events)."""

from __future__ import annotations

from ....common.render import short, value_text
from ....registry.ledger import STAGE_KINDS, EventKind
from ...access import HELD, NOT_CHECKED, NOT_CONFIGURED, OVERRIDDEN
from ..blocks import fields, item, section, table
from ..context import DossierContext
from ..events import event_time, payload

BEFORE_ACCESS_CONTROL = "not recorded (before access control)"


def _access_text(access, brief: bool = False) -> str:
    """A recorded or current ``AccessPolicy.describe()``; ``brief``: for a table cell."""
    if brief and isinstance(access, dict) and access.get("sha256"):
        return f"configured (roles file sha256 {short(access['sha256'])})"
    if brief and access == NOT_CONFIGURED:
        return NOT_CONFIGURED
    if access == NOT_CONFIGURED:
        return f"{NOT_CONFIGURED}: no config/access.yaml, so promotions, rollbacks and erasures were not checked"
    if isinstance(access, dict) and access.get("error"):
        return f"UNUSABLE: {access['error']}"
    if isinstance(access, dict):
        stages = ", ".join(access.get("protected_stages") or []) or "none"
        return f"configured: {access.get('file')} (sha256 {short(access.get('sha256'))}), protected stages: {stages}"
    return value_text(access)


def _four_eyes_text(p: dict, approval: dict) -> str:
    state = approval.get("four_eyes")
    if state == HELD:
        return f"held: trained by {approval.get('trained_by')}, promoted by {p.get('user')}"
    if state == OVERRIDDEN:
        return f"OVERRIDDEN ({approval.get('four_eyes_problem')}): second approver {approval.get('second_approver')}"
    if state == NOT_CHECKED:
        why = "access control not configured" if approval.get("access") == NOT_CONFIGURED else \
            f"{p.get('stage')} is not a protected stage"
        return f"not checked: {why}"
    return "-" if state is None else value_text(state)


def _transitions(ctx: DossierContext) -> list[dict]:
    """Promotions of this adapter and rollbacks that gave it a stage back or took one from it."""
    return [e for e in ctx.mine if e["kind"] in STAGE_KINDS and ctx.aid in (
        payload(e).get("adapter_id"), payload(e).get("rolled_back_adapter_id"))]


def _transition_row(e: dict) -> list:
    p = payload(e)
    approval = p.get("approval") if isinstance(p.get("approval"), dict) else None
    if e["kind"] == EventKind.PROMOTION:
        what = f"promoted to {p.get('stage')}"
    else:
        what = (f"{p.get('stage')} rolled back from {short(p.get('rolled_back_adapter_id'))} to "
                f"{short(p.get('adapter_id'))}")
    if approval is None:
        return [e["seq"], event_time(e), what, p.get("user"), BEFORE_ACCESS_CONTROL, "-", "-",
                "yes" if p.get("forced") else "no", BEFORE_ACCESS_CONTROL]
    four_eyes = _four_eyes_text(p, approval) if e["kind"] == EventKind.PROMOTION else "-"
    return [e["seq"], event_time(e), what, p.get("user"), ", ".join(approval.get("roles") or []) or "none",
            "yes" if approval.get("protected") else "no", four_eyes, "yes" if p.get("forced") else "no",
            _access_text(approval.get("access"), brief=True)]


def _four_eyes_verdict(ctx: DossierContext) -> str:
    promotions = [payload(e) for e in _transitions(ctx) if e["kind"] == EventKind.PROMOTION]
    checked = [p for p in promotions if isinstance(p.get("approval"), dict)
               and p["approval"].get("four_eyes") in (HELD, OVERRIDDEN)]
    overridden = [p for p in checked if p["approval"]["four_eyes"] == OVERRIDDEN]
    if overridden:
        seconds = ", ".join(f"{p['approval'].get('second_approver')} ({p.get('stage')})" for p in overridden)
        return f"OVERRIDDEN on {len(overridden)} promotion(s), second approver: {seconds}"
    if checked:
        return f"held on every promotion to a protected stage ({len(checked)})"
    return "not applied: never promoted to a protected stage under access control"


def approvals(ctx: DossierContext) -> dict:
    trainer = ctx.lineage.get("launched_by")
    denied = [e for e in ctx.mine if e["kind"] == EventKind.DENIED]
    blocks = [
        fields(
            item("access control (when this dossier was generated)", _access_text(ctx.access)),
            item("training launched by", trainer, gap=None if trainer else (
                "not recorded: trained before launched_by was recorded, so the four-eyes rule cannot be checked "
                "(a promotion to a protected stage needs --force --second-approver)")),
            item("four-eyes rule", _four_eyes_verdict(ctx)),
        ),
        table("Stage approvals (ledger promotion and rollback events of this adapter)",
              ["seq", "at (UTC)", "transition", "by", "roles", "protected stage", "four-eyes rule", "forced",
               "access control"],
              [_transition_row(e) for e in _transitions(ctx)],
              empty=["-", "-", "none: this adapter was never promoted", "-", "-", "-", "-", "-", "-"]),
        table("Denied attempts about this adapter (ledger denied events)",
              ["seq", "at (UTC)", "user", "action", "why refused", "their reason"],
              [[e["seq"], event_time(e), payload(e).get("user"), payload(e).get("action"), payload(e).get("why"),
                payload(e).get("reason")] for e in denied],
              empty=["-", "-", "-", "none: no refused attempt about this adapter", "-", "-"]),
    ]
    return section("approvals", "Approvals", blocks)
