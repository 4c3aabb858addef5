"""Load a local base model for LoRA training or evaluation, on the device and at the precision that suit it.

fp32 on CPU (SFTConfig's bf16 default is slow and lossy there); bf16 (or fp16) on CUDA; optional
4-bit NF4 through bitsandbytes for QLoRA. Heavy libraries are imported inside the functions: importing
this module stays cheap.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def peft_wrapping() -> Iterator[None]:
    """Around PEFT wrapping a model (``get_peft_model``, ``PeftModel.from_pretrained``): PEFT 0.21 reads
    transformers' deprecated ``is_gradient_checkpointing`` (peft/peft_model.py, ``PeftModel.__init__``), which
    warns on every wrap. Only that one message is silenced, only here; drop this once PEFT reads
    ``is_activation_checkpointing``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; an unavailable ``cuda`` is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' requested but torch sees no CUDA device")
    return device


def quantization_kwargs(compute_dtype, fsdp: bool = False) -> dict[str, Any]:
    """NF4 with double quantization, computing in ``compute_dtype``; under FSDP the packed 4-bit weights
    are stored in that dtype too (FSDP shards parameters of one dtype; uint8 storage would not shard)."""
    kwargs = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
              "bnb_4bit_compute_dtype": compute_dtype}
    if fsdp:
        kwargs["bnb_4bit_quant_storage"] = compute_dtype
    return kwargs


def load_base_model(base_model_dir: str | Path, device: str, load_in_4bit: bool = False,
                    activation_checkpointing: bool | None = None, attn_implementation: str = "sdpa",
                    fsdp: bool = False):
    """fp32 on CPU, bf16 (or fp16) on CUDA; optional 4-bit NF4 through bitsandbytes (QLoRA).

    A 4-bit model is frozen for LoRA as PEFT's ``prepare_model_for_kbit_training`` does, minus its cast
    of every non-4-bit weight to fp32: that cast cost 50% more GPU memory at the first step on a 1B
    Llama (tied 49k-vocab embeddings in fp32), and RMSNorm computes in fp32 anyway. With
    ``activation_checkpointing`` (default: on CUDA) the embeddings' output requires grad, so
    checkpointed layers see a graph input; pass False with ``share_prefix``. With ``fsdp`` (FSDP-QLoRA on a
    multi-GPU node) the 4-bit weights are stored in the compute dtype, so FSDP can shard them with the rest,
    and no device map is given: FSDP places the shards (loading on rank 0 only, CPU-RAM-efficient, is
    accelerate's ``FSDP_CPU_RAM_EFFICIENT_LOADING``, set by ``training.distributed.torchrun_env``)."""
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
        kwargs["quantization_config"] = BitsAndBytesConfig(**quantization_kwargs(kwargs["dtype"], fsdp))
        if not fsdp:  # under torchrun each process owns GPU LOCAL_RANK, not 0
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))} if device == "cuda" else "cpu"
    model = AutoModelForCausalLM.from_pretrained(str(base_model_dir), attn_implementation=attn_implementation,
                                                 **kwargs)
    if load_in_4bit:
        model.requires_grad_(False)
        if device == "cuda" if activation_checkpointing is None else activation_checkpointing:
            model.enable_input_require_grads()
    return model


def load_adapter(adapter_dir: str | Path, models_dir: str | Path, device: str = "auto"):
    """An adapter folder on its base model, wherever the data folder now is: the base comes from the adapter's
    own ``base_model_name_or_path`` (a Hub id or a name under ``models_dir``, ``base_model.resolve_adapter_base``),
    not from a path recorded at training. Returns the PEFT model, in eval mode."""
    import json

    from peft import PeftModel

    from .base_model import resolve_adapter_base

    reference = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["base_model_name_or_path"]
    base = load_base_model(resolve_adapter_base(reference, models_dir), resolve_device(device))
    with peft_wrapping():
        return PeftModel.from_pretrained(base, str(adapter_dir)).eval()
