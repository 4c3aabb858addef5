"""LoRA fine-tuning of a local base model on a published chat dataset (TRL SFTTrainer + PEFT).

Plain Python, no Dagster: the asset (or a subprocess / Pipes launcher) calls ``train_adapter``,
which composes the steps that the sibling modules hold: tokenised splits (``splits``), the
checkpoint folder (``checkpoints``), the model with its kernels (``models.loading``, ``kernels``),
TRL's arguments (``sft_config``), the trainer (``trainer``, ``callbacks``), and what the run writes
(``metrics``, ``export``).

Seeded (LoRA init, dropout, data order): the same data, base model and config give the same
adapter bytes, whether the run went through in one go or resumed after a crash.

Under ``torchrun`` (``distributed``) every process runs this function on its share of each batch; only
rank 0 claims the checkpoint folder and writes the adapter, the others wait for it at a barrier.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.hashing import sha256_file
from ..models.loading import load_base_model, peft_wrapping, resolve_device
from .callbacks import training_callbacks
from .checkpoints import checkpoint_step, latest_checkpoint, prepare_checkpoint_dir, training_identity
from .config import TrainingConfig
from .distributed import barrier, check_fsdp, current, sum_over_processes
from .export import export_merged, stage_adapter, write_adapter
from .kernels import apply_fused_kernels, choose_attention
from .metrics import finite, peak_memory, throughput
from .sft_config import activation_checkpointing, precision, sft_config
from .splits import TokenizedSplits, load_tokenizer, tokenize_splits
from .trainer import counting_sft_trainer_class

log = logging.getLogger(__name__)


def train_adapter(train_path: str | Path, eval_path: str | Path, base_model_dir: str | Path,
                  output_dir: str | Path, config: TrainingConfig | None = None,
                  progress: Callable[[dict], None] | None = None,
                  checkpoint_dir: str | Path | None = None, identity: str | None = None,
                  base_model_ref: str | None = None) -> dict[str, Any]:
    """Train a LoRA adapter; write it (with tokenizer + chat template) to ``output_dir``; return metrics.

    ``checkpoint_dir`` (default ``<output_dir>.checkpoints``) is kept out of the adapter folder so the
    adapter's content hash does not depend on intermediate state; name it after ``identity`` (see
    ``training_identity``) so that a re-run resumes. It must be dedicated to this training: it is
    deleted after success unless ``config.keep_checkpoints``. ``identity`` defaults to one built from the
    train file's content, the base model's path and the config. ``progress`` receives step events
    and ``{"message": ...}`` notes (resume, merged export). ``base_model_ref``: what the adapter names as its
    base instead of ``base_model_dir`` (``stage_adapter``).
    """
    from transformers import set_seed

    config = config or TrainingConfig()
    device = resolve_device(config.device)
    check_fsdp(config, device)
    output_dir = Path(output_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else output_dir.with_name(output_dir.name + ".checkpoints")
    identity = identity or training_identity(sha256_file(train_path), str(Path(base_model_dir).resolve()), config)
    started = time.perf_counter()
    set_seed(config.seed)
    note = _notifier(progress)

    tokenizer = load_tokenizer(base_model_dir)
    splits = tokenize_splits(tokenizer, train_path, eval_path, config.max_seq_length)
    rank = current()
    if rank.is_main:  # claims the folder (and refuses another training's checkpoints) for every process
        resume_from = prepare_checkpoint_dir(checkpoint_dir, identity, config.resume)
    barrier()
    if not rank.is_main:
        resume_from = latest_checkpoint(checkpoint_dir) if config.resume else None
    counter = {"trained_tokens": 0, "input_tokens": 0, "logical_input_tokens": 0}
    trainer, kernel_choice = _build_trainer(base_model_dir, device, config, checkpoint_dir, tokenizer, splits,
                                      training_callbacks(progress, counter), counter, note)
    if rank.distributed:
        note(f"training in {rank.world_size} processes (world size {rank.world_size}, torchrun, "
             f"{'NCCL' if device == 'cuda' else 'gloo'})")
    run = _run(trainer, config, resume_from, note)
    # every process's share of the tokens (the progress events during training count rank 0's only)
    counter.update({k: int(v) for k, v in sum_over_processes({k: counter[k] for k in TOKEN_COUNTS}).items()})

    metrics = _metrics(run, trainer, config, splits, counter, device, kernel_choice, identity,
                       total_seconds=time.perf_counter() - started)
    # under FSDP each process holds a shard: all of them gather the weights, rank 0 writes them
    state_dict = trainer.accelerator.get_state_dict(trainer.model) if config.fsdp else None
    if rank.is_main:
        staged = stage_adapter(trainer.model, tokenizer, splits.template, output_dir, state_dict, base_model_ref)
        # train() starts a fresh log history: the baseline evaluation before it is added back as step 0.
        baseline = [{"step": 0, "eval_loss": run.eval_loss_before}] if run.eval_loss_before is not None else []
        write_adapter(staged, output_dir, config, metrics, baseline + trainer.state.log_history)
        export_merged(trainer.model, tokenizer, output_dir, config, note)
    barrier()
    if rank.is_main and not config.keep_checkpoints:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # intermediate state; the adapter is in place
    return metrics


TOKEN_COUNTS = ("trained_tokens", "input_tokens", "logical_input_tokens")


def _notifier(progress: Callable[[dict], None] | None) -> Callable[[str], None]:
    def note(message: str) -> None:
        log.info(message)
        if progress:
            progress({"message": message})

    return note


def _build_trainer(base_model_dir: str | Path, device: str, config: TrainingConfig, checkpoint_dir: Path,
                   tokenizer, splits: TokenizedSplits, callbacks: list, counter: dict,
                   note: Callable[[str], None]) -> tuple[Any, dict[str, Any]]:
    """The base model with its kernels, wrapped by the trainer in LoRA; and the kernels chosen (lineage)."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback

    attention = choose_attention(device, config)
    model = load_base_model(base_model_dir, device, config.load_in_4bit, fsdp=config.fsdp,
                            activation_checkpointing=activation_checkpointing(device, config),
                            attn_implementation=attention)
    fused = apply_fused_kernels(model, config.fused_kernels, device)
    if fused:
        note(f"fused kernels: {', '.join(fused)}")
    peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                             target_modules=config.target_modules, task_type="CAUSAL_LM")
    with peft_wrapping():  # the trainer wraps the model with get_peft_model
        trainer = counting_sft_trainer_class()(
            model=model, args=sft_config(config, checkpoint_dir, device),
            train_dataset=Dataset.from_list(splits.train), eval_dataset=Dataset.from_list(splits.eval),
            processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks, counter=counter,
            share_prefix=config.share_prefix)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout; `progress` replaces it
    return trainer, {"fused_kernels": fused, "attention": attention}


