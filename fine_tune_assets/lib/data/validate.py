"""Content validation of scrubbed records: role order, whitespace-only turns, token length, duplicates.

Runs in two streaming passes so memory does not grow with the data: per-record checks (tokenized
in batches), written to a candidates file; then duplicate detection over the candidates in
record_id order (DuckDB sorts the file), writing accepted records and rejections.

The two expensive per-record results, the token count and the MinHash signature, come from the
validate cache (``content_cache.py``) when an earlier run computed them for the same scrubbed record,
so a run over the same data plus a few new records tokenizes and hashes only the new ones. The
duplicate pass itself always runs over every record: a new record can be a duplicate of an old one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ..common.parquet import ParquetRowWriter
from ..models.base_model import count_chat_tokens
from .chat_format import has_whitespace_only_turn, role_order_error
from .content_cache import ContentCache
from .dedup import DuplicateFinder, minhash_signature
from .records import Record, Rejection

STAGE = "validate"
SIGNATURE = "minhash_signature"  # a column of the candidates file only


@dataclass
class ValidationSettings:
    max_tokens: int = 4096
    near_duplicate_threshold: float = 0.85


@dataclass
class ValidationSummary:
    inputs: int = 0
    accepted: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    token_counts: list[int] = field(default_factory=list)
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


def validate_cache_schema() -> pa.Schema:
    return pa.schema([pa.field("key", pa.string()), pa.field("n_tokens", pa.int64()),
                      pa.field(SIGNATURE, pa.binary())])


def check_records(records: Iterable[Record], tokenizer, settings: ValidationSettings,
                  batch_size: int = 128) -> Iterator[Record | Rejection]:
    """Pass 1: structure and length of each record; adds ``n_tokens`` to those that pass.

    A record whose ``extra`` already holds ``n_tokens`` (from the validate cache) is not tokenized again.
    """
    for batch in _batched(records, batch_size):
        survivors = []
        for record in batch:
            problem = role_order_error(record.messages)
            if problem:
                yield Rejection.for_record(record, STAGE, "role_order", problem, scrubbed=True)
            elif has_whitespace_only_turn(record.messages):
                yield Rejection.for_record(record, STAGE, "whitespace_only_content",
                                           "a turn has only whitespace", scrubbed=True)
            else:
                survivors.append(record)
        todo = [r for r in survivors if r.extra.get("n_tokens") is None]
        counted = iter(count_chat_tokens(tokenizer, [r.messages for r in todo]) if todo else [])
        for record in survivors:
            n_tokens = record.extra.get("n_tokens")
            if n_tokens is None:
                n_tokens = next(counted)
            if n_tokens > settings.max_tokens:
                yield Rejection.for_record(record, STAGE, "over_token_limit",
                                           f"{n_tokens} tokens, limit {settings.max_tokens}", scrubbed=True)
            else:
                record.extra["n_tokens"] = n_tokens
                yield record


def _records_with_cached(con: duckdb.DuckDBPyConnection, in_path: Path, cached: str) -> Iterator[Record]:
    """The records of ``in_path`` in file order, each with the token count and signature the cache holds."""
    cursor = con.execute(
        f"SELECT i.*, c.n_tokens AS cached_n_tokens, c.{SIGNATURE} AS cached_signature "
        f"FROM read_parquet(?, file_row_number = true) AS i LEFT JOIN {cached} AS c ON c.key = i.record_id "
        "ORDER BY i.file_row_number", [str(in_path)])
    columns = [d[0] for d in cursor.description]
    while rows := cursor.fetchmany(1024):
        for values in rows:
            row = dict(zip(columns, values))
            del row["file_row_number"]
            n_tokens, signature = row.pop("cached_n_tokens"), row.pop("cached_signature")
            record = Record.from_row(row)
            if n_tokens is not None:
                record.extra.update({"n_tokens": n_tokens, SIGNATURE: signature})
            yield record


def validate_file(in_path: Path, out_path: Path, tokenizer, settings: ValidationSettings,
                  on_rejection: Callable[[Rejection], None], cache: ContentCache,
                  progress: Callable[[int], None] | None = None) -> ValidationSummary:
    """Validate the scrubbed records in ``in_path``; write accepted records to ``out_path``.

    ``cache`` holds token counts and signatures by record id; it must belong to the tokenizer and to
    the scrub output that ``in_path`` is (see ``stages.validate_cache``).
    """
    summary = ValidationSummary()
    schema = validated_schema(pq.read_schema(in_path))
    candidates_path = out_path.with_name(f".{out_path.name}.candidates")

    def reject(rejection: Rejection) -> None:
        summary.rejected_by_reason[rejection.reason] += 1
        on_rejection(rejection)

    with (ParquetRowWriter(candidates_path, schema.append(pa.field(SIGNATURE, pa.binary()))) as candidates,
          cache.reading() as cached, duckdb.connect() as con, cache.writer() as new_results):
        for item in check_records(_records_with_cached(con, in_path, cached), tokenizer, settings):
            summary.inputs += 1
            if progress and summary.inputs % 500 == 0:
                progress(summary.inputs)
            if isinstance(item, Rejection):
                reject(item)
                continue
            if item.extra.get(SIGNATURE) is None:
                item.extra[SIGNATURE] = minhash_signature(item.messages)
                new_results.write({"key": item.record_id, "n_tokens": item.extra["n_tokens"],
                                   SIGNATURE: item.extra[SIGNATURE]})
            candidates.write(item.to_row())
    summary.computed = new_results.rows_written
    cache.compact()

    finder = DuplicateFinder(threshold=settings.near_duplicate_threshold)
    with ParquetRowWriter(out_path, schema) as accepted, duckdb.connect() as con:
        cursor = con.execute("SELECT * FROM read_parquet(?) ORDER BY record_id, source_file, source_line",
                             [str(candidates_path)])
        columns = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(1024):
            for values in rows:
                record = Record.from_row(dict(zip(columns, values)))
                signature = record.extra.pop(SIGNATURE)
                duplicate = finder.check(record.record_id, record.messages, signature)
                if duplicate:
                    reject(Rejection.for_record(record, STAGE, duplicate.kind,
                                                f"duplicate of record {duplicate.kept_record_id}", scrubbed=True))
                    continue
                accepted.write(record.to_row())
                summary.accepted += 1
                summary.token_counts.append(record.extra["n_tokens"])
    candidates_path.unlink(missing_ok=True)
    return summary
