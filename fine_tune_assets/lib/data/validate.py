"""Content validation of scrubbed records: role order, whitespace-only turns, token length, duplicates.

Runs in two streaming passes so memory does not grow with the data: per-record checks (tokenized
in batches), written to a candidates file; then duplicate detection over the candidates in
record_id order (DuckDB sorts the file), writing accepted records and rejections.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ..common.parquet import ParquetRowWriter, iter_rows
from ..models.base_model import count_chat_tokens
from .chat_format import has_whitespace_only_turn, role_order_error
from .dedup import DuplicateFinder
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
    token_counts: list[int] = field(default_factory=list)

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
    """Pass 1: structure and length of each record; adds ``n_tokens`` to those that pass."""
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
        counts = count_chat_tokens(tokenizer, [r.messages for r in survivors]) if survivors else []
        for record, n_tokens in zip(survivors, counts):
            if n_tokens > settings.max_tokens:
                yield Rejection.for_record(record, STAGE, "over_token_limit",
                                           f"{n_tokens} tokens, limit {settings.max_tokens}", scrubbed=True)
            else:
                record.extra["n_tokens"] = n_tokens
                yield record


def validate_file(in_path: Path, out_path: Path, tokenizer, settings: ValidationSettings,
                  on_rejection: Callable[[Rejection], None],
                  progress: Callable[[int], None] | None = None) -> ValidationSummary:
    """Validate the scrubbed records in ``in_path``; write accepted records to ``out_path``."""
    summary = ValidationSummary()
    schema = validated_schema(pq.read_schema(in_path))
    candidates_path = out_path.with_name(f".{out_path.name}.candidates")

    def reject(rejection: Rejection) -> None:
        summary.rejected_by_reason[rejection.reason] += 1
        on_rejection(rejection)

    with ParquetRowWriter(candidates_path, schema) as candidates:
        for item in check_records(map(Record.from_row, iter_rows(in_path)), tokenizer, settings):
            summary.inputs += 1
            if progress and summary.inputs % 500 == 0:
                progress(summary.inputs)
            if isinstance(item, Rejection):
                reject(item)
            else:
                candidates.write(item.to_row())

    finder = DuplicateFinder(threshold=settings.near_duplicate_threshold)
    with ParquetRowWriter(out_path, schema) as accepted, duckdb.connect() as con:
        cursor = con.execute("SELECT * FROM read_parquet(?) ORDER BY record_id, source_file, source_line",
                             [str(candidates_path)])
        columns = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(1024):
            for values in rows:
                record = Record.from_row(dict(zip(columns, values)))
                duplicate = finder.check(record.record_id, record.messages)
                if duplicate:
                    reject(Rejection.for_record(record, STAGE, duplicate.kind,
                                                f"duplicate of record {duplicate.kept_record_id}", scrubbed=True))
                    continue
                accepted.write(record.to_row())
                summary.accepted += 1
                summary.token_counts.append(record.extra["n_tokens"])
    candidates_path.unlink(missing_ok=True)
    return summary
