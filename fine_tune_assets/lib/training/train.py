"""LoRA fine-tuning of a local base model on a published chat dataset (TRL SFTTrainer + PEFT).

Plain Python, no Dagster: the asset (or a subprocess / Pipes launcher) calls ``train_adapter``.
Choices that matter and why:

- Loss on assistant tokens only. Labels come from the chat template's ``{% generation %}``
  markers. Stock templates (SmolLM2's, plain ChatML) have none, TRL refuses to patch SmolLM2's and
  transformers alone silently returns an all-zero mask, so this module ships marker copies that
  render byte-identically (checked on the real data before training) and saves that template with
  the adapter, so training and inference see the same text.
- Tokenisation happens here, not in TRL: with ``padding_free`` and no packing TRL does not enforce
  ``max_length``, and it drops fully-masked rows silently only when truncating. Here every row is
  truncated to ``max_seq_length`` and a row with no trainable token is an error that names it.
- fp32, no gradient checkpointing on CPU (SFTConfig defaults to bf16 + checkpointing). On CUDA:
  bf16, activation checkpointing, PyTorch's varlen flash attention for padding-free rows
  (``varlen_attention``; under SDPA the rows' block mask made attention quadratic in the batch:
  0.59x the padded recipe on an H200), Liger's RoPE/RMSNorm/SwiGLU kernels when installed, and
  paged 8-bit AdamW for QLoRA (docs/training-gpu.md has the measurements).
- Padding-free batching: SDPA on CPU keeps the flattened rows apart via position_ids, but only
  without a KV cache (SFTTrainer.compute_loss passes use_cache=False; a hand-written forward on
  such a batch must too, or rows silently attend to each other). On CPU it is about as fast as
  padding for rows of similar length; it saves memory and time when lengths spread.
- Label-only loss: TRL's fused LM head scores every position through the LM head on CPU (it
  compacts to label positions only on Triton devices), and with assistant-only labels most
  positions carry no label. ``CountingSFTTrainer.compute_loss`` projects only the labelled
  positions (same loss, same gradient contract).
- Shared prefix (opt-in ``share_prefix``): rows of one task often open with the same long system
  prompt. Batches are then drawn from rows with the same opening (``SharedPrefixBatchSampler``), the
  collator splits off the batch's common prefix (``SharedPrefixCollator``) and ``compute_loss`` runs
  it once per batch, WITH gradients, sharing its keys/values with every row: same tokens at the same
  positions, so the same loss and gradients as the row-by-row path (LoRA dropout aside: see
  ``compute_loss``), at a fraction of the compute. The batches differ from the default shuffle's.
- Seeded (LoRA init, data order). Checkpoints every ``save_steps`` go to a folder the caller names
  after the training identity (data version, base model, config): a re-run after a crash finds
  them and resumes exactly (weights, optimizer, scheduler, RNG, data position); a folder written
  for another identity is refused. They are deleted after success unless ``keep_checkpoints``.
- The adapter folder is written to a temporary path and renamed into place: a crashed run leaves
  no half-written adapter.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..common.hashing import sha256_file, sha256_json
from ..models.shared_prefix import common_prefix, prefix_cache, prefix_groups

log = logging.getLogger(__name__)

SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Same text, with the assistant's content and its <|im_end|> (the stop token it must learn) marked.
SMOLLM2_TRAINING_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{% if message['role'] == 'assistant' %}{{'<|im_start|>assistant\n'}}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}{{'<|im_start|>assistant\n'}}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TRAINING_TEMPLATES = {SMOLLM2_TEMPLATE.strip(): SMOLLM2_TRAINING_TEMPLATE,
                      CHATML_TEMPLATE.strip(): CHATML_TRAINING_TEMPLATE}
IGNORE_INDEX = -100
CRASH_AFTER_STEP_ENV = "FINE_TUNE_CRASH_AFTER_STEP"  # tests: SIGKILL right after this step's checkpoint
IDENTITY_FILE = "identity.json"
# Knobs that change what the run writes or reports, not the weights it trains: left out of the
# training identity, so flipping them does not orphan the checkpoints of an interrupted run.
RUN_CONTROL_FIELDS = frozenset({"eval_before_training", "eval_after_training", "resume", "keep_checkpoints",
                                "export_merged", "logging_steps", "fused_kernels"})


class TrainingDataError(ValueError):
    """The data cannot train anything useful (e.g. an example with no trainable assistant token)."""


class CheckpointMismatchError(RuntimeError):
    """The checkpoint folder belongs to another training identity: resuming would mix two runs."""


@dataclass
class TrainingConfig:
    """Hyper-parameters of one LoRA run; defaults follow the common recipe where it is sound."""

    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    learning_rate: float = 2e-4
    num_epochs: float = 3
    per_device_batch_size: int = 4
    gradient_accumulation_steps: int = 4
    warmup_ratio: float = 0.1
    max_seq_length: int = 1024
    seed: int = 42
    max_steps: int = -1
    save_steps: int = 50
    save_total_limit: int = 2
    logging_steps: int = 5
    padding_free: bool = True
    device: str = "auto"  # auto | cpu | cuda
    load_in_4bit: bool = False
    # The evaluation asset reports base and fine-tuned losses itself; these only add them to the metrics.
    eval_before_training: bool = False
    eval_after_training: bool = True
    resume: bool = True  # continue from the newest complete checkpoint of the same training identity
    keep_checkpoints: bool = False  # checkpoints are intermediate state: deleted after a successful run
    export_merged: bool = False  # also write base + adapter merged into one model (not for 4-bit)
    weight_decay: float = 0.0
    lr_scheduler_type: str = "cosine"
    # Compute a system prompt shared by a batch once per batch (batches then group rows by opening).
    share_prefix: bool = False
    # Liger Kernel's Triton RoPE, RMSNorm and SwiGLU: "auto" = on CUDA when liger-kernel is installed
    # (pip install 'fine_tune_assets[gpu]'), "on" = required, "off". Speed and memory only.
    fused_kernels: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)  # passed through to SFTConfig

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
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' requested but torch sees no CUDA device")
    return device


def training_chat_template(tokenizer) -> str:
    """The template with ``{% generation %}`` markers to train with (see module docstring)."""
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        raise TrainingDataError("the tokenizer has no chat template; cannot build assistant-only labels")
    if "generation %}" in template:
        return template
    try:
        return TRAINING_TEMPLATES[template.strip()]
    except KeyError:
        raise TrainingDataError(
            "no training copy (with {% generation %} markers) of this tokenizer's chat template is known; "
            "add one to fine_tune_assets.lib.training.TRAINING_TEMPLATES") from None


def check_template_equivalence(tokenizer, training_template: str, conversations: list[list[dict]]) -> None:
    """Fail unless the training template renders exactly like the tokenizer's own on these rows."""
    for index, messages in enumerate(conversations):
        for prompt in (False, True):
            stock = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
            marked = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt,
                                                   chat_template=training_template)
            if stock != marked:
                raise TrainingDataError(
                    f"training chat template renders row {index} differently from the model's template; "
                    "training and inference would see different text")


