"""Attention and fused kernels: speed and memory only, never the loss a run reaches.

On CUDA, padding-free rows run through PyTorch's varlen flash attention (``varlen_attention``):
under SDPA the rows' block mask made attention quadratic in the batch (0.59x the padded recipe on
an H200). Liger Kernel's Triton RoPE, RMSNorm and SwiGLU replace the model's own when installed
(docs/training-gpu.md has the measurements). Both are chosen before PEFT wraps the model, and
both are recorded in the run's metrics (lineage).
"""

from __future__ import annotations

import logging

from . import varlen_attention
from .config import TrainingConfig

log = logging.getLogger(__name__)


def choose_attention(device: str, config: TrainingConfig) -> str:
    """``torch_varlen`` for padding-free batches on CUDA when PyTorch has it (see ``varlen_attention``),
    else SDPA. Shared-prefix batches are padded rows with a cache: SDPA."""
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
