"""Resume after a real crash: a training process SIGKILLed right after a checkpoint, re-run, must end
with the very adapter an uninterrupted run produces (weights, optimizer, scheduler, RNG and data
position all restored), and must refuse checkpoints of another training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fine_tune_assets.lib.training import TrainingConfig, train_adapter
from fine_tune_assets.lib.training.callbacks import CRASH_AFTER_STEP_ENV
from fine_tune_assets.lib.training.checkpoints import CheckpointMismatchError, latest_checkpoint, training_identity
from fine_tune_assets.lib.training.publish import adapter_content_hash
from fine_tune_assets_tests.factories import triage_examples, write_jsonl

# Dropout on and gradient accumulation 2: resuming must restore the dropout RNG and land mid-epoch
# (step 4 of 5 per epoch), and the run then crosses into epoch 2 (a re-shuffle).
CONFIG = {"learning_rate": 3e-3, "max_steps": 8, "save_steps": 2, "per_device_batch_size": 4,
          "gradient_accumulation_steps": 2, "max_seq_length": 256, "lora_dropout": 0.1, "logging_steps": 1,
          "eval_after_training": False}
TRAIN_IN_SUBPROCESS = """
import json, sys
from fine_tune_assets.lib.training import TrainingConfig, train_adapter
spec = json.loads(sys.argv[1])
metrics = train_adapter(spec["train"], spec["eval"], spec["model"], spec["out"], TrainingConfig(**spec["config"]),
                        checkpoint_dir=spec["checkpoints"], identity=spec["identity"])
print("METRICS " + json.dumps(metrics))
"""


@pytest.fixture(scope="module")
def triage_split(tmp_path_factory) -> tuple[Path, Path]:
    rows = triage_examples()
    folder = tmp_path_factory.mktemp("triage_resume")
    return (write_jsonl(folder / "train.jsonl", [r for i, r in enumerate(rows) if i % 8 not in (3, 6)]),
            write_jsonl(folder / "eval.jsonl", [r for i, r in enumerate(rows) if i % 8 in (3, 6)]))


def train_in_subprocess(spec: dict, crash_after_step: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop(CRASH_AFTER_STEP_ENV, None)
    if crash_after_step is not None:
        env[CRASH_AFTER_STEP_ENV] = str(crash_after_step)
    return subprocess.run([sys.executable, "-c", TRAIN_IN_SUBPROCESS, json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("share_prefix", [False, True], ids=["padding_free", "share_prefix"])
def test_killed_run_resumes_to_the_same_adapter(tiny_model_dir, triage_split, tmp_path, share_prefix):
    """With share_prefix the batches come from the grouping sampler: resume must replay the same ones."""
    train_path, eval_path = triage_split
    values = {**CONFIG, "share_prefix": share_prefix}
    config = TrainingConfig(**values)
    identity = training_identity("dataset-v1", "base-v1", config)
    checkpoints = tmp_path / ".checkpoints" / identity
    spec = {"train": str(train_path), "eval": str(eval_path), "model": str(tiny_model_dir),
            "out": str(tmp_path / "resumed"), "checkpoints": str(checkpoints), "identity": identity,
            "config": values}

    crashed = train_in_subprocess(spec, crash_after_step=4)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert latest_checkpoint(checkpoints) == checkpoints / "checkpoint-4"
    assert not (tmp_path / "resumed").exists(), "no adapter from a killed run"
    # A kill during the next save leaves a checkpoint without trainer_state.json: it must be ignored.
    half_written = checkpoints / "checkpoint-6"
    half_written.mkdir()
    (half_written / "adapter_model.safetensors").write_bytes(b"truncated")

    resumed = train_in_subprocess(spec)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads(resumed.stdout.split("METRICS ", 1)[1])
    assert metrics["resumed_from_step"] == 4 and metrics["steps"] == 8
    if share_prefix:  # the prefix really was shared: computed once per batch, not once per row
        assert metrics["input_tokens"] < 0.8 * metrics["logical_input_tokens"]
    assert not checkpoints.exists(), "checkpoints are deleted after success"
    curve = json.loads((tmp_path / "resumed" / "training_log.json").read_text())
    assert [r["step"] for r in curve] == list(range(1, 9)), "the loss curve spans the crash"

    fresh = train_adapter(train_path, eval_path, tiny_model_dir, tmp_path / "fresh", config,
                          checkpoint_dir=tmp_path / "fresh.checkpoints")
    assert fresh["resumed_from_step"] is None and fresh["steps"] == 8
    weights = "adapter_model.safetensors"
    assert (tmp_path / "resumed" / weights).read_bytes() == (tmp_path / "fresh" / weights).read_bytes()
    assert adapter_content_hash(tmp_path / "resumed") == adapter_content_hash(tmp_path / "fresh")


@pytest.mark.slow
def test_checkpoints_of_another_training_are_refused(tiny_model_dir, triage_split, tmp_path):
    train_path, eval_path = triage_split
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "checkpoint-2").mkdir(parents=True)
    (checkpoints / "checkpoint-2" / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (checkpoints / "identity.json").write_text(json.dumps({"identity": "another-training"}))
    with pytest.raises(CheckpointMismatchError, match="refusing to resume onto different data, base model or config"):
        train_adapter(train_path, eval_path, tiny_model_dir, tmp_path / "adapter", TrainingConfig(**CONFIG),
                      checkpoint_dir=checkpoints, identity="this-training")
    assert (checkpoints / "checkpoint-2" / "trainer_state.json").exists(), "another training's state is kept"
    assert not (tmp_path / "adapter").exists()


def test_training_identity_ignores_run_control_knobs():
    """Turning evaluation, resume or checkpoint keeping on or off must not orphan an interrupted run."""
    base = TrainingConfig(**CONFIG)
    same = TrainingConfig(**{**CONFIG, "eval_after_training": True, "keep_checkpoints": True, "logging_steps": 5})
    assert training_identity("d", "b", base) == training_identity("d", "b", same)
    for other in (training_identity("d2", "b", base), training_identity("d", "b2", base),
                  training_identity("d", "b", TrainingConfig(**{**CONFIG, "max_steps": 9}))):
        assert other != training_identity("d", "b", base)
