"""Where a registry lives, and everything the two backends do differently, in one module.

- **DuckDB file** (the embedded default): ``$FINE_TUNE_DATA_DIR/registry.duckdb``, for one machine and
  ``make run``. DuckDB locks the file for the process that opened it, so writers take turns by retrying.
- **PostgreSQL**, when ``$FINE_TUNE_REGISTRY_URL`` names one (``postgresql://user@host:port/db``, read
  by ``DataPaths.registry``): for a team whose web server, daemon, runs and CLI sit on several machines
  (a DuckDB file on a network share is unsafe). Writers serialize on a transaction-level advisory
  lock, so the ledger's hash chain stays linear: a unique ``seq`` alone would reject concurrent
  appends instead of ordering them.

Everything else (the schema, every query) is SQL both accept: ``VARCHAR``/``JSON``/``TIMESTAMPTZ``
columns, ``?`` placeholders (translated here for psycopg2), ``starts_with``, ``array_agg``,
``ON CONFLICT DO NOTHING``, and ``column IN (SELECT unnest(CAST(? AS VARCHAR[])))`` for a list
parameter (``in_list``). The registry holds metadata only; the data stays in Parquet and JSONL files.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import duckdb

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2")
WRITE_LOCK_KEY = 0x46545F524547  # pg_advisory_xact_lock key of registry writes ("FT_REG")
LOCK_TIMEOUT = "120s"  # a writer waits this long for another's transaction, then fails with a clear error

Target = str | Path
"""A registry: the path of a DuckDB file, or a PostgreSQL URL."""


def is_postgres(target: Target) -> bool:
    return isinstance(target, str) and urlsplit(target).scheme in POSTGRES_SCHEMES


def display(target: Target) -> str:
    """The registry as logs, metadata and lineage may name it: a URL without its password."""
    if not is_postgres(target):
        return str(target)
    parts = urlsplit(str(target))
    query = re.sub(r"(?i)(^|&)password=[^&]*", r"\1password=***", parts.query)
    if parts.password is not None:
        host = parts.hostname or ""
        parts = parts._replace(netloc=f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else ""))
    return urlunsplit(parts._replace(query=query))


def dsn(target: str) -> str:
    """A URL psycopg2 accepts (it knows ``postgresql://`` and ``postgres://``, not SQLAlchemy's ``+psycopg2``)."""
    return re.sub(r"^postgresql\+psycopg2://", "postgresql://", target)


def in_list(column: str) -> str:
    """``column`` is one of a list parameter's values, in SQL both backends accept."""
    return f"{column} IN (SELECT unnest(CAST(? AS VARCHAR[])))"


# ------------------------------------------------------------------------------------------------ PostgreSQL


def _placeholders(sql: str) -> str:
    """DuckDB's ``?`` placeholders as psycopg2's ``%s`` (a literal ``%`` doubled), outside quoted strings."""
    out, quoted = [], False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        if ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


class PostgresConnection:
    """A psycopg2 connection with the calls the registry code makes on a DuckDB connection:
    ``execute`` and ``executemany`` take ``?`` placeholders and return the cursor. Autocommit, so a
    statement outside ``transaction()`` commits at once, as on DuckDB. JSON columns come back as text
    (as from DuckDB): the ledger hashes the exact payload text, and callers parse it themselves."""

    def __init__(self, url: str, read_only: bool, timeout_s: float):
        import psycopg2
        import psycopg2.extras

        self.raw = psycopg2.connect(dsn(url), connect_timeout=max(1, int(timeout_s)),
                                    application_name="fine_tune_assets")
        self.raw.autocommit = True
        psycopg2.extras.register_default_json(self.raw, loads=lambda text: text)
        self.read_only = read_only
        with self.raw.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")

    def execute(self, sql: str, params=None):
        cur = self.raw.cursor()
        if params:
            cur.execute(_placeholders(sql), params)
        else:  # without parameters psycopg2 sends the text as it is (a "%" stays single)
            cur.execute(sql)
        return cur

    def executemany(self, sql: str, rows):
        cur = self.raw.cursor()
        cur.executemany(_placeholders(sql), rows)
        return cur

    def close(self) -> None:
        self.raw.close()


def check(target: Target) -> None:
    """Refuse a URL that names neither backend (rather than open a DuckDB file called ``mysql://...``)."""
    if isinstance(target, str) and "://" not in target and re.search(r"\b(host|dbname|user|password)=", target):
        raise RegistryUnavailable("the registry is given as keyword settings (host=... dbname=...): give a "
                                  "postgresql://user@host:port/database URL instead")
    if isinstance(target, str) and "://" in target and not is_postgres(target):
        raise RegistryUnavailable(f"registry {display(target)} is not a PostgreSQL URL: expected "
                                  "postgresql://user@host:port/database, or unset FINE_TUNE_REGISTRY_URL to use "
                                  "the DuckDB file")


def open_connection(target: Target, read_only: bool, timeout_s: float):
    """A raw connection to ``target`` (DuckDB errors pass through: the caller retries a locked file)."""
    check(target)
    if is_postgres(target):
        import psycopg2

        try:
            return PostgresConnection(str(target), read_only, timeout_s)
        except psycopg2.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RegistryUnavailable(f"registry {display(target)} is unreachable: {first}") from None
    return duckdb.connect(str(target), read_only=read_only)


class RegistryUnavailable(RuntimeError):
    """The PostgreSQL registry cannot be reached (wrong URL, server down, bad credentials)."""


def postgres(con) -> bool:
    return isinstance(con, PostgresConnection)


class RegistryBusy(RuntimeError):
    """Another process held the registry (a DuckDB file's lock, PostgreSQL's write lock) for too long."""


def begin(con) -> None:
    """Start a write transaction. On PostgreSQL it first waits for the registry's write lock (released at
    COMMIT or ROLLBACK): every registry write reads the newest state, as under DuckDB's file lock."""
    con.execute("BEGIN TRANSACTION")
    if postgres(con):
        import psycopg2.errors

        try:
            con.execute("SELECT pg_advisory_xact_lock(?)", [WRITE_LOCK_KEY])
        except psycopg2.errors.LockNotAvailable:
            raise RegistryBusy(f"the registry's write lock was held by another process for over {LOCK_TIMEOUT}: "
                               "try again (a long publish or erasure may be running)") from None


def finish_read_only_setup(con) -> None:
    """A read-only PostgreSQL connection refuses writes, as a DuckDB file opened read-only does, and reads
    one snapshot for its whole life (one REPEATABLE READ transaction): a reader such as ``verify`` must not
    see a version committed between its read of the ledger and its read of the tables (on DuckDB the
    file lock keeps writers out while it reads)."""
    if postgres(con):
        con.raw.set_session(isolation_level="REPEATABLE READ", readonly=True, autocommit=False)


def insert_from_parquet(con, table: str, select_sql: str, params: list) -> None:
    """``INSERT INTO table <select_sql>``, where ``select_sql`` reads Parquet files with DuckDB's
    ``read_parquet``: directly on DuckDB; on PostgreSQL an in-memory DuckDB reads the rows and they are
    sent in pages (the files stay the data; the registry gets the rows it indexes)."""
    if not postgres(con):
        con.execute(f"INSERT INTO {table} {select_sql}", params)
        return
    from psycopg2.extras import execute_values

    with duckdb.connect() as local:
        cursor = local.execute(select_sql, params)
        with con.raw.cursor() as out:
            while rows := cursor.fetchmany(2000):
                execute_values(out, f"INSERT INTO {table} VALUES %s", rows, page_size=2000)


def insert_rows(con, table: str, columns: list[str], rows: list[tuple]) -> None:
    """Insert a batch of rows: pages of ``VALUES`` on PostgreSQL, one Arrow batch on DuckDB (row-by-row
    ``executemany`` there is slow for the tens of thousands of rows a dataset version indexes)."""
    if postgres(con):
        from psycopg2.extras import execute_values

        with con.raw.cursor() as out:
            execute_values(out, f"INSERT INTO {table} ({', '.join(columns)}) VALUES %s", rows, page_size=2000)
        return
    import pyarrow as pa

    con.register("migrating_batch", pa.Table.from_pylist([dict(zip(columns, row)) for row in rows]))
    try:
        con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM migrating_batch")
    finally:
        con.unregister("migrating_batch")


def is_lock_error(exc: BaseException) -> bool:
    """A DuckDB file held by another process (the caller retries)."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()
