"""Identity: what the adapter is, which base model and code made it, on what hardware, at what compute cost."""

from __future__ import annotations

from datetime import datetime

from ....common.render import iso_time, seconds
from ..blocks import fields, item, section
from ..context import DossierContext
from ..values import load_json


def _wall_seconds(lineage: dict) -> float | None:
    if lineage.get("started_at") and lineage.get("finished_at"):
        try:
            return (datetime.fromisoformat(lineage["finished_at"]) - datetime.fromisoformat(lineage["started_at"])
                    ).total_seconds()
        except ValueError:
            return None
    return None


def trigger_text(trigger: dict | None) -> str:
    """Why the training run was started, from the trigger lineage.json recorded (the run's sensor tags)."""
    if not trigger:
        return "started by hand or by a schedule (no sensor trigger recorded)"
    kind = trigger.get("trigger")
    if kind == "drift":
        scores = ", ".join(f"{k} {v}" for k, v in sorted((trigger.get("drift_scores") or {}).items()))
        text = (f"confirmed drift: drift evaluation {trigger.get('drift_evaluation')} (ledger seq "
                f"{trigger.get('drift_ledger_seq')}), reference dataset {str(trigger.get('drift_reference'))[:12]}, "
                f"candidate dataset {str(trigger.get('drift_candidate'))[:12]}")
        return text + (f"; scores {scores}" if scores else "")
    if kind == "erasure":
        return (f"erasure request {trigger.get('erasure_request')}: retrained on dataset "
                f"{str(trigger.get('erasure_version'))[:12]}, published without the erased records, to replace "
                f"adapter {str(trigger.get('erasure_replaces'))[:12]}")
    return f"sensor trigger {kind!r}: " + ", ".join(f"{k} {v}" for k, v in sorted(trigger.items()) if k != "trigger")


def _planned_against_actual(metrics: dict) -> list[dict]:
    """The cost plan made before training (``fine-tune-assets plan``) next to what the run measured."""
    plan = metrics.get("plan")
    if not plan:
        gap = "no cost plan recorded (no price table at training, or older training code)"
        return [item("plan against actual", None, gap=gap)]
    a, estimate = plan["against_actual"], plan["estimate"]
    parts = ", ".join(f"{k} {v}" for k, v in estimate["peak_memory_gb"].items() if k != "total")
    hours = a["planned_compute_hours"]
    return [
        item("plan: peak GPU memory, estimated before training", f"{a['planned_peak_memory_gb']} GB ({parts})"),
        item("actual: peak memory", f"{a['actual_peak_memory_gb']} GB ({a['actual_peak_memory_kind']})",
             note=None if a["actual_peak_memory_kind"] == "cuda allocated" else
             "on CPU the process's whole memory, not comparable with the GPU estimate"),
        item(f"plan: compute hours on {a['hardware']}", hours,
             gap=None if hours is not None else f"the price table has no entry for this hardware ({a['hardware']})"),
        item("actual: compute hours (training seconds x processes)", a["actual_compute_hours"]),
        item("actual: estimated cost of this run", None if a["actual_cost"] is None else
             f"{a['actual_cost']} at {a['price_per_hour']} per hour ({a['hardware']}, prices as of "
             f"{estimate['prices_as_of']})", gap=None if a["actual_cost"] is not None else "hardware not priced"),
        item("plan: training tokens", estimate["training_tokens"]),
    ]


def identity(ctx: DossierContext) -> dict:
    a, lineage, metrics = ctx.adapter, ctx.lineage, ctx.metrics
    base = lineage.get("base_model") or load_json(a["base_model"]) or {}
    code = lineage.get("code") or {}
    hw = lineage.get("hardware") or {}
    report = ctx.report or {}
    eval_seconds = [((report.get("metrics") or {}).get(side) or {}).get("seconds") for side in ("base", "fine_tuned")]
    eval_total = sum(eval_seconds) if all(isinstance(s, (int, float)) for s in eval_seconds) else None
    wall = _wall_seconds(lineage)
    gpu = hw.get("gpu") or ("none (trained on CPU)" if (hw.get("device") or metrics.get("device")) == "cpu"
                            else None)
    weights = base.get("weights_sha256") or {}
    blocks = [fields(
        item("adapter id (sha256 of weights, adapter config, training config, tokenizer)", ctx.aid),
        item("adapter folder", str(ctx.adapter_dir)),
        item("registered at", iso_time(a["created_at"])),
        item("Dagster run id", a.get("run_id"), gap=None if a.get("run_id") else "trained outside a Dagster run"),
        item("trained because", trigger_text(lineage.get("trigger"))),
        item("base model", base.get("name")),
        item("base model source", base.get("source")),
        item("base model revision", base.get("revision")),
        item("base model architecture", base.get("architecture")),
        item("base model parameters", base.get("n_parameters") or None),
        item("base model identity hash", base.get("identity_hash")),
        item("base model weights sha256", ", ".join(f"{k} {v}" for k, v in sorted(weights.items())) or None),
        item("base model chat template sha256", base.get("chat_template_sha256")),
        item("code: git commit at training", code.get("git_commit"),
             gap=None if code.get("git_commit") else "not recorded (training ran outside a git checkout)"),
        item("code: uncommitted changes at training", None,
             gap="not recorded: lineage keeps the commit only, not whether the working tree was clean"),
        item("code: fine_tune_assets version", code.get("package_version")),
        item("code: dataset stage code version", (ctx.dataset or {}).get("code_version")),
        item("libraries", ", ".join(f"{k} {v}" for k, v in sorted((lineage.get("libraries") or {}).items()))
             or None),
        item("hardware: device", hw.get("device") or metrics.get("device")),
        item("hardware: GPU", gpu),
        item("hardware: platform", hw.get("platform")),
        item("hardware: CPU count", hw.get("cpu_count")),
        item("hardware: Python", hw.get("python")),
        item("precision", metrics.get("precision"),
             gap=None if metrics.get("precision") else "not recorded by this training run (older training code)"),
        item("compute: training seconds", seconds(metrics.get("train_seconds"))),
        item("compute: training process seconds (incl. loading, evaluation)", seconds(metrics.get("total_seconds"))),
        item("compute: training wall clock", None if wall is None else
             f"{seconds(wall)}, {lineage.get('started_at')} to {lineage.get('finished_at')}"),
        item("compute: evaluation seconds (base + fine-tuned passes)", seconds(eval_total),
             gap=None if eval_total is not None else "no evaluation report with timings"),
        *_planned_against_actual(metrics),
    )]
    return section("identity", "Identity", blocks)
