"""The hyper-parameters of one LoRA run, and the two identities built from them.

``config_hash`` names the whole configuration (lineage: same data + base + config hash = same run).
``training_hash`` leaves out ``RUN_CONTROL_FIELDS``, the knobs that change what a run writes or
reports but not the weights it trains: it names the checkpoints, so flipping such a knob does not
orphan the checkpoints of an interrupted run. Both hashes must stay stable across releases: a knob
added later is left out of them while it is at its default (``_hashed``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..common.hashing import sha256_json

RUN_CONTROL_FIELDS = frozenset({"eval_before_training", "eval_after_training", "resume", "keep_checkpoints",
                                "export_merged", "logging_steps", "fused_kernels"})


@dataclass
class TrainingConfig:
    """Hyper-parameters of one LoRA run; defaults follow the common recipe where it is sound."""

    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scale numerator (updates are scaled by alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA layers' input."})
    target_modules: str | list[str] = field(
        default="all-linear", metadata={"help": "Modules that get LoRA layers (PEFT's syntax)."})
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate."})
    num_epochs: float = field(default=3, metadata={"help": "Passes over the train split (unless max_steps > 0)."})
    per_device_batch_size: int = field(default=4, metadata={"help": "Rows per micro-batch (training and eval)."})
    gradient_accumulation_steps: int = field(default=4, metadata={"help": "Micro-batches per optimiser step."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Share of the steps that warm the learning rate up."})
    max_seq_length: int = field(default=1024, metadata={"help": "Rows are truncated to this many tokens."})
    seed: int = field(default=42, metadata={"help": "Seeds the LoRA initialisation, dropout and data order."})
    max_steps: int = field(default=-1, metadata={"help": "Optimiser steps to run; -1: num_epochs decides."})
    save_steps: int = field(default=50, metadata={"help": "A checkpoint every this many steps (a re-run resumes)."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept on disk during the run."})
    logging_steps: int = field(default=5, metadata={"help": "A progress event and a loss record every N steps."})
    padding_free: bool = field(default=True, metadata={"help": "Flatten a batch's rows instead of padding them."})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda."})
    load_in_4bit: bool = field(default=False, metadata={"help": "QLoRA: a 4-bit NF4 base model (bitsandbytes)."})
    # The evaluation asset reports base and fine-tuned losses itself; these only add them to the metrics.
    eval_before_training: bool = field(default=False, metadata={"help": "Add the base model's eval loss."})
    eval_after_training: bool = field(default=True, metadata={"help": "Add the adapter's eval loss."})
    resume: bool = field(
        default=True, metadata={"help": "Continue from the newest complete checkpoint of the same training identity."})
    keep_checkpoints: bool = field(
        default=False, metadata={"help": "Keep the checkpoints (intermediate state, deleted after a successful run)."})
    export_merged: bool = field(
        default=False, metadata={"help": "Also write base + adapter merged into one model (not for 4-bit)."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule (transformers')."})
    share_prefix: bool = field(default=False, metadata={
        "help": "Compute a system prompt shared by a batch once per batch (batches then group rows by opening)."})
    fused_kernels: str = field(default="auto", metadata={
        "help": "Liger Kernel's Triton RoPE, RMSNorm and SwiGLU: auto = on CUDA when liger-kernel is installed "
                "(pip install 'fine_tune_assets[gpu]'), on = required, off. Speed and memory only."})
    fsdp: bool = field(default=False, metadata={
        "help": "FSDP-QLoRA on a multi-GPU node (with load_in_4bit and nproc_per_node > 1): the base weights, "
                "stored in the compute dtype, and the LoRA weights are sharded over the GPUs; CPU-RAM-efficient "
                "loading. CUDA only."})
    nproc_per_node: int = field(default=1, metadata={
        "help": "Processes to train in, data-parallel under torchrun: one per GPU on a CUDA node; on CPU, several "
                "gloo processes (the multi-process path, testable without a GPU). Each runs per_device_batch_size "
                "rows, so the effective batch grows with it."})
    extra: dict[str, Any] = field(default_factory=dict, metadata={"help": "Passed through to TRL's SFTConfig."})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _hashed(self) -> dict[str, Any]:
        """``to_dict`` less knobs added later that are at their default: older configs keep their hashes
        (and an interrupted run its checkpoints)."""
        values = self.to_dict()
        if not values["share_prefix"]:
            del values["share_prefix"]
        if values["fused_kernels"] == "auto":
            del values["fused_kernels"]
        if values["nproc_per_node"] == 1:
            del values["nproc_per_node"]
        if not values["fsdp"]:
            del values["fsdp"]
        return values

    @property
    def config_hash(self) -> str:
        """Identity of the configuration (lineage: same data + base + config hash = same run)."""
        return sha256_json(self._hashed())

    @property
    def training_hash(self) -> str:
        """Identity of the knobs that determine the trained weights (``RUN_CONTROL_FIELDS`` left out)."""
        return sha256_json({k: v for k, v in self._hashed().items() if k not in RUN_CONTROL_FIELDS})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """The config from a dict; unknown keys (e.g. from a newer release) are ignored."""
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)