def tokenize_conversation(tokenizer, messages: list[dict], training_template: str,
                          max_seq_length: int | None = None) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (-100 outside assistant content + end-of-turn), truncated at the end."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True, chat_template=training_template)
    input_ids = list(out["input_ids"])
    mask = list(out["assistant_masks"])
    labels = [tok if bit else IGNORE_INDEX for tok, bit in zip(input_ids, mask, strict=True)]
    if max_seq_length:
        input_ids, labels = input_ids[:max_seq_length], labels[:max_seq_length]
    return {"input_ids": input_ids, "labels": labels}


def read_conversations(path: str | Path) -> list[list[dict]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line)["messages"])
    return rows


def tokenize_split(tokenizer, conversations: list[list[dict]], training_template: str, max_seq_length: int,
                   split: str) -> list[dict[str, list[int]]]:
    """Tokenise a split; a row without a trainable token is an error naming the row and the cause."""
    rows = []
    for index, messages in enumerate(conversations):
        row = tokenize_conversation(tokenizer, messages, training_template, max_seq_length)
        if all(label == IGNORE_INDEX for label in row["labels"][1:]):  # label 0 is never predicted
            has_assistant = any(m.get("role") == "assistant" and m.get("content") for m in messages)
            cause = (f"its assistant turn starts after max_seq_length={max_seq_length} tokens"
                     if has_assistant else "it has no non-empty assistant turn")
            raise TrainingDataError(
                f"{split} row {index} has no trainable (assistant) token: {cause}. Every label would be -100; "
                "fix or drop the row (training would otherwise silently learn nothing from it).")
        rows.append(row)
    if not rows:
        raise TrainingDataError(f"{split} split is empty")
    return rows


