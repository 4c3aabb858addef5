"""What a run reports: JSON-safe figures, exact throughput, and the loss curve.

Throughput comes from the tokens the trainer counted (``trainer.CountingSFTTrainer``), over the
seconds of ``trainer.train`` alone; after a resume it covers this process's steps only. A
non-finite float (a NaN loss) becomes None, so the metrics stay valid JSON.
"""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def throughput(counter: dict, train_seconds: float, total_seconds: float, steps_run: int) -> dict[str, Any]:
    """Token counts and rates of this process's training: input tokens (a shared prefix once per
    batch), logical ones (a shared prefix counted for every row) and trained (labelled) ones."""

    def per_second(count: float) -> float:
        return count / train_seconds if train_seconds else 0.0

    return {
        "trained_tokens": counter["trained_tokens"],  # by this process (after the resume point, if resumed)
        "input_tokens": counter["input_tokens"],  # computed: a shared prefix once per batch
        "logical_input_tokens": counter["logical_input_tokens"],  # a shared prefix counted for every row
        "train_seconds": train_seconds,
        "total_seconds": total_seconds,
        "tokens_per_s": per_second(counter["input_tokens"]),
        "logical_tokens_per_s": per_second(counter["logical_input_tokens"]),
        "trained_tokens_per_s": per_second(counter["trained_tokens"]),
        "steps_per_s": per_second(steps_run),
    }


def peak_memory(device: str) -> dict[str, Any]:
    """This process's peak memory: CUDA's allocated peak on a GPU (what ``plan`` estimates), else the
    process's peak RSS (host memory: model, data, Python, not comparable with a GPU estimate)."""
    if device == "cuda":
        import torch

        return {"peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9, "peak_memory_kind": "cuda allocated"}
    import resource

    return {"peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
            "peak_memory_kind": "process RSS"}


def training_log(log_history: list[dict]) -> list[dict]:
    """One JSON-safe record per logged step (a step's train and eval entries merged): the loss curve."""
    records: dict[int, dict] = {}
    for entry in log_history:
        if "loss" not in entry and "eval_loss" not in entry:
            continue  # the end-of-training summary
        record = records.setdefault(entry["step"], {"step": entry["step"]})
        record.update({k: finite(entry[k]) for k in ("loss", "learning_rate", "grad_norm", "epoch", "eval_loss")
                       if k in entry})
    return [records[step] for step in sorted(records)]
