"""Training: configuration, seed, method, metrics and checkpoints of the run that made the adapter."""

from __future__ import annotations

from ....common.render import value_text
from ..blocks import fields, item, section, table
from ..context import DossierContext
from ..values import load_json

# metrics shown as their own items above, left out of the "Training metrics" table
SHOWN = ("train_loss", "eval_loss", "eval_loss_before", "steps", "epochs", "trainable_parameters",
         "resumed_from_step", "training_identity")
OLDER_CODE = "not recorded by this training run (older training code)"


def _checkpoint_items(ctx: DossierContext, config: dict) -> list[dict]:
    metrics = ctx.metrics
    identity = metrics.get("training_identity")
    checkpoint_dir = ctx.paths.adapters / ".checkpoints" / identity if identity else None
    if "resumed_from_step" not in metrics:
        resumed = item("checkpoints: resumed from step", None, gap=OLDER_CODE)
    else:
        resumed = item("checkpoints: resumed from step", metrics["resumed_from_step"]
                       if metrics["resumed_from_step"] is not None else "none (ran from the start)")
    return [
        item("training identity (names the checkpoint folder)", identity, gap=None if identity else OLDER_CODE),
        item("checkpoints: every N steps", config.get("save_steps")),
        item("checkpoints: kept at most", config.get("save_total_limit")),
        resumed,
        item("checkpoints: still on disk", None if checkpoint_dir is None else (
            f"yes, {checkpoint_dir}" if checkpoint_dir.is_dir() else
            "no (deleted after the successful run; keep_checkpoints is off)"),
             gap=None if checkpoint_dir else "unknown: training identity not recorded"),
    ]


def training(ctx: DossierContext) -> dict:
    a, lineage, metrics = ctx.adapter, ctx.lineage, ctx.metrics
    config = load_json(a["training_config"]) or lineage.get("training_config") or {}
    blocks = [fields(
        item("training config hash", a["training_config_hash"]),
        item("seed", config.get("seed", lineage.get("seed"))),
        item("method", "LoRA" + (" on a 4-bit (NF4) base: QLoRA" if config.get("load_in_4bit") else "")
             + " with TRL's SFTTrainer, loss on assistant tokens only"),
        item("trainable parameters", metrics.get("trainable_parameters")),
        item("steps", metrics.get("steps")),
        item("epochs", metrics.get("epochs")),
        item("train loss", metrics.get("train_loss")),
        item("eval loss before / after training",
             f"{value_text(metrics.get('eval_loss_before'))} / {value_text(metrics.get('eval_loss'))}"),
        *_checkpoint_items(ctx, config),
    )]
    blocks.append(table("Full training configuration", ["key", "value"],
                        [[k, v] for k, v in sorted(config.items())], gap="training configuration not recorded"))
    blocks.append(table("Training metrics", ["metric", "value"],
                        [[k, v] for k, v in sorted(metrics.items()) if k not in SHOWN],
                        gap="training metrics not recorded"))
    return section("training", "Training", blocks)
