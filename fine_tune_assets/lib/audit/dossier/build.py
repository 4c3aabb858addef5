"""The dossier as data: every section, the key hashes, banners, and the list of gaps.

The dict is JSON-able and holds no record content: only ids, counts, hashes, policy and file names, and the
free-text fields people wrote into the ledger (promotion and erasure reasons). ``content_hash`` covers all of
it except the generation stamp, so unchanged facts give the same hash.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ...common.hashing import sha256_json
from ...common.paths import SOURCE_ROOT
from ...common.render import iso_time
from ...common.versions import installed_version
from ...registry.backends import display
from ...training.publish import git_commit
from .blocks import section_gaps
from .context import DossierContext, load_context
from .sections import SECTIONS
from .values import load_json

DOSSIER_FORMAT = "2"  # 2: the approvals section (separation of duties)


def tool_version() -> dict:
    return {"name": "fine_tune_assets", "version": installed_version("fine_tune_assets"),
            "dossier_format": DOSSIER_FORMAT, "git_commit": git_commit(SOURCE_ROOT)}


def _banners(ctx: DossierContext) -> list[dict]:
    """What a reader must see first: needs retraining, integrity problems, not evaluated or a failed gate."""
    banners = []
    for e in ctx.retrain:
        p = e["payload"]
        banners.append({"level": "critical", "text": (
            f"NEEDS RETRAINING: erasure request {p.get('request_id') or e['subject']} (ledger seq {e['seq']}, "
            f"{iso_time(e['created_at'])}, {len(p.get('record_ids') or [])} record(s)) names this adapter among the "
            "adapters trained on the erased records. New dataset version without them: "
            f"{p.get('new_version') or 'none recorded'}.")})
    integrity = ctx.integrity
    if integrity["nothing_to_verify"]:
        banners.append({"level": "warning", "text": "INTEGRITY NOT VERIFIABLE: the registry has no ledger events "
                                                    "(published before the audit ledger existed)."})
    elif not integrity["ok"]:
        banners.append({"level": "critical", "text": f"INTEGRITY CHECK FAILED: {len(integrity['problems'])} "
                                                     "problem(s), see Integrity."})
    gate = (ctx.report or {}).get("gate") or load_json((ctx.evaluation or {}).get("gate")) or {}
    if not ctx.report and not ctx.evaluation:
        banners.append({"level": "warning", "text": "NOT EVALUATED: no evaluation recorded for this adapter."})
    elif gate.get("passed") is False:
        banners.append({"level": "warning", "text": "PROMOTION GATE FAILED: " + "; ".join(map(str, gate.get(
            "reasons") or []))})
    return banners


def _hashes(ctx: DossierContext) -> dict:
    eval_set_sha = ((ctx.evaluation or {}).get("eval_set_sha256")
                    or ((ctx.report or {}).get("eval_set") or {}).get("sha256"))
    return {"adapter_id": ctx.aid, "dataset_version": ctx.version_id,
            "dataset_manifest_sha256": ctx.manifest_sha256,
            "training_config_hash": ctx.adapter["training_config_hash"],
            "base_model_identity_hash": (ctx.lineage.get("base_model") or {}).get("identity_hash"),
            "eval_set_sha256": eval_set_sha}


def build_dossier(paths_or_registry, adapter_id: str) -> dict:
    """Every section of the audit dossier of ``adapter_id`` (full id, unique prefix or 'latest')."""
    ctx = load_context(paths_or_registry, adapter_id)
    sections = [build(ctx) for build in SECTIONS]
    gaps = [{"section": s["title"], "item": label, "reason": reason}
            for s in sections for label, reason in section_gaps(s)]
    head = ctx.head
    return {
        "title": f"Audit dossier: adapter {ctx.aid[:12]}",
        "format": DOSSIER_FORMAT,
        "generated_at": datetime.now(UTC).isoformat(),
        "tool": tool_version(),
        "registry": display(ctx.paths.registry),
        "adapter_id": ctx.aid,
        "dataset_version": ctx.version_id,
        "hashes": _hashes(ctx),
        "ledger_head": {"seq": head["seq"], "event_hash": head["event_hash"]} if head else None,
        "integrity_ok": bool(ctx.integrity["ok"]) and not ctx.integrity["nothing_to_verify"],
        "needs_retraining": bool(ctx.retrain),
        "banners": _banners(ctx),
        "sections": sections,
        "gaps": gaps,
    }


def content_hash(dossier: dict) -> str:
    """sha256 of the dossier without its generation stamp: unchanged facts give the same hash."""
    return sha256_json({k: v for k, v in dossier.items() if k != "generated_at"})
