"""Ingestion: every file under raw/ becomes normalized records or quarantine entries.

Nothing is dropped silently: a line that is not JSON, not UTF-8, too long, or not a chat example
becomes a ``Rejection`` with a reason code, the file and the line. Blank lines are not records and
are only counted. Files are read as streams, one line or one row group at a time.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from ..common.hashing import record_id_for, sha256_bytes, sha256_file
from ..common.jsonl import iter_json_lines
from .chat_format import PIPELINE_ROLES, canonical_messages, format_errors, has_invalid_weight
from .mapping import Mapping, MissingValue, mapping_for
from .records import Provenance, Record, Rejection

JSONL_SUFFIXES = (".jsonl", ".ndjson")
TABULAR_SUFFIXES = (".csv", ".parquet")
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024


@dataclass
class FileReport:
    """What one raw file contributed: the accounting an auditor checks (input = accepted + quarantined)."""

    path: str
    sha256: str
    format: str
    mapping: str | None = None
    records: int = 0
    rejected: int = 0
    blank_lines: int = 0
    reasons: Counter = field(default_factory=Counter)

    @property
    def inputs(self) -> int:
        return self.records + self.rejected

    def to_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "format": self.format, "mapping": self.mapping,
                "inputs": self.inputs, "records": self.records, "rejected": self.rejected,
                "blank_lines": self.blank_lines, "rejected_by_reason": dict(sorted(self.reasons.items()))}


def list_raw_files(raw_dir: str | Path) -> list[Path]:
    """Every visible file under raw/, in a stable order."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        return []
    return sorted(p for p in raw_dir.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(raw_dir).parts))