def _count_tokens(rows: list[dict]) -> tuple[int, int]:
    return (sum(len(r["input_ids"]) for r in rows),
            sum(sum(1 for x in r["labels"] if x != IGNORE_INDEX) for r in rows))


def load_base_model(base_model_dir: str | Path, device: str, load_in_4bit: bool = False,
                    activation_checkpointing: bool | None = None, attn_implementation: str = "sdpa"):
    """fp32 on CPU, bf16 (or fp16) on CUDA; optional 4-bit NF4 through bitsandbytes (QLoRA).

    A 4-bit model is frozen for LoRA as PEFT's ``prepare_model_for_kbit_training`` does, minus its cast
    of every non-4-bit weight to fp32: that cast cost 50% more GPU memory at the first step on a 1B
    Llama (tied 49k-vocab embeddings in fp32), and RMSNorm computes in fp32 anyway. With
    ``activation_checkpointing`` (default: on CUDA) the embeddings' output requires grad, so
    checkpointed layers see a graph input; pass False with ``share_prefix``."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {}
    if device == "cuda":
        kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        kwargs["dtype"] = torch.float32
    if load_in_4bit:
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError as error:
            raise RuntimeError("load_in_4bit needs bitsandbytes (pip install bitsandbytes==0.50.*)") from error
        compute = kwargs["dtype"]
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute)
        kwargs["device_map"] = {"": 0} if device == "cuda" else "cpu"
    model = AutoModelForCausalLM.from_pretrained(str(base_model_dir), attn_implementation=attn_implementation,
                                                 **kwargs)
    if load_in_4bit:
        model.requires_grad_(False)
        if device == "cuda" if activation_checkpointing is None else activation_checkpointing:
            model.enable_input_require_grads()
    return model


def choose_attention(device: str, config: TrainingConfig) -> str:
    """``torch_varlen`` for padding-free batches on CUDA when PyTorch has it (see ``varlen_attention``),
    else SDPA. Shared-prefix batches are padded rows with a cache: SDPA."""
    from . import varlen_attention

    if device == "cuda" and config.padding_free and not config.share_prefix:
        if varlen_attention.available():
            return varlen_attention.register()
        log.warning("padding-free batches under SDPA cost attention quadratic in the batch's tokens on CUDA; "
                    "PyTorch >= 2.10 (torch.nn.attention.varlen) avoids it, or set padding_free=False")
    return "sdpa"


def apply_fused_kernels(model, mode: str, device: str) -> list[str]:
    """Swap in Liger Kernel's Triton RoPE, RMSNorm and SwiGLU (what TRL's ``use_liger_kernel`` does),
    before PEFT wraps the model; returns the kernels applied (lineage), ``[]`` when none.

    Not its loss kernels: ``compute_loss`` projects labelled positions only, so the full-vocabulary
    logits that Liger's fused linear cross-entropy avoids are never built. Triton kernels need CUDA:
    ``auto`` is a no-op elsewhere or without the package; ``on`` fails loudly instead.
    """
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"fused_kernels must be auto, on or off, not {mode!r}")
    if mode == "off" or (mode == "auto" and device != "cuda"):
        return []
    if device != "cuda":
        raise RuntimeError("fused_kernels='on' needs CUDA (Liger's kernels are Triton GPU kernels)")
    try:
        from liger_kernel.transformers import _apply_liger_kernel_to_instance
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError as error:
        if mode == "auto":
            log.info("liger-kernel not installed: training without fused kernels")
            return []
        raise RuntimeError("fused_kernels='on' needs liger-kernel (pip install 'fine_tune_assets[gpu]')") from error
    model_type = getattr(model.config, "model_type", None)
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        if mode == "on":
            raise RuntimeError(f"liger-kernel has no kernels for model type {model_type!r}")
        return []
    kernels = {"rope": True, "rms_norm": True, "swiglu": True}
    _apply_liger_kernel_to_instance(model=model, cross_entropy=False, fused_linear_cross_entropy=False, **kernels)
    return [f"liger:{name}" for name in kernels]


def training_identity(dataset_version: str, base_model_identity: str, config: TrainingConfig) -> str:
    """What a checkpoint must match to be resumed: dataset version, base model identity, and the
    config knobs that determine the weights. Names the checkpoint folder, so a re-run finds it."""
    return sha256_json({"dataset_version": dataset_version, "base_model": base_model_identity,
                        "config": config.training_hash})


def _checkpoint_step(folder: Path) -> int | None:
    """N for a complete ``checkpoint-N``; None when half-written (HF writes trainer_state.json last)."""
    try:
        step = int(folder.name.removeprefix("checkpoint-"))
        state = json.loads((folder / "trainer_state.json").read_text())
    except (ValueError, OSError):  # not a step number, no state file, or a truncated one
        return None
    return step if state.get("global_step") == step else None


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` folder, ignoring half-written ones."""
    complete = [(step, f) for f in checkpoint_dir.glob("checkpoint-*") if (step := _checkpoint_step(f)) is not None]
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
        if resume_from is None or _checkpoint_step(folder) is None:
            shutil.rmtree(folder)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    identity_file.write_text(json.dumps({"identity": identity}))
    return resume_from


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def training_log(log_history: list[dict]) -> list[dict]:
    """One JSON-safe record per logged step (a step's train and eval entries merged): the loss curve."""
    records: dict[int, dict] = {}
    for entry in log_history:
        if "loss" not in entry and "eval_loss" not in entry:
            continue  # the end-of-training summary
        record = records.setdefault(entry["step"], {"step": entry["step"]})
        record.update({k: _finite(entry[k]) for k in ("loss", "learning_rate", "grad_norm", "epoch", "eval_loss")
                       if k in entry})
    return [records[step] for step in sorted(records)]


