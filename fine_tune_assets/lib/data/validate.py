"""Content validation of scrubbed records: role order, whitespace-only turns, token length, duplicates.

Two passes, neither holding the data in memory. Pass 1 checks each record and writes the survivors,
with their token count and duplicate fingerprint (hashes and MinHash signature), to a candidates
folder. Pass 2 feeds the candidates' fingerprints in record_id order to the duplicate finder, then
DuckDB writes the kept records.

The two expensive per-record results, the token count and the fingerprint, come from the validate
cache (``content_cache.py``) when an earlier run computed them for the same scrubbed record, so a run
over the same data plus a few new records tokenizes and hashes only the new ones. The duplicate pass
always runs over every record: a new record can be a duplicate of an old one.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ..common.parquet import ParquetRowWriter, fsync_path
from ..models.base_model import count_chat_tokens
from .chat_format import has_whitespace_only_turn, role_order_error
from .content_cache import ContentCache, sql_path
from .dedup import DuplicateFinder, Fingerprint, fingerprint
from .records import Record, Rejection

STAGE = "validate"


@dataclass
class ValidationSettings:
    max_tokens: int = 4096
    near_duplicate_threshold: float = 0.85


@dataclass
class ValidationSummary:
    inputs: int = 0
    accepted: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    computed: int = 0  # records tokenized and hashed in this run (the others came from the cache)

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


def validated_schema(input_schema: pa.Schema) -> pa.Schema:
    return input_schema.append(pa.field("n_tokens", pa.int64()))


def _batched(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_records(records: Iterable[Record], tokenizer, settings: ValidationSettings,
                  batch_size: int = 128) -> Iterator[Record | Rejection]:
    """Pass 1: structure and length of each record, in input order; adds ``n_tokens`` to those that pass.

    A record whose ``extra`` already holds ``n_tokens`` (from the validate cache) is not tokenized again.
    Records are tokenized in batches, but each one's outcome comes out in its input position, so what
    the cache spared does not reorder the quarantine.
    """
    for batch in _batched(records, batch_size):
        outcomes: list[Record | Rejection | None] = []
        for record in batch:
            problem = role_order_error(record.messages)
            if problem:
                outcomes.append(Rejection.for_record(record, STAGE, "role_order", problem, scrubbed=True))
            elif has_whitespace_only_turn(record.messages):
                outcomes.append(Rejection.for_record(record, STAGE, "whitespace_only_content",
                                                     "a turn has only whitespace", scrubbed=True))
            else:
                outcomes.append(None)
        todo = [r for r, o in zip(batch, outcomes) if o is None and r.extra.get("n_tokens") is None]
        counted = iter(count_chat_tokens(tokenizer, [r.messages for r in todo]) if todo else [])
        for record, outcome in zip(batch, outcomes):
            if outcome is not None:
                yield outcome
                continue
            n_tokens = record.extra.get("n_tokens")
            if n_tokens is None:
                n_tokens = next(counted)
            if n_tokens > settings.max_tokens:
                yield Rejection.for_record(record, STAGE, "over_token_limit",
                                           f"{n_tokens} tokens, limit {settings.max_tokens}", scrubbed=True)
            else:
                record.extra["n_tokens"] = n_tokens
                yield record


def validate_cache_schema() -> pa.Schema:
    """Per record id: its token count and duplicate fingerprint (``dedup.Fingerprint``)."""
    return pa.schema([pa.field("key", pa.string()), pa.field("n_tokens", pa.int64()),
                      pa.field("content_sha256", pa.string()), pa.field("normal_sha256", pa.string()),
                      pa.field("signature", pa.binary())])


def validate_file(in_path: Path, out_path: Path, tokenizer, settings: ValidationSettings,
                  on_rejection: Callable[[Rejection], None], cache: ContentCache,
                  progress: Callable[[int], None] | None = None) -> ValidationSummary:
    """Validate the scrubbed records in ``in_path``; write accepted records to ``out_path``.

    ``cache`` holds token counts and fingerprints by record id; it must belong to the tokenizer and to
    the scrub output that ``in_path`` is (see ``stages.validate_cache``). A record it holds passed the
    structure checks before (they depend on its content alone), so DuckDB copies it into the candidates
    without Python touching it; only the others are parsed, checked, tokenized and fingerprinted here.
    """
    summary = ValidationSummary()
    schema = validated_schema(pq.read_schema(in_path))
    work = out_path.parent / f".{out_path.name}.candidates"
    work.mkdir()
    columns = ", ".join(f'i."{name}"' for name in pq.read_schema(in_path).names)

    def reject(rejection: Rejection) -> None:
        summary.rejected_by_reason[rejection.reason] += 1
        on_rejection(rejection)

    with cache.reading() as cached, duckdb.connect() as con:
        con.execute(f"CREATE TEMP VIEW joined AS SELECT i.*, c.n_tokens AS cached_n_tokens, "
                    f"c.content_sha256, c.normal_sha256, c.signature "
                    f"FROM read_parquet({sql_path(in_path)}, file_row_number = true) AS i "
                    f"LEFT JOIN {cached} AS c ON c.key = i.record_id")
        summary.inputs = con.execute("SELECT count(*) FROM joined").fetchone()[0]
        known = f"cached_n_tokens IS NOT NULL AND cached_n_tokens <= {int(settings.max_tokens)}"
        con.execute(f"COPY (SELECT {columns}, cached_n_tokens AS n_tokens, content_sha256, normal_sha256, signature "
                    f"FROM joined AS i WHERE {known}) TO {sql_path(work / 'cached.parquet')} (FORMAT parquet)")
        cursor = con.execute(f"SELECT * EXCLUDE (file_row_number, content_sha256, normal_sha256, signature) "
                             f"FROM joined WHERE NOT ({known}) OR cached_n_tokens IS NULL ORDER BY file_row_number")
        names = [d[0] for d in cursor.description]

        def records():
            while rows := cursor.fetchmany(1024):
                for values in rows:
                    row = dict(zip(names, values))
                    n_tokens = row.pop("cached_n_tokens")
                    record = Record.from_row(row)
                    if n_tokens is not None:  # known, over a lowered limit: rejected below
                        record.extra["n_tokens"] = n_tokens
                    yield record

        candidates_schema = schema.append(pa.field("content_sha256", pa.string())).append(
            pa.field("normal_sha256", pa.string())).append(pa.field("signature", pa.binary()))
        with ParquetRowWriter(work / "new.parquet", candidates_schema) as candidates, cache.writer() as new_results:
            for done, item in enumerate(check_records(records(), tokenizer, settings), 1):
                if progress and done % 500 == 0:
                    progress(done)
                if isinstance(item, Rejection):
                    reject(item)
                    continue
                found = fingerprint(item.messages)
                new_results.write({"key": item.record_id, "n_tokens": item.extra["n_tokens"],
                                   "content_sha256": found.content_sha256, "normal_sha256": found.normal_sha256,
                                   "signature": found.signature})
                candidates.write({**item.to_row(), "content_sha256": found.content_sha256,
                                  "normal_sha256": found.normal_sha256, "signature": found.signature})
        summary.computed = new_results.rows_written
    cache.compact()
    _drop_duplicates(work, out_path, schema, settings, reject, summary)
    shutil.rmtree(work)
    return summary


def _drop_duplicates(work: Path, out_path: Path, schema: pa.Schema, settings: ValidationSettings,
                     reject: Callable[[Rejection], None], summary: ValidationSummary) -> None:
    """Pass 2: every candidate in record_id order through the duplicate finder (fingerprints only), then
    DuckDB writes the kept ones. The rejected ones are quarantined with their (scrubbed) content."""
    finder = DuplicateFinder(threshold=settings.near_duplicate_threshold)
    order = "ORDER BY record_id, source_file, source_line"
    with duckdb.connect() as con:
        con.execute(f"CREATE TEMP VIEW candidates AS SELECT * FROM read_parquet({sql_path(work / '*.parquet')}, "
                    f"filename = true, file_row_number = true)")
        cursor = con.execute(f"SELECT filename, file_row_number, record_id, content_sha256, normal_sha256, signature "
                             f"FROM candidates {order}")
        duplicates: list[tuple[str, int, str, str]] = []
        while rows := cursor.fetchmany(4096):
            for filename, row_number, record_id, content_sha256, normal_sha256, signature in rows:
                duplicate = finder.check(record_id, known=Fingerprint(content_sha256, normal_sha256, signature))
                if duplicate:
                    duplicates.append((filename, row_number, duplicate.kind, duplicate.kept_record_id))
        con.execute("CREATE TEMP TABLE duplicates (filename VARCHAR, file_row_number BIGINT, kind VARCHAR, "
                    "kept VARCHAR)")
        if duplicates:  # DuckDB refuses an empty executemany
            con.executemany("INSERT INTO duplicates VALUES (?, ?, ?, ?)", duplicates)
        cursor = con.execute(f"SELECT c.* EXCLUDE (filename, file_row_number, n_tokens, content_sha256, normal_sha256, "
                             f"signature), d.kind, d.kept FROM candidates AS c JOIN duplicates AS d "
                             f"USING (filename, file_row_number) {order}")
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(1024):
            for values in rows:
                row = dict(zip(names, values))
                kind, kept = row.pop("kind"), row.pop("kept")
                reject(Rejection.for_record(Record.from_row(row), STAGE, kind, f"duplicate of record {kept}",
                                            scrubbed=True))
        keep = ", ".join(f'c."{name}"' for name in schema.names)
        con.execute(f"COPY (SELECT {keep} FROM candidates AS c ANTI JOIN duplicates AS d "
                    f"USING (filename, file_row_number) {order}) TO {sql_path(out_path)} (FORMAT parquet)")
        summary.accepted = con.execute(f"SELECT count(*) FROM read_parquet({sql_path(out_path)})").fetchone()[0]
    fsync_path(out_path)
