"""The DuckDB registry of dataset versions (and, later, adapters and the audit ledger).

DuckDB locks a database file for the whole process that opened it read-write, and Dagster runs
steps, sensors and the web server in separate processes (the CLI is another one). So the registry
is opened briefly per operation and a locked file is retried with backoff instead of failing.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb

SCHEMA = """
CREATE TABLE IF NOT EXISTS dataset_versions (
    version_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    parent_version VARCHAR,
    path VARCHAR NOT NULL,
    n_train BIGINT NOT NULL,
    n_eval BIGINT NOT NULL,
    input_records BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    quarantined_by_reason JSON NOT NULL,
    token_stats JSON NOT NULL,
    scrub_policy_hash VARCHAR NOT NULL,
    scrub_policy JSON NOT NULL,
    scrub_entity_counts JSON NOT NULL,
    checks JSON NOT NULL,
    settings JSON NOT NULL,
    files JSON NOT NULL,
    code_version VARCHAR NOT NULL,
    run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS dataset_sources (
    version_id VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_sha256 VARCHAR NOT NULL,
    format VARCHAR,
    mapping VARCHAR,
    inputs BIGINT,
    accepted BIGINT,
    quarantined BIGINT,
    blank_lines BIGINT
);
CREATE TABLE IF NOT EXISTS dataset_records (
    version_id VARCHAR NOT NULL,
    record_id VARCHAR NOT NULL,
    split VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_sha256 VARCHAR NOT NULL,
    source_line BIGINT NOT NULL,
    n_tokens BIGINT
);
CREATE TABLE IF NOT EXISTS quarantine (
    version_id VARCHAR NOT NULL,
    record_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    detail VARCHAR,
    source_file VARCHAR,
    source_sha256 VARCHAR,
    source_line BIGINT
);
"""


class RegistryBusy(RuntimeError):
    pass


@contextmanager
def connect(path: str | Path, read_only: bool = False, timeout_s: float = 60.0):
    """A short-lived connection; retries while another process holds the file lock."""
    path = Path(path)
    if read_only and not path.exists():
        con = duckdb.connect()  # an empty in-memory registry reads as "no versions yet"
        con.execute(SCHEMA)
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
        if not read_only:
            con.execute(SCHEMA)
        yield con
    finally:
        con.close()


def table_names(con) -> set[str]:
    """Tables of the registry: optional features create theirs on first use, so readers check first."""
    return {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def rows_as_dicts(cursor) -> list[dict]:
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


class VersionNotFound(LookupError):
    pass


def erased_records_in(con, version_id: str) -> int:
    """How many records of a dataset version are under an erasure request (0 when none was ever made)."""
    if "erasures" not in table_names(con):
        return 0
    return con.execute("SELECT count(DISTINCT r.record_id) FROM dataset_records r JOIN erasures e "
                       "ON r.record_id = e.record_id WHERE r.version_id = ?", [version_id]).fetchone()[0]


def find_dataset_version(con, version: str) -> dict:
    """One dataset version row by full id, unique prefix, or 'latest': the newest published version that
    holds no erased record (an erasure can make an older version's content current again)."""
    if version in ("", "latest"):
        clean = ("WHERE NOT EXISTS (SELECT 1 FROM dataset_records r JOIN erasures e ON r.record_id = e.record_id "
                 "WHERE r.version_id = v.version_id) " if "erasures" in table_names(con) else "")
        rows = rows_as_dicts(con.execute(f"SELECT * FROM dataset_versions v {clean}ORDER BY created_at DESC LIMIT 1"))
    else:
        rows = rows_as_dicts(con.execute("SELECT * FROM dataset_versions WHERE starts_with(version_id, ?) "
                                         "ORDER BY created_at DESC", [version]))
    if not rows:
        raise VersionNotFound(f"no dataset version {version or 'latest'!r}; see `fine-tune-assets datasets list`")
    if len(rows) > 1:
        raise VersionNotFound(f"{version!r} matches {len(rows)} dataset versions; give more characters")
    return rows[0]
