"""``registry migrate``: a DuckDB registry copied into PostgreSQL (and PostgreSQL into a DuckDB file), ledger
included; ``verify`` passes on the copy with the same ledger head, and a bad copy writes nothing."""

from __future__ import annotations

import json

from fine_tune_assets.lib.audit.promotion import promote
from fine_tune_assets.lib.common.paths import REGISTRY_URL_ENV
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets_tests.factories import cli
from fine_tune_assets_tests.registry_backends import drop_database, fresh_database, postgres_server


def _head(registry) -> str:
    with connect(registry, read_only=True) as con:
        seq, digest = con.execute("SELECT seq, event_hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    return f"seq {seq} {digest}"


def _verify(paths, registry, monkeypatch) -> dict:
    if isinstance(registry, str):
        monkeypatch.setenv(REGISTRY_URL_ENV, registry)
    else:
        monkeypatch.delenv(REGISTRY_URL_ENV, raising=False)
    done = cli("verify", "--json", data_dir=paths.root)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_migrate_copies_every_row_and_the_ledger(published, registry_backend, monkeypatch):
    paths, _, adapter_id, _ = published
    promote(paths.registry, adapter_id, "staging", "try it", user="alice")
    source = paths.registry
    head = _head(source)
    cleanup = None
    if registry_backend is None:  # the embedded DuckDB file into PostgreSQL
        server = postgres_server()
        target, name = fresh_database(server)
        cleanup = lambda: drop_database(server, name)  # noqa: E731
    else:  # PostgreSQL into a DuckDB file (a portable copy), the data directory's own file
        target = paths.registry_file
    try:
        done = cli("registry", "migrate", "--from", str(source), "--to", str(target), "--json", data_dir=paths.root)
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(done.stdout)
        assert result["head"] == head and result["ledger_events"] == 4
        assert result["rows"]["adapters"] == 1 and result["rows"]["adapter_stages"] == 1
        assert result["rows"]["dataset_records"] > 0
        copy = _verify(paths, str(target) if registry_backend is None else target, monkeypatch)
        assert copy["ok"] and copy["head"] == _verify(paths, source, monkeypatch)["head"]
        assert f"seq {copy['head']['seq']} {copy['head']['event_hash']}" == head
        assert _head(target) == head
        with connect(target, read_only=True) as con:
            assert con.execute("SELECT stage FROM adapter_stages").fetchall() == [("staging",)]

        again = cli("registry", "migrate", "--from", str(source), "--to", str(target), data_dir=paths.root)
        assert again.returncode == 2 and "is not empty" in again.stderr and "Traceback" not in again.stderr
    finally:
        if cleanup:
            cleanup()


def test_a_source_whose_ledger_does_not_verify_is_not_copied(published, registry_backend, tmp_path):
    paths = published[0]
    with connect(paths.registry) as con:
        con.execute("DELETE FROM ledger WHERE seq = 2")
    target = tmp_path / "copy.duckdb"
    done = cli("registry", "migrate", "--from", str(paths.registry), "--to", str(target), data_dir=paths.root)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "does not verify" in done.stderr and "seq 2 missing" in done.stderr
    with connect(target, read_only=True) as con:  # rolled back: the target holds nothing
        assert con.execute("SELECT count(*) FROM ledger").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM adapters").fetchone()[0] == 0
