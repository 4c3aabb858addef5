import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # vendored public files, see its README.md
SAMPLE_DATA = REPO / "data"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """One tokenizer conversion per test session (a few seconds), shared by every test."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tokenizer(models_dir):
    from fine_tune_assets.lib.models.base_model import DEFAULT_BASE_MODEL, load_tokenizer

    return load_tokenizer(DEFAULT_BASE_MODEL, str(models_dir))


def make_data_dir(root: Path, models_dir: Path, with_sample: bool = True) -> Path:
    """A data directory laid out like ./data, with the sample raw files and mappings (or empty)."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("raw", "mappings", "config"):
        (root / sub).mkdir(exist_ok=True)
        if with_sample and (SAMPLE_DATA / sub).is_dir():
            shutil.copytree(SAMPLE_DATA / sub, root / sub, dirs_exist_ok=True)
    (root / "models").symlink_to(models_dir, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny pre-trained Llama chat model, built once per session (~30-45 s on 2 cores)."""
    from fine_tune_assets_tests.tiny_model import build_tiny_model

    target = tmp_path_factory.mktemp("tiny_model") / "tiny-llama"
    build_tiny_model(target)
    return target
