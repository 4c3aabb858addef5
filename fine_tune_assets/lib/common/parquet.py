"""Streaming Parquet I/O with atomic publication (write to a temporary file, fsync, rename)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class ParquetRowWriter:
    """Buffers rows (dicts) and writes them in row groups, so memory stays flat as data grows."""

    def __init__(self, path: str | Path, schema: pa.Schema, batch_rows: int = 2048):
        self.path = Path(path)
        self.schema = schema
        self.batch_rows = batch_rows
        self.rows_written = 0
        self._buffer: list[dict] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._writer = pq.ParquetWriter(self._tmp, schema)

    def write(self, row: dict) -> None:
        self._buffer.append(row)
        self.rows_written += 1
        if len(self._buffer) >= self.batch_rows:
            self._flush()

    def write_all(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self.write(row)

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema))
            self._buffer = []

    def close(self) -> Path:
        self._flush()
        self._writer.close()
        fsync_path(self._tmp)
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ParquetRowWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def iter_rows(path: str | Path, columns: list[str] | None = None, batch_rows: int = 2048) -> Iterator[dict]:
    """Rows of a Parquet file as dicts, one row group batch at a time."""
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
        yield from batch.to_pylist()


def fsync_path(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
