"""Checkpoints that a re-run after a crash resumes from, and only when they are its own.

A checkpoint folder is named after the training identity (data version, base model, and the config
knobs that determine the weights) and records it in ``identity.json``: a re-run of the same training
finds it and resumes exactly (weights, optimizer, scheduler, RNG, data position); checkpoints of
another identity are refused, never reused or deleted. A half-written ``checkpoint-N`` (a crash
while saving) is never resumed from.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..common.hashing import sha256_json
from .config import TrainingConfig

IDENTITY_FILE = "identity.json"


class CheckpointMismatchError(RuntimeError):
    """The checkpoint folder belongs to another training identity: resuming would mix two runs."""


def training_identity(dataset_version: str, base_model_identity: str, config: TrainingConfig) -> str:
    """What a checkpoint must match to be resumed: dataset version, base model identity, and the
    config knobs that determine the weights. Names the checkpoint folder, so a re-run finds it."""
    return sha256_json({"dataset_version": dataset_version, "base_model": base_model_identity,
                        "config": config.training_hash})


def checkpoint_step(folder: Path) -> int | None:
    """N for a complete ``checkpoint-N``; None when half-written (HF writes trainer_state.json last)."""
    try:
        step = int(folder.name.removeprefix("checkpoint-"))
        state = json.loads((folder / "trainer_state.json").read_text())
    except (ValueError, OSError):  # not a step number, no state file, or a truncated one
        return None
    return step if state.get("global_step") == step else None


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` folder, ignoring half-written ones."""
    complete = [(step, f) for f in checkpoint_dir.glob("checkpoint-*") if (step := checkpoint_step(f)) is not None]
    return max(complete)[1] if complete else None


def prepare_checkpoint_dir(checkpoint_dir: Path, identity: str, resume: bool) -> Path | None:
    """Claim ``checkpoint_dir`` for ``identity``; return the checkpoint to resume from, if any.

    Complete checkpoints of another (or an unknown) identity are refused, never reused or deleted.
    A fresh start drops old checkpoints; a resume drops half-written ones (it would save over them).
    """
    identity_file = checkpoint_dir / IDENTITY_FILE
    found = latest_checkpoint(checkpoint_dir) if checkpoint_dir.is_dir() else None
    if found is not None:
        try:
            stored = json.loads(identity_file.read_text()).get("identity")
        except (OSError, ValueError):
            stored = None
        if stored != identity:
            raise CheckpointMismatchError(
                f"{checkpoint_dir} holds checkpoints of another training (identity {stored or 'unknown'}, this "
                f"one is {identity}): refusing to resume onto different data, base model or config. Delete the "
                "folder to start over.")
    resume_from = found if resume else None
    for folder in checkpoint_dir.glob("checkpoint-*"):
        if resume_from is None or checkpoint_step(folder) is None:
            shutil.rmtree(folder)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    identity_file.write_text(json.dumps({"identity": identity}))
    return resume_from
