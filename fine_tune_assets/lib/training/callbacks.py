"""Trainer callbacks: progress events for the caller, and the crash hook the resume tests use.

Built lazily (transformers imports slowly). ``counter`` is the dict the trainer fills with the
tokens each micro-step really saw (``trainer.CountingSFTTrainer``): rates come from it, not from
an estimate.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

CRASH_AFTER_STEP_ENV = "FINE_TUNE_CRASH_AFTER_STEP"  # tests: SIGKILL right after this step's checkpoint


def _progress_callback(progress: Callable[[dict], None], counter: dict):
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        """Reports step, loss, tokens/s (all and trained) and ETA at each logging step."""

        def on_train_begin(self, args, state, control, **kwargs):
            counter["started"] = time.perf_counter()
            counter["start_step"] = state.global_step  # > 0 after a resume: rates count this run's steps

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "started" not in counter or ("loss" not in logs and "eval_loss" not in logs):
                return  # the baseline evaluation before training is in the metrics, not a progress event
            elapsed = time.perf_counter() - counter["started"]
            done, total = state.global_step, state.max_steps
            rate = (done - counter["start_step"]) / elapsed if elapsed > 0 else 0.0
            progress({
                "step": done, "max_steps": total, "epoch": state.epoch,
                "loss": logs.get("loss"), "eval_loss": logs.get("eval_loss"),
                "learning_rate": logs.get("learning_rate"),
                "tokens_per_s": counter["input_tokens"] / elapsed if elapsed > 0 else 0.0,
                "trained_tokens_per_s": counter["trained_tokens"] / elapsed if elapsed > 0 else 0.0,
                "logical_tokens_per_s": counter["logical_input_tokens"] / elapsed if elapsed > 0 else 0.0,
                "elapsed_s": elapsed,
                "eta_s": (total - done) / rate if rate else None,
            })

    return ProgressCallback()


def _crash_callback(step: int):
    from transformers import TrainerCallback

    class CrashAfterStep(TrainerCallback):
        """Test hook for resume: SIGKILL (no cleanup at all, like the OOM killer) once checkpoint-<step>
        is fully written (``on_save`` runs after the trainer state, the last file)."""

        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step and state.is_world_process_zero:  # the process that wrote it
                os.kill(os.getpid(), signal.SIGKILL)

    return CrashAfterStep()


def training_callbacks(progress: Callable[[dict], None] | None, counter: dict) -> list:
    """Progress events when the caller wants them; the crash hook when ``CRASH_AFTER_STEP_ENV`` is set."""
    callbacks = [_progress_callback(progress, counter)] if progress else []
    if os.environ.get(CRASH_AFTER_STEP_ENV):
        callbacks.append(_crash_callback(int(os.environ[CRASH_AFTER_STEP_ENV])))
    return callbacks
