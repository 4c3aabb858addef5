"""Session-wide fixtures. Constants and plain builders live in ``factories.py`` (importable by any test
module); importing it here also imports ``fine_tune_assets`` first, whose ``__init__`` sets the offline
environment defaults before any test module loads Presidio or transformers."""

from pathlib import Path

import pytest

from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets_tests.factories import publish_test_adapter, publish_test_dataset, record_test_evaluation


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """One tokenizer conversion per test session (a few seconds), shared by every test."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tokenizer(models_dir):
    from fine_tune_assets.lib.models.base_model import DEFAULT_BASE_MODEL, load_tokenizer

    return load_tokenizer(DEFAULT_BASE_MODEL, str(models_dir))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny pre-trained Llama chat model, built once per session (~30-45 s on 2 cores)."""
    from fine_tune_assets_tests.tiny_model import build_tiny_model

    target = tmp_path_factory.mktemp("tiny_model") / "tiny-llama"
    build_tiny_model(target)
    return target


@pytest.fixture
def published(tmp_path):
    """A data dir with one dataset version, one adapter and one evaluation: three ledger events."""
    paths = DataPaths.from_env(tmp_path / "data")
    version = publish_test_dataset(paths, tmp_path)
    adapter_id = publish_test_adapter(paths, tmp_path, version)
    eval_id = record_test_evaluation(paths, adapter_id, version)
    return paths, version, adapter_id, eval_id
