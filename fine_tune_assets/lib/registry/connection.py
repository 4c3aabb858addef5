"""Connections to the registry of dataset versions, adapters, evaluations and the audit ledger: a DuckDB
file, or PostgreSQL for a shared deployment (``backends``: which one, and how they differ).

DuckDB locks a database file for the whole process that opened it read-write, and Dagster runs
steps, sensors and the web server in separate processes (the CLI is another one). So the registry
is opened briefly per operation and a locked file is retried with backoff instead of failing.
Every connection sees every table of ``schema`` (see there for old files and read-only connections).
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from pathlib import Path

from . import backends
from .backends import RegistryBusy, RegistryUnavailable, Target  # noqa: F401  (re-exported: callers catch them here)
from .schema import create_tables, stand_in_for_missing, stored_tables


def registry_exists(target: Target) -> bool:
    """Whether anything was ever written to the registry (a DuckDB file, or the tables on PostgreSQL)."""
    backends.check(target)
    if not backends.is_postgres(target):
        return Path(target).exists()
    con = backends.open_connection(target, read_only=True, timeout_s=10)
    try:
        return "ledger" in stored_tables(con)
    finally:
        con.close()


@contextmanager
def connect(target: Target, read_only: bool = False, timeout_s: float = 60.0):
    """A short-lived connection to the registry ``target`` (a DuckDB file path or a PostgreSQL URL;
    ``DataPaths.registry`` is the deployment's); retries while another process holds a DuckDB file."""
    backends.check(target)
    if not backends.is_postgres(target):
        target = Path(target)
        if read_only and not target.exists():
            import duckdb

            con = duckdb.connect()  # an empty in-memory registry reads as "no versions yet"
            create_tables(con)
            try:
                yield con
            finally:
                con.close()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
    deadline, delay = time.monotonic() + timeout_s, 0.05
    while True:
        try:
            con = backends.open_connection(target, read_only, timeout_s)
            break
        except Exception as exc:
            if not backends.is_lock_error(exc) or time.monotonic() > deadline:
                if backends.is_lock_error(exc):
                    raise RegistryBusy(f"registry {target} is locked by another process: {exc}") from None
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
    try:
        if read_only:
            stand_in_for_missing(con)
            backends.finish_read_only_setup(con)
        else:
            create_tables(con)
        yield con
    finally:
        con.close()


def worker_registry(data_dir: str | Path, expected: str) -> Target:
    """The registry a launched worker (Pipes, a pod) opens for ``data_dir``: the file there, or
    ``$FINE_TUNE_REGISTRY_URL``. Refused unless it is the one its asset named (``display``: no password),
    e.g. in a pod without the secret that holds the URL, which would write a local DuckDB file instead."""
    from ..common.paths import DataPaths

    registry = DataPaths(Path(data_dir)).registry
    if backends.display(registry) != expected:
        raise RuntimeError(f"this worker's registry is {backends.display(registry)}, the asset's is {expected}: give "
                           "the worker the same FINE_TUNE_REGISTRY_URL (on Kubernetes: FINE_TUNE_K8S_SECRET)")
    return registry


def rows_as_dicts(cursor) -> list[dict]:
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]
