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
- fp32, no gradient checkpointing on CPU (SFTConfig defaults to bf16 + checkpointing).
- Padding-free batching: SDPA on CPU keeps the flattened rows apart via position_ids, but only
  without a KV cache (SFTTrainer.compute_loss passes use_cache=False; a hand-written forward on
  such a batch must too, or rows silently attend to each other). On CPU it is about as fast as
  padding for rows of similar length; it saves memory and time when lengths spread.
- Seeded (LoRA init, data order); checkpoints every ``save_steps`` next to the output folder.
- The adapter folder is written to a temporary path and renamed into place: a crashed run leaves
  no half-written adapter.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .hashing import sha256_json

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


class TrainingDataError(ValueError):
    """The data cannot train anything useful (e.g. an example with no trainable assistant token)."""


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
    eval_before_training: bool = True  # a baseline eval loss makes the gain visible in the report
    weight_decay: float = 0.0
    lr_scheduler_type: str = "cosine"
    extra: dict[str, Any] = field(default_factory=dict)  # passed through to SFTConfig

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def config_hash(self) -> str:
        """Identity of the configuration (lineage: same data + base + config hash = same run)."""
        return sha256_json(self.to_dict())

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


def load_base_model(base_model_dir: str | Path, device: str, load_in_4bit: bool = False):
    """fp32 on CPU, bf16 (or fp16) on CUDA; optional 4-bit NF4 through bitsandbytes (QLoRA)."""
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
    model = AutoModelForCausalLM.from_pretrained(str(base_model_dir), attn_implementation="sdpa", **kwargs)
    if load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=device == "cuda")
    return model


def _progress_callback(progress: Callable[[dict], None], counter: dict):
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        """Reports step, loss, tokens/s (all and trained) and ETA at each logging step."""

        def on_train_begin(self, args, state, control, **kwargs):
            counter["started"] = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "started" not in counter or ("loss" not in logs and "eval_loss" not in logs):
                return  # the baseline evaluation before training is in the metrics, not a progress event
            elapsed = time.perf_counter() - counter["started"]
            done, total = state.global_step, state.max_steps
            rate = done / elapsed if elapsed > 0 and done else 0.0
            progress({
                "step": done, "max_steps": total, "epoch": state.epoch,
                "loss": logs.get("loss"), "eval_loss": logs.get("eval_loss"),
                "learning_rate": logs.get("learning_rate"),
                "tokens_per_s": counter["input_tokens"] / elapsed if elapsed > 0 else 0.0,
                "trained_tokens_per_s": counter["trained_tokens"] / elapsed if elapsed > 0 else 0.0,
                "elapsed_s": elapsed,
                "eta_s": (total - done) / rate if rate else None,
            })

    return ProgressCallback()


def train_adapter(train_path: str | Path, eval_path: str | Path, base_model_dir: str | Path,
                  output_dir: str | Path, config: TrainingConfig | None = None,
                  progress: Callable[[dict], None] | None = None,
                  checkpoint_dir: str | Path | None = None) -> dict[str, Any]:
    """Train a LoRA adapter; write it (with tokenizer + chat template) to ``output_dir``; return metrics.

    ``checkpoint_dir`` defaults to ``<output_dir>.checkpoints`` (kept out of the adapter folder so
    the adapter's content hash does not depend on intermediate state).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, PrinterCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    config = config or TrainingConfig()
    device = resolve_device(config.device)
    output_dir = Path(output_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else output_dir.with_name(output_dir.name + ".checkpoints")
    started = time.perf_counter()
    set_seed(config.seed)

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

    model = load_base_model(base_model_dir, device, config.load_in_4bit)
    peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                             target_modules=config.target_modules, task_type="CAUSAL_LM")
    on_cuda = device == "cuda"
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
        activation_checkpointing=on_cuda,  # transformers 5 name; TRL defaults the old one to True
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
        **config.extra,
    )
    counter = {"trained_tokens": 0, "input_tokens": 0}

    class CountingSFTTrainer(SFTTrainer):
        """Counts the tokens each optimisation micro-step really saw (exact tokens/s)."""

        def training_step(self, model, inputs, num_items_in_batch=None):
            labels = inputs.get("labels")
            if labels is not None:
                trainable = int((labels[..., 1:] != IGNORE_INDEX).sum())
                if trainable == 0:
                    raise TrainingDataError("a training batch has no trainable label (all -100)")
                counter["trained_tokens"] += trainable
            counter["input_tokens"] += int(inputs["input_ids"].numel())
            return super().training_step(model, inputs, num_items_in_batch)

    callbacks = [_progress_callback(progress, counter)] if progress else []
    trainer = CountingSFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows), processing_class=tokenizer, peft_config=peft_config,
        callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout; `progress` replaces it
    eval_loss_before = trainer.evaluate()["eval_loss"] if config.eval_before_training else None
    train_started = time.perf_counter()
    result = trainer.train()
    train_seconds = time.perf_counter() - train_started
    eval_loss = trainer.evaluate()["eval_loss"]

    tmp = output_dir.with_name(f".{output_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save_pretrained(str(tmp))
    tokenizer.chat_template = template  # byte-identical rendering, and markers for later training
    tokenizer.save_pretrained(str(tmp))
    metrics = {
        "train_loss": result.training_loss,
        "eval_loss": eval_loss,
        "eval_loss_before": eval_loss_before,
        "steps": result.global_step,
        "epochs": trainer.state.epoch,
        "train_examples": len(train_rows),
        "eval_examples": len(eval_rows),
        "train_dataset_tokens": train_tokens,
        "train_dataset_trained_tokens": train_label_tokens,
        "trained_tokens": counter["trained_tokens"],
        "input_tokens": counter["input_tokens"],
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - started,
        "tokens_per_s": counter["input_tokens"] / train_seconds if train_seconds else 0.0,
        "trained_tokens_per_s": counter["trained_tokens"] / train_seconds if train_seconds else 0.0,
        "steps_per_s": result.global_step / train_seconds if train_seconds else 0.0,
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "device": device,
        "config_hash": config.config_hash,
    }
    metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
    (tmp / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True))
    (tmp / "training_metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    if output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, output_dir)
    return metrics