@dataclass(frozen=True)
class _Run:
    result: Any  # transformers' TrainOutput
    train_seconds: float
    resumed_from_step: int | None
    eval_loss_before: float | None
    eval_loss: float | None


def _run(trainer, config: TrainingConfig, resume_from: Path | None, note: Callable[[str], None]) -> _Run:
    """Train (from ``resume_from`` if given), with the evaluations the config asks for around it."""
    eval_loss_before = trainer.evaluate()["eval_loss"] if config.eval_before_training else None
    resumed_from_step = checkpoint_step(resume_from) if resume_from else None
    if resume_from:
        note(f"resuming from {resume_from} (step {resumed_from_step}): weights, optimizer, scheduler, RNG and "
             "data position restored")
    train_started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.perf_counter() - train_started
    eval_loss = trainer.evaluate()["eval_loss"] if config.eval_after_training else None
    return _Run(result, train_seconds, resumed_from_step, eval_loss_before, eval_loss)


def _metrics(run: _Run, trainer, config: TrainingConfig, splits: TokenizedSplits, counter: dict, device: str,
             kernel_choice: dict[str, Any], identity: str, total_seconds: float) -> dict[str, Any]:
    """The run's figures and choices (the adapter's ``training_metrics.json``), JSON-safe."""
    train_tokens, train_label_tokens = splits.train_token_counts()
    args = trainer.args
    metrics = {
        "train_loss": run.result.training_loss,  # mean over the steps this process ran
        "eval_loss": run.eval_loss,
        "eval_loss_before": run.eval_loss_before,
        "steps": run.result.global_step,
        "resumed_from_step": run.resumed_from_step,
        "epochs": trainer.state.epoch,
        "train_examples": len(splits.train),
        "eval_examples": len(splits.eval),
        "train_dataset_tokens": train_tokens,
        "train_dataset_trained_tokens": train_label_tokens,
        **throughput(counter, run.train_seconds, total_seconds,
                     steps_run=run.result.global_step - (run.resumed_from_step or 0)),
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "device": device,
        **peak_memory(device),
        "world_size": current().world_size,
        "precision": precision(device),
        "quantization": "nf4 (double quant)" if config.load_in_4bit else None,
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "activation_checkpointing": bool(args.activation_checkpointing),
        **kernel_choice,
        "config_hash": config.config_hash,
        "training_identity": identity,
    }
    return {k: finite(v) for k, v in metrics.items()}