def merged_dir_for(output_dir: str | Path) -> Path:
    """Where ``export_merged`` writes: next to the adapter, so the adapter's content hash ignores it."""
    output_dir = Path(output_dir)
    return output_dir.with_name(output_dir.name + ".merged")


def _replace_dir(tmp: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)


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
            if state.global_step == step:
                os.kill(os.getpid(), signal.SIGKILL)

    return CrashAfterStep()


class SharedPrefixBatchSampler:
    """Training batches (lists of row indices) that never mix rows with different openings (their
    see ``shared_prefix.prefix_groups``), so each batch keeps the long prefix its rows share.

    Each epoch: rows shuffled within their group, cut into batches of ``batch_size`` (a group's last
    batch may be shorter), then the batch order shuffled; all from ``random.Random(seed, epoch)``, so
    the order is a pure function of seed and epoch (a resume that skips the batches already consumed
    in its epoch sees the very same ones). The Trainer calls ``set_epoch``.

    It deliberately has no ``batch_size`` attribute: accelerate's ``BatchSamplerShard`` would then
    hold back every short batch in mid-epoch (it expects only the last one to be short) and drop it.
    """

    def __init__(self, sequences: list[list[int]], batch_size: int, seed: int):
        self.groups = prefix_groups(sequences)
        self.rows_per_batch = batch_size
        self.seed = seed
        self.epoch = 0
        self.drop_last = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(f"share_prefix:{self.seed}:{epoch}")
        size, batches = self.rows_per_batch, []
        for group in self.groups:
            members = list(group)
            rng.shuffle(members)
            batches += [members[k:k + size] for k in range(0, len(members), size)]
        rng.shuffle(batches)
        return batches

    def __iter__(self):
        return iter(self.batches(self.epoch))  # built now, not lazily: the epoch is the one set before iter()

    def __len__(self) -> int:
        return sum(math.ceil(len(group) / self.rows_per_batch) for group in self.groups)


