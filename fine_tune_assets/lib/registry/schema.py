"""Every table of the registry, created in one place, so that readers never check whether a table exists.

``connect`` applies it. A read-write connection creates what the file lacks (``CREATE TABLE IF NOT
EXISTS``), which also migrates a registry written by an older version of this tool. A read-only
connection must not write (an auditor may verify a copy, or a file they cannot write): for each table
the file lacks it creates an empty TEMP stand-in, visible to that connection only, so an old file reads
as "nothing of that kind yet". The in-memory registry used when no file exists gets the real tables.

``registry_tables`` records since when the file has each table (NULL: since before this record began,
i.e. created by an older version). ``verify`` needs it: every registry row newer than the ledger must
have a ledger event, and a table the file once had but lacks now was dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime

from . import backends

TABLES: dict[str, str] = {
    "dataset_versions": """
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
        run_id VARCHAR""",
    "dataset_sources": """
        version_id VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        source_sha256 VARCHAR NOT NULL,
        format VARCHAR,
        mapping VARCHAR,
        inputs BIGINT,
        accepted BIGINT,
        quarantined BIGINT,
        blank_lines BIGINT""",
    "dataset_records": """
        version_id VARCHAR NOT NULL,
        record_id VARCHAR NOT NULL,
        split VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        source_sha256 VARCHAR NOT NULL,
        source_line BIGINT NOT NULL,
        n_tokens BIGINT""",
    "quarantine": """
        version_id VARCHAR NOT NULL,
        record_id VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        detail VARCHAR,
        source_file VARCHAR,
        source_sha256 VARCHAR,
        source_line BIGINT""",
    "adapters": """
        adapter_id VARCHAR PRIMARY KEY,
        created_at TIMESTAMPTZ NOT NULL,
        path VARCHAR NOT NULL,
        dataset_version VARCHAR NOT NULL,
        base_model JSON NOT NULL,
        training_config JSON NOT NULL,
        training_config_hash VARCHAR NOT NULL,
        metrics JSON NOT NULL,
        lineage JSON NOT NULL,
        run_id VARCHAR""",
    "evaluations": """
        eval_id VARCHAR PRIMARY KEY,
        adapter_id VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        dataset_version VARCHAR,
        eval_set_sha256 VARCHAR NOT NULL,
        spec_hash VARCHAR NOT NULL,
        metrics JSON NOT NULL,
        gate JSON NOT NULL,
        report_path VARCHAR NOT NULL""",
    # adapter_id holds the stage after the transition, previous_adapter_id before it (audit.promotion)
    "adapter_stages": """
        seq BIGINT PRIMARY KEY,
        stage VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        adapter_id VARCHAR NOT NULL,
        previous_adapter_id VARCHAR,
        reason VARCHAR NOT NULL,
        user_name VARCHAR NOT NULL,
        forced BOOLEAN NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        event_seq BIGINT NOT NULL""",
    # the deny-list: a record id, or a raw source file (record_id NULL), per erasure request
    "erasures": """
        request_id VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        user_name VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        record_id VARCHAR,
        source_file VARCHAR,
        source_sha256 VARCHAR""",
    "adapter_flags": """
        adapter_id VARCHAR NOT NULL,
        flag VARCHAR NOT NULL,
        reason VARCHAR,
        request_id VARCHAR,
        created_at TIMESTAMPTZ NOT NULL""",
    # drift evaluations (monitoring.store): the decision, its numbers and the window's record ids
    "drift_evaluations": """
        evaluation_id VARCHAR PRIMARY KEY,
        created_at TIMESTAMPTZ NOT NULL,
        reference_adapter VARCHAR,
        reference_version VARCHAR NOT NULL,
        candidate VARCHAR NOT NULL,
        decision VARCHAR NOT NULL,
        n_reference BIGINT NOT NULL,
        n_window BIGINT NOT NULL,
        window_ids_sha256 VARCHAR NOT NULL,
        window_ids JSON NOT NULL,
        report JSON NOT NULL,
        policy_hash VARCHAR NOT NULL,
        code_version VARCHAR NOT NULL,
        retrain_requested_at TIMESTAMPTZ,
        event_seq BIGINT NOT NULL""",
    # the audit ledger (registry.ledger: how event_hash chains the rows)
    "ledger": """
        seq BIGINT PRIMARY KEY,
        event_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        subject VARCHAR NOT NULL,
        payload JSON NOT NULL,
        payload_sha256 VARCHAR NOT NULL,
        prev_hash VARCHAR NOT NULL,
        event_hash VARCHAR NOT NULL""",
    "registry_tables": """
        table_name VARCHAR PRIMARY KEY,
        since TIMESTAMPTZ""",
}


def stored_tables(con) -> set[str]:
    """The tables the database itself holds (not the read-only connection's TEMP stand-ins)."""
    return {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = "
                                      "current_database() AND table_schema = current_schema()").fetchall()}


def create_tables(con) -> None:
    """Create the tables the database lacks and note since when it has them. On DuckDB not one
    transaction: a crash in between leaves some tables created, and the next connection creates the
    rest. On PostgreSQL one transaction under the write lock, so concurrent first connections do not
    race to create the same table."""
    if stored_tables(con) >= TABLES.keys():
        return
    if backends.postgres(con):
        try:
            backends.begin(con)
            _create_missing(con, stored_tables(con))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    else:
        _create_missing(con, stored_tables(con))


def _create_missing(con, stored: set[str]) -> None:
    for name, columns in TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
    now = datetime.now(UTC)
    con.executemany("INSERT INTO registry_tables VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(name, None if name in stored else now) for name in TABLES])


def stand_in_for_missing(con) -> None:
    """Empty TEMP tables, for this read-only connection only, in place of those the file lacks."""
    for name in TABLES.keys() - stored_tables(con):
        con.execute(f"CREATE TEMP TABLE {name} ({TABLES[name]})")


def recorded_tables(con) -> dict[str, datetime | None]:
    """{table: since when the registry has it, or None when since before the record began}; empty for a
    file that no read-write connection of this version has opened yet."""
    return dict(con.execute("SELECT table_name, since FROM registry_tables").fetchall())
