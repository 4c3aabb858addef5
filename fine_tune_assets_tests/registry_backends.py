"""Both registry backends for the registry test suite: a test that takes ``registry_backend`` runs once on
the DuckDB file and once on a fresh PostgreSQL database of the server ``scripts/with_postgres.sh`` started
(``make test`` starts one; ``FINE_TUNE_TEST_POSTGRES_URL`` names it). The PostgreSQL run sets
``FINE_TUNE_REGISTRY_URL``, so every layer (the library, the CLI in a subprocess, Dagster) uses it.

Without a server the PostgreSQL half skips; under ``CI=true`` it fails instead, so CI cannot pass
without having run it."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from fine_tune_assets.lib.common.paths import REGISTRY_URL_ENV

TEST_SERVER_ENV = "FINE_TUNE_TEST_POSTGRES_URL"
BACKENDS = ("duckdb", "postgresql")


def postgres_server() -> str:
    url = os.environ.get(TEST_SERVER_ENV, "").strip()
    if not url:
        message = (f"no PostgreSQL for the tests: run them with scripts/with_postgres.sh (make test) or set "
                   f"{TEST_SERVER_ENV}")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def _on_server(server_url: str, sql: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE cannot run inside one)."""
    import psycopg2

    con = psycopg2.connect(server_url)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(sql)
    finally:
        con.close()


def fresh_database(server_url: str) -> tuple[str, str]:
    """A new empty database on the test server: (its URL, its name)."""
    name = f"ft_{uuid.uuid4().hex[:16]}"
    _on_server(server_url, f"CREATE DATABASE {name}")
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}")), name


def clone_database(server_url: str, template_url: str) -> tuple[str, str]:
    """A new database on the test server holding a copy of ``template_url``'s (which must have no open
    connection): (its URL, its name)."""
    name = f"ft_{uuid.uuid4().hex[:16]}"
    _on_server(server_url, f"CREATE DATABASE {name} TEMPLATE {urlsplit(template_url).path.lstrip('/')}")
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}")), name


def drop_database(server_url: str, name: str) -> None:
    _on_server(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def use_backend(backend: str, monkeypatch):
    """Point ``DataPaths.registry`` at a fresh PostgreSQL database for ``postgresql``; yields the URL or None."""
    if backend == "duckdb":
        monkeypatch.delenv(REGISTRY_URL_ENV, raising=False)
        yield None
        return
    server = postgres_server()
    url, name = fresh_database(server)
    monkeypatch.setenv(REGISTRY_URL_ENV, url)
    try:
        yield url
    finally:
        drop_database(server, name)