class SharedPrefixCollator:
    """A batch as its shared prefix plus right-padded suffixes.

    ``prefix_ids`` [1, P]: the tokens every row starts with, capped so that no label falls inside it
    or on the first suffix token (P <= first label index - 1 of every row; P = 0 when shorter than
    ``MIN_SHARED_PREFIX``). ``input_ids``/``attention_mask``/``labels`` [B, W]: each row's tokens
    after P, right-padded (pad ``pad_token_id``, label -100, mask 0).
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        ids = [list(e["input_ids"]) for e in examples]
        labels = [list(e["labels"]) for e in examples]
        first_label = min(next((k for k, y in enumerate(row) if y != IGNORE_INDEX), len(row)) for row in labels)
        shared = common_prefix(ids, first_label - 1)
        width = max(len(row) for row in ids) - shared
        batch_ids = torch.full((len(ids), width), self.pad_token_id, dtype=torch.long)
        batch_labels = torch.full((len(ids), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for j, (row, row_labels) in enumerate(zip(ids, labels, strict=True)):
            n = len(row) - shared
            batch_ids[j, :n] = torch.tensor(row[shared:])
            batch_labels[j, :n] = torch.tensor(row_labels[shared:])
            mask[j, :n] = 1
        return {"prefix_ids": torch.tensor([ids[0][:shared]], dtype=torch.long).reshape(1, shared),
                "input_ids": batch_ids, "attention_mask": mask, "labels": batch_labels}


# Models whose logits are scaled or soft-capped after the LM head: the label-only loss leaves them to TRL.
_SCALED_HEAD_FIELDS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier",
                       "logits_scaling")


@functools.cache
def counting_sft_trainer_class():
    """``SFTTrainer`` with exact token counts and a label-only loss (built lazily: TRL imports slowly)."""
    import torch
    from accelerate.utils import is_peft_model
    from trl import SFTTrainer

    class CountingSFTTrainer(SFTTrainer):
        """Counts the tokens each optimisation micro-step really saw (exact tokens/s) and computes the
        loss on labelled positions only (see ``compute_loss``)."""

        def __init__(self, *args, counter: dict | None = None, share_prefix: bool = False, **kwargs):
            super().__init__(*args, **kwargs)
            self.counter = counter if counter is not None else {}
            for key in ("trained_tokens", "input_tokens", "logical_input_tokens"):
                self.counter.setdefault(key, 0)
            self.share_prefix = share_prefix
            text_config = self.model.config.get_text_config()
            self.label_only_loss = (
                self.args.loss_type == "nll" and self.compute_loss_func is None and self.label_smoother is None
                and not self.aux_loss_enabled and getattr(self.accelerator, "parallelism_config", None) is None
                and all(getattr(text_config, name, None) in (None, 1, 1.0) for name in _SCALED_HEAD_FIELDS))
            if share_prefix and not self.label_only_loss:
                raise ValueError("share_prefix needs the label-only loss (nll, no custom loss, label smoothing, "
                                 "aux loss, parallelism or scaled LM head)")

        def get_train_dataloader(self):
            """With ``share_prefix``: batches from ``SharedPrefixBatchSampler`` through
            ``SharedPrefixCollator`` (evaluation keeps TRL's collator); else the Trainer's own."""
            if not self.share_prefix:
                return super().get_train_dataloader()
            from torch.utils.data import DataLoader

            dataset = self._remove_unused_columns(self.train_dataset, description="Training")
            self._share_prefix_sampler = SharedPrefixBatchSampler(
                dataset["input_ids"], self.args.per_device_train_batch_size,
                self.args.seed if self.args.data_seed is None else self.args.data_seed)
            loader = DataLoader(dataset, batch_sampler=self._share_prefix_sampler,
                                collate_fn=SharedPrefixCollator(self.processing_class.pad_token_id),
                                num_workers=self.args.dataloader_num_workers,
                                pin_memory=self.args.dataloader_pin_memory)
            return self.accelerator.prepare(loader)

        def _run_epoch(self, *args, **kwargs):
            # On a resume the Trainer skips consumed batches through a wrapper its set_epoch call does not
            # reach: set the sampler's epoch here, before the epoch's iterator is built.
            if self.share_prefix and hasattr(self, "_share_prefix_sampler") and "epoch" in kwargs:
                self._share_prefix_sampler.set_epoch(kwargs["epoch"])
            return super()._run_epoch(*args, **kwargs)

        def training_step(self, model, inputs, num_items_in_batch=None):
            labels = inputs.get("labels")
            if labels is not None:
                trainable = int((labels[..., 1:] != IGNORE_INDEX).sum())
                if trainable == 0:
                    raise TrainingDataError("a training batch has no trainable label (all -100)")
                self.counter["trained_tokens"] += trainable
            prefix = inputs.get("prefix_ids")
            if prefix is not None:  # computed once per batch: the prefix once, plus each row's real suffix
                rows, shared = inputs["input_ids"].shape[0], prefix.shape[1]
                suffix = int(inputs["attention_mask"].sum())
                self.counter["input_tokens"] += shared + suffix
                self.counter["logical_input_tokens"] += rows * shared + suffix  # as if each row ran it
            else:
                self.counter["input_tokens"] += int(inputs["input_ids"].numel())
                self.counter["logical_input_tokens"] += int(inputs["input_ids"].numel())
            return super().training_step(model, inputs, num_items_in_batch)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            """Mean NLL of the label tokens, projecting only their positions through the LM head.

            TRL's fused head scores every position off Triton devices (49k-vocab matmul, entropy and
            top-1 included) though assistant-only labels leave most positions unlabelled. Normalised as
            ``Trainer`` expects: summed NLL / ``num_items_in_batch`` (labels of the whole accumulated
            batch; ``training_step`` then does not divide by the accumulation steps), else / this
            batch's labels (evaluation). ``use_cache=False`` keeps padding-free rows apart.

            A ``SharedPrefixCollator`` batch (``prefix_ids`` [1, P]): the prefix runs once, with
            gradients, its keys/values are repeated for the B rows and each row's suffix attends to them
            (gradients of the prefix sum over the rows, as B separate copies would). Same loss and
            gradients as the row-by-row path, except for LoRA dropout: the prefix's dropout mask is drawn
            once and shared by the rows of the batch (row by row, each row draws its own).
            """
            prefix = inputs.get("prefix_ids")
            if prefix is not None and not self.label_only_loss:
                raise ValueError("shared-prefix batches need the label-only loss")
            if return_outputs or not self.label_only_loss or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            causal_lm = self.accelerator.unwrap_model(model)
            if is_peft_model(causal_lm):
                causal_lm = causal_lm.get_base_model()  # LoRA layers are injected in place: they still run
            backbone = causal_lm.base_model
            if prefix is not None and prefix.shape[1] > 0:
                if causal_lm.is_activation_checkpointing and causal_lm.training:
                    # Checkpointed layers silently drop the cache: rows would not see their prefix.
                    raise ValueError("share_prefix does not work with gradient (activation) checkpointing")
                ids, shared = inputs["input_ids"], prefix.shape[1]
                cache = prefix_cache(backbone, prefix[0].tolist(), ids.shape[0], ids.device)
                mask = torch.cat([inputs["attention_mask"].new_ones(ids.shape[0], shared),
                                  inputs["attention_mask"]], dim=1)
                hidden = backbone(input_ids=ids, attention_mask=mask, cache=cache, use_cache=True).last_hidden_state
            else:
                backbone_inputs = {k: v for k, v in inputs.items()
                                   if k not in ("labels", "shift_labels", "prefix_ids")}
                hidden = backbone(**backbone_inputs, use_cache=False).last_hidden_state
            labels = inputs["labels"][:, 1:]
            mask = labels != IGNORE_INDEX
            head = causal_lm.get_output_embeddings()
            log_probs = head(hidden[:, :-1][mask].to(head.weight.device)).float().log_softmax(-1)
            targets = labels[mask].to(log_probs.device)
            count = mask.sum()
            loss = torch.nn.functional.nll_loss(log_probs, targets, reduction="sum")
            loss = loss / (count.clamp(min=1) if num_items_in_batch is None else num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # as Trainer: DDP averages the gradients
            self._record_metrics(inputs, log_probs.detach(), targets, count)
            return loss

        @torch.no_grad()
        def _record_metrics(self, inputs, log_probs, targets, count):
            """TRL's logged entropy, token accuracy and token count, over the labelled positions."""
            mode = "train" if self.model.training else "eval"
            gather = self.accelerator.gather_for_metrics
            n = gather(count).sum()
            entropy = gather(-(log_probs.exp() * log_probs).sum()).sum()
            correct = gather((log_probs.argmax(-1) == targets).sum()).sum()
            self._metrics[mode]["entropy"].append((entropy / n).item() if n > 0 else 0.0)
            self._metrics[mode]["mean_token_accuracy"].append((correct / n).item() if n > 0 else 0.0)
            if mode == "train":
                ids = inputs["input_ids"]
                local = inputs["attention_mask"].sum() if "attention_mask" in inputs else \
                    torch.tensor(ids.numel(), device=ids.device)
                if "prefix_ids" in inputs:  # TRL's num_tokens: tokens per row, the shared prefix included
                    local = local + ids.shape[0] * inputs["prefix_ids"].shape[1]
                self._total_train_tokens += int(gather(local).sum())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

    return CountingSFTTrainer


