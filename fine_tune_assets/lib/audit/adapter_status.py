"""An adapter as someone deciding whether to use it sees it: its training figures, its newest
evaluation and gate verdict, the stages it holds and open flags (``needs_retraining`` after an
erasure). ``adapters list`` and ``adapters show`` print these dicts; with ``--json`` as they are, so
their keys are a public format: add keys, do not rename them.
"""

from __future__ import annotations

import json

from ..evaluation.store import latest_evaluation
from ..registry.erasures import NEEDS_RETRAINING, adapter_flags
from ..registry.queries import adapters
from ..registry.resolve import resolve_adapter
from ..registry.stages import current_stages, stage_history

TRAINING_FIGURES = ("train_loss", "eval_loss", "eval_loss_before", "steps", "trained_tokens_per_s", "train_seconds",
                    "device")


def _summary(con, row: dict, stages: dict[str, str], flags: dict[str, list[dict]]) -> dict:
    adapter_id = row["adapter_id"]
    metrics = json.loads(row["metrics"])
    own_flags = flags.get(adapter_id, [])
    return {"adapter_id": adapter_id, "created_at": row["created_at"].isoformat(), "path": row["path"],
            "dataset_version": row["dataset_version"], "base_model": json.loads(row["base_model"])["name"],
            "training_config_hash": row["training_config_hash"],
            "training": {k: metrics.get(k) for k in TRAINING_FIGURES},
            "eval": latest_evaluation(con, adapter_id),
            "stages": [stage for stage, holder in stages.items() if holder == adapter_id],
            "needs_retraining": any(f["flag"] == NEEDS_RETRAINING for f in own_flags),
            "flags": own_flags}


def adapter_summaries(con) -> list[dict]:
    """Every registered adapter, newest first (``adapters list``)."""
    stages, flags = current_stages(con), adapter_flags(con)
    return [_summary(con, row, stages, flags) for row in adapters(con)]


def adapter_details(con, ref: str) -> dict:
    """The adapter ``ref`` names (see ``registry.resolve``), with its recorded lineage and every stage
    transition that moved it, oldest first (``adapters show``)."""
    row = resolve_adapter(con, ref)
    summary = _summary(con, row, current_stages(con), adapter_flags(con, [row["adapter_id"]]))
    return {**summary, "lineage": json.loads(row["lineage"]),
            "stage_history": stage_history(con, adapter_id=row["adapter_id"])}
