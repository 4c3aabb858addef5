"""What differs between the two registry backends, and the errors a wrong ``FINE_TUNE_REGISTRY_URL`` gives."""

from __future__ import annotations

import socket

import pytest

from fine_tune_assets.lib.common.paths import REGISTRY_URL_ENV, DataPaths
from fine_tune_assets.lib.registry.backends import _placeholders, display, is_postgres
from fine_tune_assets.lib.registry.connection import connect, worker_registry
from fine_tune_assets_tests.factories import cli


def test_urls_are_shown_without_their_password():
    assert display("postgresql://ft:s3cret@db.example:5432/registry") == "postgresql://ft:***@db.example:5432/registry"
    assert display("postgresql://ft@db/registry") == "postgresql://ft@db/registry"
    assert is_postgres("postgresql+psycopg2://ft@db/r") and not is_postgres("/data/registry.duckdb")


def test_placeholders_become_psycopg2_ones_outside_strings():
    assert _placeholders("SELECT * FROM t WHERE a = ? AND b LIKE 'x%?' AND c = ?") == \
        "SELECT * FROM t WHERE a = %s AND b LIKE 'x%%?' AND c = %s"


def test_the_list_parameter_sql_runs_on_both(published):
    from fine_tune_assets.lib.registry.backends import in_list

    paths, version = published[:2]
    with connect(paths.registry, read_only=True) as con:
        for wanted, expected in (([version, "nope"], 1), ([], 0)):
            assert con.execute(f"SELECT count(*) FROM dataset_versions WHERE {in_list('version_id')}",
                               [wanted]).fetchone()[0] == expected


def test_a_read_only_connection_refuses_writes(published):
    paths = published[0]
    with connect(paths.registry, read_only=True) as con, pytest.raises(Exception, match=r"(?i)read.only"):
        con.execute("DELETE FROM ledger")


@pytest.mark.parametrize("url, message", [
    ("mysql://ft@db/registry", "is not a PostgreSQL URL"),
    ("postgresql://ft:s3cret@127.0.0.1:{port}/registry", "is unreachable"),
])
def test_a_wrong_registry_url_is_one_clear_line(tmp_path, monkeypatch, url, message):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(REGISTRY_URL_ENV, url.format(port=port))
    done = cli("datasets", "list", data_dir=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: registry ") and message in done.stderr
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_passwords_in_the_query_string_are_hidden_and_keyword_dsns_refused(tmp_path, monkeypatch):
    assert display("postgresql://ft@db/r?sslmode=require&password=s3cret") == \
        "postgresql://ft@db/r?sslmode=require&password=***"
    monkeypatch.setenv(REGISTRY_URL_ENV, "host=db dbname=registry password=s3cret")
    done = cli("datasets", "list", data_dir=tmp_path)
    assert done.returncode == 2 and "keyword settings" in done.stderr and "s3cret" not in done.stderr


def test_a_reader_sees_one_snapshot_while_writers_commit(published, registry_backend):
    """``verify`` reads the ledger, then the tables: a version committed in between must not look like a row
    inserted behind the ledger's back. On DuckDB the file lock keeps writers out while a reader is open."""
    if registry_backend is None:
        pytest.skip("DuckDB: a writer cannot open the file while this reader holds it")
    paths = published[0]
    from fine_tune_assets.lib.registry.ledger import append_event, transaction

    with connect(paths.registry, read_only=True) as reader:
        before = reader.execute("SELECT count(*) FROM ledger").fetchone()[0]
        with connect(paths.registry) as writer, transaction(writer):
            append_event(writer, "promotion", "x" * 64, {"note": "committed while the reader reads"})
        assert reader.execute("SELECT count(*) FROM ledger").fetchone()[0] == before
    with connect(paths.registry, read_only=True) as later:
        assert later.execute("SELECT count(*) FROM ledger").fetchone()[0] == before + 1


def test_a_worker_opens_its_assets_registry_or_refuses(tmp_path, monkeypatch, registry_backend):
    expected = display(DataPaths(tmp_path).registry)  # what the asset writes into the worker's request
    assert display(worker_registry(tmp_path, expected)) == expected
    if registry_backend:  # one URL whatever the data dir; a pod without the secret would open a local file
        assert display(worker_registry(tmp_path / "elsewhere", expected)) == expected
        monkeypatch.delenv(REGISTRY_URL_ENV)
    with pytest.raises(RuntimeError, match=r"worker's registry is .*registry\.duckdb, the asset's is .*"
                                           r"give the worker the same FINE_TUNE_REGISTRY_URL"):
        worker_registry(tmp_path / "elsewhere", expected)