def train_adapter(train_path: str | Path, eval_path: str | Path, base_model_dir: str | Path,
                  output_dir: str | Path, config: TrainingConfig | None = None,
                  progress: Callable[[dict], None] | None = None,
                  checkpoint_dir: str | Path | None = None, identity: str | None = None) -> dict[str, Any]:
    """Train a LoRA adapter; write it (with tokenizer + chat template) to ``output_dir``; return metrics.

    ``checkpoint_dir`` (default ``<output_dir>.checkpoints``) is kept out of the adapter folder so the
    adapter's content hash does not depend on intermediate state; name it after ``identity`` (see
    ``training_identity``) so that a re-run resumes. It must be dedicated to this training: it is
    deleted after success unless ``config.keep_checkpoints``. ``identity`` defaults to one built from the
    train file's content, the base model's path and the config. ``progress`` receives step events
    and ``{"message": ...}`` notes (resume, merged export).
    """
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, PrinterCallback, set_seed
    from trl import SFTConfig

    config = config or TrainingConfig()
    device = resolve_device(config.device)
    output_dir = Path(output_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else output_dir.with_name(output_dir.name + ".checkpoints")
    identity = identity or training_identity(sha256_file(train_path), str(Path(base_model_dir).resolve()), config)
    started = time.perf_counter()
    set_seed(config.seed)

    def note(message: str) -> None:
        log.info(message)
        if progress:
            progress({"message": message})

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir))
    if tokenizer.pad_token is None:
        # The collator is padding-free; a pad token is only needed by generation. Never mask eos as pad.
        tokenizer.pad_token = tokenizer.eos_token
    template = training_chat_template(tokenizer)
    train_conversations = read_conversations(train_path)
    eval_conversations = read_conversations(eval_path)
    check_template_equivalence(tokenizer, template, (train_conversations + eval_conversations)[:64])
    train_rows = tokenize_split(tokenizer, train_conversations, template, config.max_seq_length, "train")
    eval_rows = tokenize_split(tokenizer, eval_conversations, template, config.max_seq_length, "eval")
    train_tokens, train_label_tokens = _count_tokens(train_rows)
    resume_from = prepare_checkpoint_dir(checkpoint_dir, identity, config.resume)

    on_cuda = device == "cuda"
    # Checkpointed layers drop a KV cache, so not with share_prefix (its prefix runs once: less activation
    # memory anyway). TRL defaults activation checkpointing on; off on CPU (slower, and memory is ample).
    checkpointing = on_cuda and not config.share_prefix
    attention = choose_attention(device, config)
    model = load_base_model(base_model_dir, device, config.load_in_4bit, activation_checkpointing=checkpointing,
                            attn_implementation=attention)
    fused = apply_fused_kernels(model, config.fused_kernels, device)
    if fused:
        note(f"fused kernels: {', '.join(fused)}")
    peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                             target_modules=config.target_modules, task_type="CAUSAL_LM")
    bf16 = on_cuda and torch.cuda.is_bf16_supported()
    args = SFTConfig(
        output_dir=str(checkpoint_dir),
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float < 1 is a ratio of total steps
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        bf16=bf16,
        fp16=on_cuda and not bf16,
        activation_checkpointing=checkpointing,  # transformers 5 name; TRL defaults the old one to True
        use_cpu=not on_cuda,
        padding_free=config.padding_free,
        max_length=None,  # rows are truncated above; TRL refuses max_length with padding_free w/o packing
        packing=False,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy="no",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        report_to="none",
        dataloader_pin_memory=on_cuda,
        dataloader_num_workers=0,
        dataset_num_proc=None,
        disable_tqdm=True,
        # QLoRA on CUDA: paged 8-bit AdamW (8-bit optimizer state, paged out under memory spikes; not run
        # here: no GPU). bitsandbytes' paged optimizers need CUDA; elsewhere the Trainer's default. extra wins.
        **{**({"optim": "paged_adamw_8bit"} if on_cuda and config.load_in_4bit else {}), **config.extra},
    )
    counter = {"trained_tokens": 0, "input_tokens": 0, "logical_input_tokens": 0}
    callbacks = [_progress_callback(progress, counter)] if progress else []
    if os.environ.get(CRASH_AFTER_STEP_ENV):
        callbacks.append(_crash_callback(int(os.environ[CRASH_AFTER_STEP_ENV])))
    trainer = counting_sft_trainer_class()(
        model=model, args=args, train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows), processing_class=tokenizer, peft_config=peft_config,
        callbacks=callbacks, counter=counter, share_prefix=config.share_prefix)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout; `progress` replaces it
    eval_loss_before = trainer.evaluate()["eval_loss"] if config.eval_before_training else None
    resumed_from_step = _checkpoint_step(resume_from) if resume_from else None
    if resume_from:
        note(f"resuming from {resume_from} (step {resumed_from_step}): weights, optimizer, scheduler, RNG and "
             "data position restored")
    train_started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.perf_counter() - train_started
    eval_loss = trainer.evaluate()["eval_loss"] if config.eval_after_training else None

    tmp = output_dir.with_name(f".{output_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for adapter_config in trainer.model.peft_config.values():
        # "all-linear" resolves to a set, saved in its iteration order, which follows the per-process string
        # hash seed: the same training would get another adapter id in another process.
        if isinstance(adapter_config.target_modules, set):
            adapter_config.target_modules = sorted(adapter_config.target_modules)
    trainer.model.save_pretrained(str(tmp))
    tokenizer.chat_template = template  # byte-identical rendering, and markers for later training
    tokenizer.save_pretrained(str(tmp))
    steps_run = result.global_step - (resumed_from_step or 0)
    metrics = {
        "train_loss": result.training_loss,  # mean over the steps this process ran
        "eval_loss": eval_loss,
        "eval_loss_before": eval_loss_before,
        "steps": result.global_step,
        "resumed_from_step": resumed_from_step,
        "epochs": trainer.state.epoch,
        "train_examples": len(train_rows),
        "eval_examples": len(eval_rows),
        "train_dataset_tokens": train_tokens,
        "train_dataset_trained_tokens": train_label_tokens,
        "trained_tokens": counter["trained_tokens"],  # by this process (after the resume point, if resumed)
        "input_tokens": counter["input_tokens"],  # computed: a shared prefix once per batch
        "logical_input_tokens": counter["logical_input_tokens"],  # a shared prefix counted for every row
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - started,
        "tokens_per_s": counter["input_tokens"] / train_seconds if train_seconds else 0.0,
        "logical_tokens_per_s": counter["logical_input_tokens"] / train_seconds if train_seconds else 0.0,
        "trained_tokens_per_s": counter["trained_tokens"] / train_seconds if train_seconds else 0.0,
        "steps_per_s": steps_run / train_seconds if train_seconds else 0.0,
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "device": device,
        "precision": "bf16" if bf16 else "fp16" if on_cuda else "fp32",
        "quantization": "nf4 (double quant)" if config.load_in_4bit else None,
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "activation_checkpointing": bool(args.activation_checkpointing),
        "fused_kernels": fused,
        "attention": attention,
        "config_hash": config.config_hash,
        "training_identity": identity,
    }
    metrics = {k: _finite(v) for k, v in metrics.items()}
    (tmp / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True))
    (tmp / "training_metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    # train() starts a fresh log history: the baseline evaluation before it is added back as step 0.
    baseline = [{"step": 0, "eval_loss": eval_loss_before}] if eval_loss_before is not None else []
    (tmp / "training_log.json").write_text(json.dumps(training_log(baseline + trainer.state.log_history), indent=2))
    _replace_dir(tmp, output_dir)

    merged_dir = merged_dir_for(output_dir)
    shutil.rmtree(merged_dir, ignore_errors=True)  # never leave an older merge beside this adapter
    if config.export_merged:
        if config.load_in_4bit:
            note("export_merged skipped: merging LoRA into 4-bit weights would save a lossy model; train "
                 "without load_in_4bit or merge onto the full-precision base offline")
        else:
            _export_merged(trainer.model, tokenizer, merged_dir)
            note(f"merged model written to {merged_dir}")
    if not config.keep_checkpoints:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # intermediate state; the adapter is in place
    return metrics


def _export_merged(model, tokenizer, target: Path) -> None:
    """Base weights + LoRA delta as one plain transformers model (serves without PEFT).

    Merges in place rather than on a copy (a copy would hold a second full model in memory): call
    it last, the PEFT model is consumed.
    """
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged = model.merge_and_unload()
    merged.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    _replace_dir(tmp, target)
