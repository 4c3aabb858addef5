"""``adapters list|show``, and the stage commands ``adapters promote|rollback|stages``."""

from __future__ import annotations

import json

from fine_tune_assets.lib.common.paths import DataPaths

from .access import roles, warn_if_unchecked
from .arguments import add_list_show
from .output import answer
from .registry import read_registry

EVAL_METRICS = (("eval_loss", False), ("perplexity", False), ("format_compliance", True), ("field_accuracy", True),
                ("domain_term_recall", True), ("general_loss", False))  # (key, shown as a percentage)


def _figure(value, as_percent: bool = False) -> str:
    """A metric in the tables: a percentage or four decimals, ``-`` when there is none."""
    from fine_tune_assets.lib.common.render import number, percent

    return percent(value, missing="-") if as_percent else number(value, 4, missing="-")


def list_adapters(args) -> int:
    from fine_tune_assets.lib.audit.adapter_status import adapter_summaries

    return answer(args, lambda: read_registry(adapter_summaries), _list_text)


def _list_text(rows: list[dict]) -> str:
    if not rows:
        return "no adapters yet: materialize lora_adapter in the UI"
    lines = [(f"{'adapter':<14} {'created (UTC)':<20} {'dataset':<14} {'base model':<24} {'steps':>6} "
              f"{'eval loss':>9} {'format':>7} {'gate':>6}  stage")]
    for r in rows:
        ev = r["eval"] or {}
        tuned = ev.get("fine_tuned") or {}
        loss = tuned.get("eval_loss", r["training"]["eval_loss"])
        gate = "-" if not ev else ("pass" if ev["gate"]["passed"] else "FAIL")
        lines.append(f"{r['adapter_id'][:12]:<14} {r['created_at'][:19]:<20} {r['dataset_version'][:12]:<14} "
                     f"{r['base_model'][:24]:<24} {r['training']['steps']:>6} {_figure(loss):>9} "
                     f"{_figure(tuned.get('format_compliance'), as_percent=True):>7} {gate:>6}  "
                     f"{','.join(r['stages']) or '-'}"
                     + ("  NEEDS RETRAIN (erasure)" if r["needs_retraining"] else ""))
    return "\n".join(lines)


def show_adapter(args) -> int:
    from fine_tune_assets.lib.audit.adapter_status import adapter_details

    return answer(args, lambda: read_registry(lambda con: adapter_details(con, args.adapter)), _show_text)


def _show_text(summary: dict) -> str:
    lines = [f"adapter {summary['adapter_id']}", f"  path    {summary['path']}",
             f"  dataset {summary['dataset_version']}", f"  base    {summary['base_model']}",
             f"  config  {summary['training_config_hash']}", f"  stages  {', '.join(summary['stages']) or '-'}"]
    lines += [f"    {_transition_line(t)}" for t in summary["stage_history"]]
    lines += [f"  {key:<22} {round(value, 4) if isinstance(value, float) else value}"
              for key, value in summary["training"].items()
              if value is not None]  # e.g. eval_loss when training skipped its own evaluation (eval_report has it)
    ev = summary["eval"]
    if not ev:
        return "\n".join([*lines, "  eval: not evaluated yet (materialize eval_report)"])
    lines.append(f"  eval {ev['eval_id'][:12]} ({ev['created_at'][:19]}), report {ev['report']}")
    lines.append(f"    {'metric':<22} {'base':>10} {'fine-tuned':>10}")
    for key, as_percent in EVAL_METRICS:
        lines.append(f"    {key:<22} {_figure(ev['base'].get(key), as_percent):>10} "
                     f"{_figure(ev['fine_tuned'].get(key), as_percent):>10}")
    gate = ev["gate"]
    lines.append(f"    promotion gate {'PASSED' if gate['passed'] else 'FAILED'}: {'; '.join(gate['reasons'])}")
    return "\n".join(lines)


# --- stages -----------------------------------------------------------------------------------

def _transition_text(t: dict) -> str:
    """``promoted X to S (was P; by U: "reason")`` or ``rolled back S from X to P (by U: "reason")``."""
    by = f"by {t['user_name']}: {json.dumps(t['reason'], ensure_ascii=False)}"
    if t["action"] == "rollback":
        return f"rolled back {t['stage']} from {t['previous_adapter_id'][:12]} to {t['adapter_id'][:12]} ({by})"
    was = (t["previous_adapter_id"] or "none")[:12]
    return f"promoted {t['adapter_id'][:12]} to {t['stage']} (was {was}; {by})" + (" [forced]" if t["forced"] else "")


def _transition_line(t: dict) -> str:
    return f"{t['created_at'][:19]}  {_transition_text(t)}"


def promote(args) -> int:
    from fine_tune_assets.lib.audit import promotion

    def text(row: dict) -> str:
        forced = f" [forced past: {'; '.join(row['overridden'])}]" if row["overridden"] else ""
        return _transition_text({**row, "forced": False}) + forced

    paths = DataPaths.from_env()

    def call() -> dict:
        return promotion.promote(paths.registry, args.adapter, args.stage, args.reason, allow_failed_gate=args.force,
                                 access=roles(paths), second_approver=args.second_approver)

    return answer(args, call, text, errors=(promotion.PromotionError,), then=lambda _: warn_if_unchecked(paths))


def rollback(args) -> int:
    from fine_tune_assets.lib.audit import promotion

    paths = DataPaths.from_env()
    return answer(args, lambda: promotion.rollback(paths.registry, args.stage, args.reason, access=roles(paths)),
                  _transition_text, errors=(promotion.PromotionError,), then=lambda _: warn_if_unchecked(paths))


def stages(args) -> int:
    from fine_tune_assets.lib.registry.stages import current_stages, stage_history

    def call() -> dict:
        return read_registry(lambda con: {"current": current_stages(con), "history": stage_history(con)})

    return answer(args, call, _stages_text)


def _stages_text(stages: dict) -> str:
    current, history = stages["current"], stages["history"]
    if not current:
        return "no stages yet: `fine-tune-assets adapters promote ID --stage production --reason TEXT`"
    last = {t["stage"]: t for t in history}
    lines = [f"{'stage':<14} {'adapter':<14} {'since (UTC)':<20} by"]
    lines += [f"{stage:<14} {adapter_id[:12]:<14} {last[stage]['created_at'][:19]:<20} {last[stage]['user_name']}"
              for stage, adapter_id in current.items()]
    lines.append("history (oldest first)")
    lines += [f"  {_transition_line(t)}" for t in history]
    return "\n".join(lines)


def register(sub) -> None:
    group = add_list_show(sub, "adapters", "trained LoRA adapters", "adapter", list_adapters, show_adapter)
    p = group.add_parser("promote", help="make an adapter the holder of a stage (recorded in the ledger)")
    p.add_argument("adapter", help="id, unique prefix (4+), stage name or 'latest'")
    p.add_argument("--stage", required=True, help="e.g. staging, production")
    p.add_argument("--reason", required=True, help="why (recorded with your user name)")
    p.add_argument("--force", action="store_true",
                   help="promote although the gate failed, there is no evaluation, or it needs retraining; with "
                        "--second-approver, although you launched its training (four-eyes rule)")
    p.add_argument("--second-approver", metavar="NAME",
                   help="another approver named in config/access.yaml who agreed to a four-eyes override (recorded)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=promote)
    p = group.add_parser("rollback", help="give a stage back to the adapter that held it before the current one")
    p.add_argument("--stage", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=rollback)
    p = group.add_parser("stages", help="the current adapter of each stage and every transition")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=stages)
