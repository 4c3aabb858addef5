"""Installed package versions, as lineage, audit records and hashes record them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def installed_version(name: str, missing: str | None = None) -> str | None:
    """The installed distribution's version, or ``missing`` when it is not installed (each record keeps
    the placeholder it has always used, since some of them are hashed)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return missing
