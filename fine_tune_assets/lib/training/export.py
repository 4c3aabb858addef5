"""What a run writes: the adapter folder and, on request, the merged model; each atomically.

Each is written to a temporary folder beside its target and renamed into place: a crashed run
leaves no half-written adapter. The merged model sits next to the adapter folder, not inside it, so
the adapter's content hash ignores it; an older merge is removed whenever an adapter is written.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from .config import TrainingConfig
from .metrics import training_log


def replace_dir(tmp: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)


def _staging_dir(target: Path) -> Path:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def stage_adapter(model, tokenizer, template: str, output_dir: Path, state_dict: dict | None = None,
                  base_model_ref: str | None = None) -> Path:
    """LoRA weights and the tokenizer, with the training ``template``, in a temporary folder. ``state_dict``:
    the weights gathered from every process when they are sharded (FSDP); PEFT keeps the adapter's.
    ``base_model_ref`` replaces the local path PEFT records as the base (``base_model.adapter_base_reference``:
    a Hub id, or a name under the data folder's models/), so that the adapter survives a move of the folder."""
    tmp = _staging_dir(output_dir)
    for adapter_config in model.peft_config.values():
        # "all-linear" resolves to a set, saved in its iteration order, which follows the per-process string
        # hash seed: the same training would get another adapter id in another process.
        if isinstance(adapter_config.target_modules, set):
            adapter_config.target_modules = sorted(adapter_config.target_modules)
    model.save_pretrained(str(tmp), **({"state_dict": state_dict} if state_dict is not None else {}))
    if base_model_ref:  # after saving: PEFT's save reads the base's config from this path (the vocabulary check)
        config_file = tmp / "adapter_config.json"
        values = json.loads(config_file.read_text())
        config_file.write_text(json.dumps({**values, "base_model_name_or_path": base_model_ref}, indent=2,
                                          sort_keys=True) + "\n")
    tokenizer.chat_template = template  # byte-identical rendering, and markers for later training
    tokenizer.save_pretrained(str(tmp))
    return tmp


def write_adapter(staged: Path, output_dir: Path, config: TrainingConfig, metrics: dict,
                  log_history: list[dict]) -> None:
    """Add the run's config, metrics and loss curve to the staged folder; move it into place."""
    (staged / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True))
    (staged / "training_metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    (staged / "training_log.json").write_text(json.dumps(training_log(log_history), indent=2))
    replace_dir(staged, output_dir)


def merged_dir_for(output_dir: str | Path) -> Path:
    """Where ``export_merged`` writes: next to the adapter, so the adapter's content hash ignores it."""
    output_dir = Path(output_dir)
    return output_dir.with_name(output_dir.name + ".merged")


def export_merged(model, tokenizer, output_dir: Path, config: TrainingConfig, note: Callable[[str], None]) -> None:
    """Base weights + LoRA delta as one plain transformers model (serves without PEFT), if asked.

    Merges in place rather than on a copy (a copy would hold a second full model in memory): call
    it last, the PEFT model is consumed.
    """
    target = merged_dir_for(output_dir)
    shutil.rmtree(target, ignore_errors=True)  # never leave an older merge beside this adapter
    if not config.export_merged:
        return
    if config.load_in_4bit:
        note("export_merged skipped: merging LoRA into 4-bit weights would save a lossy model; train "
             "without load_in_4bit or merge onto the full-precision base offline")
        return
    tmp = _staging_dir(target)
    merged = model.merge_and_unload()
    merged.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    replace_dir(tmp, target)
    note(f"merged model written to {target}")
