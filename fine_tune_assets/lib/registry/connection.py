"""Connections to the DuckDB registry of dataset versions, adapters, evaluations and the audit ledger.

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

import duckdb

from .schema import create_tables, stand_in_for_missing


class RegistryBusy(RuntimeError):
    pass


@contextmanager
def connect(path: str | Path, read_only: bool = False, timeout_s: float = 60.0):
    """A short-lived connection; retries while another process holds the file lock."""
    path = Path(path)
    if read_only and not path.exists():
        con = duckdb.connect()  # an empty in-memory registry reads as "no versions yet"
        create_tables(con)
        try:
            yield con
        finally:
            con.close()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline, delay = time.monotonic() + timeout_s, 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise RegistryBusy(f"registry {path} is locked by another process: {exc}") from None
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
    try:
        if read_only:
            stand_in_for_missing(con)
        else:
            create_tables(con)
        yield con
    finally:
        con.close()


def rows_as_dicts(cursor) -> list[dict]:
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]
