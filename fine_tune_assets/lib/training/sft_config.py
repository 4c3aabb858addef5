"""TRL's ``SFTConfig`` for a ``TrainingConfig`` on a device: the precision and memory recipe per device.

fp32 and no activation checkpointing on CPU (SFTConfig defaults to bf16 + checkpointing: slower
there, and memory is ample). On CUDA: bf16 (fp16 where bf16 is unsupported), activation
checkpointing unless ``share_prefix`` (checkpointed layers drop the prefix's KV cache), and paged
8-bit AdamW for QLoRA. Rows are tokenised and truncated before TRL sees them
(``models.chat_template``), so TRL's own truncation and packing stay off.
"""

from __future__ import annotations

from pathlib import Path

from .config import TrainingConfig


def activation_checkpointing(device: str, config: TrainingConfig) -> bool:
    """On CUDA unless ``share_prefix``: checkpointed layers drop a KV cache (and the shared prefix runs
    once per batch: less activation memory anyway). Off on CPU: slower, and memory is ample."""
    return device == "cuda" and not config.share_prefix


def sft_config(config: TrainingConfig, checkpoint_dir: Path, device: str):
    """The ``SFTConfig`` that checkpoints into ``checkpoint_dir``; ``config.extra`` overrides any field."""
    from trl import SFTConfig

    on_cuda = device == "cuda"
    dtype = precision(device)
    return SFTConfig(
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
        bf16=dtype == "bf16",
        fp16=dtype == "fp16",
        # TRL defaults the old name to True; under FSDP the FSDP plugin checkpoints instead (fsdp_config)
        activation_checkpointing=activation_checkpointing(device, config) and not config.fsdp,
        use_cpu=not on_cuda,
        padding_free=config.padding_free,
        max_length=None,  # rows are truncated already; TRL refuses max_length with padding_free w/o packing
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
        # QLoRA on CUDA: paged 8-bit AdamW (8-bit optimizer state, paged out under memory spikes).
        # bitsandbytes' paged optimizers need CUDA; elsewhere the Trainer's default. extra wins.
        **fsdp_arguments(config, device),
        **{**({"optim": "paged_adamw_8bit"} if on_cuda and config.load_in_4bit and not config.fsdp else {}),
           **config.extra},
    )


FSDP_CONFIG = {  # FSDP2 as transformers' Trainer takes it; deploy/accelerate_fsdp_qlora.yaml says the same
    "version": 2,
    "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
    "reshard_after_forward": True,
    "cpu_ram_efficient_loading": True,  # rank 0 loads the weights, the others get their shards
    "state_dict_type": "SHARDED_STATE_DICT",  # checkpoints without gathering the model on one GPU
    "activation_checkpointing": True,
}


def fsdp_arguments(config: TrainingConfig, device: str) -> dict:
    """SFTConfig fields for FSDP-QLoRA (``config.fsdp``), nothing otherwise."""
    if not config.fsdp:
        return {}
    return {"fsdp": "full_shard auto_wrap", "fsdp_config": dict(FSDP_CONFIG)}


def precision(device: str) -> str:
    """bf16 on CUDA (fp16 where the GPU lacks bf16), fp32 on CPU: as ``models.loading`` loads the weights."""
    import torch

    if device != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
