"""Copy a registry to another backend, ledger included: a DuckDB file to PostgreSQL when a team starts to
share the deployment (or PostgreSQL to a DuckDB file, as a portable copy).

Rows are copied as they are (ids, timestamps, the ledger's payload text and hashes), so the copy's ledger
head is the source's and its chain verifies; nothing is re-derived. The target must hold no rows yet:
merging two registries would interleave two hash chains. All of it is one transaction on the target,
so a failed copy (or one whose ledger does not verify) leaves it empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import backends
from .backends import Target, display
from .connection import connect
from .ledger import read_events, transaction, verify_chain
from .schema import TABLES

BATCH = 5000


class MigrationError(RuntimeError):
    """The copy cannot start (target not empty, source empty) or did not verify."""


@dataclass
class MigrationResult:
    source: str
    target: str
    rows: dict[str, int] = field(default_factory=dict)
    ledger_events: int = 0
    head: str | None = None  # "seq N <event_hash>" on both sides

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "rows": self.rows,
                "ledger_events": self.ledger_events, "head": self.head}


def _head(con) -> str | None:
    row = con.execute("SELECT seq, event_hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    return f"seq {row[0]} {row[1]}" if row else None


def migrate(source: Target, target: Target) -> MigrationResult:
    """Copy every table of ``source`` into the empty registry ``target`` and check the copy's ledger."""
    result = MigrationResult(display(source), display(target))
    if backends.is_postgres(source) == backends.is_postgres(target) and str(source) == str(target):
        raise MigrationError("source and target are the same registry")
    with connect(source, read_only=True) as src, connect(target) as dst:
        occupied = [t for t in TABLES if t != "registry_tables"
                    and dst.execute(f"SELECT count(*) FROM {t}").fetchone()[0]]
        if occupied:
            raise MigrationError(f"target registry {display(target)} is not empty (rows in {', '.join(occupied)}): "
                                 "a copy goes into an empty registry only")
        source_head = _head(src)
        with transaction(dst):  # verified before COMMIT: a copy that does not verify leaves the target empty
            dst.execute("DELETE FROM registry_tables")  # the source's own record of since when it has each table
            for table in TABLES:
                columns = [d[0] for d in dst.execute(f"SELECT * FROM {table} LIMIT 0").description]
                cursor = src.execute(f"SELECT {', '.join(columns)} FROM {table}")
                copied = 0
                while rows := cursor.fetchmany(BATCH):
                    backends.insert_rows(dst, table, columns, rows)
                    copied += len(rows)
                result.rows[table] = copied
            events = read_events(dst)
            problems = verify_chain(dst, events)
            result.ledger_events, result.head = len(events), _head(dst)
            if problems or result.head != source_head:
                raise MigrationError(f"the copy does not verify (head {result.head}, source {source_head}), so "
                                     f"nothing was written: {'; '.join(problems[:3])}; run `fine-tune-assets "
                                     "verify` on the source")
    return result
