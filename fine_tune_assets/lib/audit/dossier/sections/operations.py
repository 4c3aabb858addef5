"""Operations: stage history, drift evaluations, erasures, and whether the adapter needs retraining."""

from __future__ import annotations

from ....common.render import short, value_text
from ....registry.ledger import STAGE_KINDS, EventKind
from ..blocks import fields, item, section, table
from ..context import DossierContext
from ..events import event_time, payload, stage_holders

DRIFT_POLICY_GAP = ("no drift evaluation recorded against this adapter's data yet: the drift policy "
                    "(config/drift_policy.yaml) applies once drift_report runs with this adapter as reference")


def _gate_text(gate) -> str:
    """A promotion event's gate state ({evaluated, passed, needs_retraining, ...}) in a few words."""
    if not isinstance(gate, dict):
        return "-" if gate is None else value_text(gate)
    if gate.get("evaluated") is False or gate.get("passed") is None:
        text = "not evaluated"
    else:
        text = "passed" if gate["passed"] else "FAILED"
    return text + (", needs retraining" if gate.get("needs_retraining") else "")


def _sources_text(sources) -> str:
    """Erasure payload source files: {source_file, source_sha256} dicts (or plain names)."""
    parts = [f"{s.get('source_file')} ({short(s.get('source_sha256'))})" if isinstance(s, dict) else str(s)
             for s in sources or []]
    return ", ".join(parts) or "-"


def _stage_history(ctx: DossierContext) -> dict:
    rows = []
    for e in ctx.mine:
        if e["kind"] not in STAGE_KINDS:
            continue
        p = payload(e)
        if e["kind"] == EventKind.PROMOTION:
            action = (f"promoted {short(p.get('adapter_id'))} to {p.get('stage')}"
                      + (f", replacing {short(p.get('previous_adapter_id'))}" if p.get("previous_adapter_id") else ""))
        else:
            action = (f"rolled {p.get('stage')} back from {short(p.get('rolled_back_adapter_id'))} to "
                      f"{short(p.get('adapter_id'))}")
        gate_text = _gate_text(p.get("gate")) if e["kind"] == EventKind.PROMOTION else "-"
        rows.append([e["seq"], event_time(e), e["kind"], action, p.get("reason"), p.get("user"),
                     "yes" if p.get("forced") else ("no" if e["kind"] == EventKind.PROMOTION else "-"), gate_text,
                     short(e["event_hash"], 16)])
    return table("Stage history (ledger promotion and rollback events)",
                 ["seq", "at (UTC)", "kind", "transition", "reason", "by", "forced", "gate", "event hash"], rows,
                 empty=["-", "-", "-", "none: this adapter was never promoted or rolled back", "-", "-", "-", "-", "-"])


def _erasures(ctx: DossierContext) -> dict:
    rows = []
    for e in ctx.erasures:
        p = payload(e)
        rows.append([e["seq"], event_time(e), p.get("request_id") or e["subject"], len(p.get("record_ids") or []),
                     _sources_text(p.get("source_files")), p.get("reason"), p.get("user"),
                     ", ".join(short(v) for v in p.get("affected_versions") or []) or "-",
                     ", ".join(short(v) for v in p.get("affected_adapters") or []) or "-",
                     short(p.get("new_version")) or "-"])
    return table("Erasures affecting this adapter or its dataset version",
                 ["seq", "at (UTC)", "request", "records erased", "source files", "reason", "by",
                  "affected versions", "affected adapters", "new version"], rows,
                 empty=["-", "-", "none: no erasure request affects this adapter or its dataset version",
                        "-", "-", "-", "-", "-", "-", "-"])


def _drift_row(e: dict) -> list:
    p = payload(e)
    if "decision" not in p:  # an event written before drift monitoring had its own payload: as recorded
        return [e["seq"], event_time(e), "-", "-", "-", "-", e.get("payload_text") or value_text(p), "-", "-"]
    flagged = [name for name, d in (p.get("detectors") or {}).items() if isinstance(d, dict) and d.get("flagged")]
    return [e["seq"], event_time(e), p["decision"], short(p.get("reference_version")), short(p.get("candidate")),
            p.get("n_window"), ", ".join(flagged) or "none", short(p.get("window_ids_sha256"), 16),
            short(p.get("policy_hash"))]


def _retraining_verdict(ctx: DossierContext) -> str:
    if ctx.retrain:
        new_versions = [e["payload"]["new_version"] for e in ctx.retrain if e["payload"].get("new_version")]
        return (f"YES: trained on records erased by {len(ctx.retrain)} erasure request(s) above" + (
            f"; retrain on dataset version {', '.join(short(v) for v in new_versions)}" if new_versions else ""))
    if ctx.erasures:
        return ("no: an erasure request mentions it (e.g. its dataset version is the one published without "
                "the erased records), but it was not trained on erased records")
    return "no: no erasure request affects it"


def operations(ctx: DossierContext) -> dict:
    current = sorted(stage for stage, h in stage_holders(ctx.events).items() if h["adapter_id"] == ctx.aid)
    any_stage_events = any(e["kind"] in STAGE_KINDS for e in ctx.events)
    drift = [e for e in ctx.mine if e["kind"] == EventKind.DRIFT_EVALUATION]
    policies = sorted({short(payload(e).get("policy_hash")) for e in drift if payload(e).get("policy_hash")})
    blocks = [
        fields(
            item("drift policy", ", ".join(policies) + " (hash, from the drift_evaluation events)" if policies
                 else None, gap=None if policies else DRIFT_POLICY_GAP),
            item("current stage(s)", ", ".join(current) if current else (
                "none: the adapter holds no stage" if any_stage_events else
                "none: no promotion has been recorded in the ledger")),
        ),
        _stage_history(ctx),
        table("Drift evaluations (ledger drift_evaluation events)",
              ["seq", "at (UTC)", "decision", "reference version", "candidate", "window", "families flagged",
               "window ids sha256", "policy"],
              [_drift_row(e) for e in drift],
              gap="no drift evaluation recorded for this adapter"),
        _erasures(ctx),
        fields(item("needs retraining", _retraining_verdict(ctx))),
    ]
    return section("operations", "Operations", blocks)
