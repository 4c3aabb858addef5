"""The registry as the read-only commands open it: briefly, never for writing (an absent file reads as empty)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fine_tune_assets.lib.common.paths import DataPaths

T = TypeVar("T")


def read_registry(query: Callable[..., T]) -> T:
    """``query(con)`` on a read-only connection to the registry of ``$FINE_TUNE_DATA_DIR``."""
    from fine_tune_assets.lib.registry.connection import connect

    with connect(DataPaths.from_env().registry, read_only=True) as con:
        return query(con)