def ingest_file(path: Path, raw_dir: Path, mappings: list[Mapping], report: FileReport,
                max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[Record | Rejection]:
    """Records and rejections of one file; updates ``report`` as it goes."""
    relative = path.relative_to(raw_dir).as_posix()
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        items = _read_jsonl(path, relative, report, max_line_bytes)
    elif suffix in TABULAR_SUFFIXES:
        mapping = mapping_for(relative, mappings)
        report.mapping = mapping.name if mapping else None
        items = _read_tabular(path, relative, report, mapping)
    else:
        items = iter([_rejection(report, 0, "unsupported_file_type",
                                 f"{suffix or 'no extension'}: expected .jsonl, .csv or .parquet", relative)])
    for item in items:
        if isinstance(item, Record):
            report.records += 1
        else:
            report.rejected += 1
            report.reasons[item.reason] += 1
        yield item


def ingest_directory(raw_dir: str | Path, mappings: list[Mapping], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                     ) -> tuple[list[FileReport], Iterator[Record | Rejection]]:
    """All files under raw/. The reports fill in while the returned iterator is consumed."""
    raw_dir = Path(raw_dir)
    files = list_raw_files(raw_dir)
    reports = [FileReport(p.relative_to(raw_dir).as_posix(), sha256_file(p), _format_of(p)) for p in files]

    def stream() -> Iterator[Record | Rejection]:
        for path, report in zip(files, reports):
            yield from ingest_file(path, raw_dir, mappings, report, max_line_bytes)

    return reports, stream()


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    return suffix.lstrip(".") if suffix in TABULAR_SUFFIXES else "unknown"


def _provenance(report: FileReport, line: int) -> Provenance:
    return Provenance(report.path, report.sha256, line, report.format)


def _rejection(report: FileReport, line: int, reason: str, detail: str, key: str) -> Rejection:
    return Rejection(sha256_bytes(f"{report.sha256}:{line}:{key}".encode()), "ingest", reason, detail,
                     _provenance(report, line))


def _example_to_item(example, report: FileReport, line: int, raw_key: bytes, mapping: str | None = None):
    errors = format_errors(example, roles=PIPELINE_ROLES)
    if errors:
        detail = "format errors: " + ", ".join(errors)
        return Rejection(sha256_bytes(raw_key), "ingest", errors[0], detail, _provenance(report, line))
    if has_invalid_weight(example["messages"]):
        return Rejection(sha256_bytes(raw_key), "ingest", "invalid_weight", "a message's weight is not 0 or 1",
                         _provenance(report, line))
    messages = canonical_messages(example["messages"])
    return Record(record_id_for(messages), messages, _provenance(report, line), mapping)


def _read_jsonl(path: Path, relative: str, report: FileReport, max_line_bytes: int):
    def blank(_line: int) -> None:
        report.blank_lines += 1

    for item in iter_json_lines(path, max_line_bytes, on_blank=blank):
        if item.error:
            yield Rejection(sha256_bytes(item.raw), "ingest", item.error, item.detail,
                            _provenance(report, item.line))
        else:
            yield _example_to_item(item.value, report, item.line, item.raw)


def _read_tabular(path: Path, relative: str, report: FileReport, mapping: Mapping | None):
    try:
        rows = _csv_rows(path) if report.format == "csv" else _parquet_rows(path)
        header = next(rows)
    except Exception as exc:  # a corrupt file must not crash the run: one quarantine entry names it
        yield _rejection(report, 0, "unreadable_file", f"{type(exc).__name__}: cannot read {report.format}", relative)
        return
    missing = mapping.required_columns() - set(header) if mapping else set()
    line = 0
    try:
        for line, row, problem in rows:
            if row is None:
                report.blank_lines += 1
                continue
            yield from _tabular_item(report, relative, mapping, missing, line, row, problem)
    except Exception as exc:  # corrupt mid-file: name the place; the rest of the file is not readable
        yield _rejection(report, line + 1, "unreadable_file",
                         f"{type(exc).__name__}: cannot read {report.format} after line/row {line}", relative)


def _tabular_item(report: FileReport, relative: str, mapping: Mapping | None, missing: set[str],
                  line: int, row: dict, problem: tuple[str, str] | None):
    """One mapped row: a record, or the reason it cannot be one."""
    key = f"row:{line}"
    if mapping is None:
        yield _rejection(report, line, "no_mapping", f"no mapping under mappings/ matches {relative}", key)
    elif missing:
        yield _rejection(report, line, "mapping_column_missing",
                         f"mapping {mapping.name!r} needs columns absent from the file: {sorted(missing)}", key)
    elif problem:
        yield _rejection(report, line, problem[0], problem[1], key)
    else:
        try:
            messages = mapping.to_messages(row)
        except MissingValue as exc:
            yield _rejection(report, line, "missing_content", f"mapping {mapping.name!r}: {exc}", key)
            return
        yield _example_to_item({"messages": messages}, report, line, f"{report.sha256}:{key}".encode(),
                               mapping.name)


def _csv_rows(path: Path):
    """Yields the header, then (start line, row dict, problem) per data row."""
    handle = open(path, encoding="utf-8", errors="surrogateescape", newline="")
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            header = []
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        yield header
        line_end = reader.line_num
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a field over the csv module's size limit: this row only, the reader goes on
                start, line_end = line_end + 1, reader.line_num
                yield start, {}, ("malformed_row", f"unreadable CSV row: {exc}")
                continue
            start, line_end = line_end + 1, reader.line_num
            if not any(f.strip() for f in fields):
                yield start, None, None  # a blank line is not a record
                continue
            problem = None
            if len(fields) != len(header):
                problem = ("malformed_row", f"expected {len(header)} fields, got {len(fields)}")
            elif any(_has_surrogates(f) for f in fields):
                problem = ("invalid_utf8", "row contains bytes that are not UTF-8")
            yield start, dict(zip(header, fields)), problem


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _parquet_rows(path: Path):
    parquet = pq.ParquetFile(path)
    yield parquet.schema_arrow.names
    row_no = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            row_no += 1
            yield row_no, row, None
