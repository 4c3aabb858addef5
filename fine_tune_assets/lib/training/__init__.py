"""Training: a LoRA adapter from a published dataset version and a local base model.

``train_adapter`` (``train``) composes one module per concept:

- ``config``: ``TrainingConfig``, its config hash and training hash;
- ``splits``: the train and eval splits as token rows (chat templates and tokenisation live in
  ``models.chat_template``, shared with evaluation; model loading in ``models.loading``);
- ``checkpoints``: the training identity, and resuming only from checkpoints of the same one;
- ``kernels``: attention implementation and fused kernels (``varlen_attention`` on CUDA);
- ``sft_config``: TRL's ``SFTConfig`` per device (precision, activation checkpointing, optimiser);
- ``trainer``: the ``SFTTrainer`` subclass (exact token counts, label-only loss, shared prefix),
  with ``batching`` (shared-prefix sampler and collator) and ``callbacks`` (progress, crash hook);
- ``metrics`` and ``export``: what a run reports and writes (adapter folder, merged model);
- ``publish``: the trained adapter into the registry under its content hash, with its lineage.

Importing the package stays cheap: torch, transformers, TRL and PEFT are imported when used.
"""

from .config import TrainingConfig
from .train import train_adapter

__all__ = ["TrainingConfig", "train_adapter"]
