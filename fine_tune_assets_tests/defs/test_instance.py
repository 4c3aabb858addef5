"""The Dagster instance files: the embedded one (dagster.yaml, SQLite) and the shared deployment's
(deploy/dagster.postgres.yaml, PostgreSQL). Both validate against Dagster's own instance schema, a typo
fails that validation, and the PostgreSQL one really stores runs in a PostgreSQL server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config

from fine_tune_assets_tests.factories import REPO
from fine_tune_assets_tests.registry_backends import drop_database, fresh_database, postgres_server

INSTANCE_FILES = {"embedded": REPO / "dagster.yaml", "postgres": REPO / "deploy" / "dagster.postgres.yaml"}


def postgres_instance_env(url: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/dagster.postgres.yaml reads, for the database at ``url``."""
    parts = urlsplit(url)
    return {"DAGSTER_PG_HOST": parts.hostname, "DAGSTER_PG_PORT": str(parts.port),
            "DAGSTER_PG_USERNAME": parts.username, "DAGSTER_PG_PASSWORD": parts.password or "",
            "DAGSTER_PG_DB": parts.path.lstrip("/")}


def _home_with(tmp_path: Path, text: str) -> Path:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(text)
    return home


@pytest.fixture
def pg_env(monkeypatch):
    for name, value in postgres_instance_env("postgresql://u:p@localhost:5432/d").items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("name", INSTANCE_FILES)
def test_instance_files_validate_against_dagsters_schema(name, tmp_path, pg_env):
    config, _ = dagster_instance_config(str(_home_with(tmp_path, INSTANCE_FILES[name].read_text())))
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] == 60


@pytest.mark.parametrize("name, right, typo, path", [
    ("postgres", "default_limit:", "default_limt:", "root:concurrency:pools"),
    ("postgres", "hostname:", "hostnme:", "root:storage:postgres:postgres_db"),
    ("postgres", "free_slots_after_run_end_seconds:", "free_slot_after_run_end_seconds:", "root:run_monitoring"),
    ("embedded", "applyLimitPerUniqueValue:", "applyLimitPerUniqueValues:", "root:concurrency:runs"),
])
def test_a_typo_fails_validation_naming_its_path(name, right, typo, path, tmp_path, pg_env):
    text = INSTANCE_FILES[name].read_text()
    assert right in text
    with pytest.raises(DagsterInvalidConfigError) as caught:
        dagster_instance_config(str(_home_with(tmp_path, text.replace(right, typo, 1))))
    assert typo.rstrip(":") in str(caught.value) and path in str(caught.value)


@dg.asset(pool="accelerator")
def pooled_probe() -> int:
    return 1


def test_the_postgres_instance_stores_runs_in_postgresql(tmp_path, monkeypatch):
    import psycopg2

    server = postgres_server()
    url, name = fresh_database(server)
    try:
        for key, value in postgres_instance_env(url).items():
            monkeypatch.setenv(key, value)
        home = _home_with(tmp_path, INSTANCE_FILES["postgres"].read_text())
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            result = dg.materialize([pooled_probe], instance=instance)
            assert result.success
            assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        with psycopg2.connect(url) as con, con.cursor() as cur:  # really there, not in a local file
            cur.execute("SELECT status FROM runs WHERE run_id = %s", [result.run_id])
            assert cur.fetchone() == ("SUCCESS",)
            cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", [result.run_id])
            assert cur.fetchone()[0] > 5
        assert not any(home.rglob("*.db"))  # no SQLite storage beside it
    finally:
        drop_database(server, name)
