import pytest

from fine_tune_assets_tests.lib.crash.crasher import Crasher
from fine_tune_assets_tests.registry_backends import BACKENDS, use_backend


@pytest.fixture(autouse=True, params=BACKENDS)
def registry_backend(request, monkeypatch):
    """Every test here runs on the DuckDB file and on PostgreSQL (``registry_backends``)."""
    yield from use_backend(request.param, monkeypatch)


@pytest.fixture(scope="session")
def crasher():
    """The warm child that publishes and kills itself (``crasher``): one per session, each command forks."""
    child = Crasher()
    yield child
    child.close()
