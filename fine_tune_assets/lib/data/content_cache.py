"""Per-record results of an expensive, deterministic computation, kept between runs.

Why: a stage's data version changes as soon as one raw file changes, and without this every record
would be scrubbed, tokenized and scanned again. Scrubbing a conversation depends on nothing but its
messages and the policy (checked: the same output whatever its batch), so the result is keyed by the
record's content and the cache folder by everything else that decides it (``identity``: policy hash
with its library and model versions, pseudonym-key fingerprint, code version). Another identity is
another folder, so a policy change starts cold and never reads a stale row.

Layout: ``staging/cache/<name>/<sha of identity>/`` holds ``identity.json`` and ``part-*.parquet``
files with a ``key`` column (``compact`` merges them when they grow many). A writer commits a part
every ``rows_per_part`` rows (write, fsync, rename), so a run that dies keeps what it finished and the
next run resumes from there. Consumers join ``reading()``'s table in DuckDB: memory stays bounded
whatever the cache's size.

Readers hold a shared lock on ``.lock`` while they use the parts; ``compact`` and ``purge`` (erasure)
rewrite parts under the exclusive lock, so no reader sees a part vanish.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ..common.hashing import sha256_json
from ..common.parquet import ParquetRowWriter, atomic_write_bytes, fsync_path

CACHE_DIR = "cache"
ROWS_PER_PART = 2000
MAX_PARTS = 16  # beyond this a writer merges the parts into one when it closes


def sql_path(path: Path) -> str:
    """A file path as a DuckDB string literal."""
    return "'" + str(path).replace("'", "''") + "'"


class ContentCache:
    """``key`` -> result rows of one computation under one identity (see module docstring)."""

    def __init__(self, staging: Path, name: str, identity: dict, schema: pa.Schema):
        if schema.names[0] != "key":
            raise ValueError("a cache schema starts with the string column 'key'")
        self.name, self.identity, self.schema = name, identity, schema
        self.folder = Path(staging) / CACHE_DIR / name / sha256_json(identity)[:24]
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.folder / "identity.json").exists():
            atomic_write_bytes(self.folder / "identity.json", json.dumps(identity, indent=2).encode())

    @classmethod
    def existing(cls, folder: Path) -> ContentCache:
        """A cache folder as found on disk (erasure purges every one, whatever computation it holds)."""
        identity = json.loads((folder / "identity.json").read_text())
        parts = sorted(folder.glob("part-*.parquet"))
        return cls(folder.parents[2], folder.parent.name, identity, pq.read_schema(parts[0]))

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet"))

    def rows(self) -> int:
        return sum(pq.read_metadata(p).num_rows for p in self.parts())

    @contextmanager
    def reading(self) -> Iterator[str]:
        """A DuckDB table expression over the cached rows (one row per key), valid inside the block."""
        with self._lock(fcntl.LOCK_SH):
            yield self._source()

    def _source(self) -> str:
        parts = self.parts()
        if not parts:
            empty = self.folder / "part-empty.parquet"
            if not empty.exists():
                pq.write_table(self.schema.empty_table(), empty)
            parts = [empty]
        files = ", ".join(sql_path(p) for p in parts)
        # two runs at once may have cached the same key; the values are equal (deterministic), keep one
        return f"(SELECT DISTINCT ON (key) * FROM read_parquet([{files}]))"

    @contextmanager
    def writer(self, rows_per_part: int | None = None) -> Iterator[PartWriter]:
        """Add rows; each full part is committed at once, the last one when the block ends without error."""
        writer = PartWriter(self, rows_per_part or ROWS_PER_PART)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.close()

    def compact(self, max_parts: int = MAX_PARTS) -> None:
        """Merge the parts into one once there are more than ``max_parts`` (takes the exclusive lock, so
        never call it inside ``reading``)."""
        if len(self.parts()) <= max_parts:
            return
        with self._lock(fcntl.LOCK_EX):
            old = self.parts()
            if len(old) <= max_parts:
                return
            merged = self.folder / f".merge-{uuid.uuid4().hex}.parquet"
            with duckdb.connect() as con:
                con.execute(f"COPY (SELECT * FROM {self._source()} ORDER BY key) TO {sql_path(merged)} "
                            "(FORMAT parquet)")
            fsync_path(merged)
            os.replace(merged, self.folder / f"part-{uuid.uuid4().hex}.parquet")
            for part in old:
                part.unlink()

    def purge(self, keys: Iterable[str]) -> int:
        """Drop the rows of ``keys`` from every part (an erasure); returns how many rows went."""
        keys = sorted(set(keys))
        if not keys:
            return 0
        removed = 0
        with self._lock(fcntl.LOCK_EX), duckdb.connect() as con:
            for part in self.parts():
                hit = con.execute("SELECT count(*) FROM read_parquet(?) WHERE list_contains(?, key)",
                                  [str(part), keys]).fetchone()[0]
                if not hit:
                    continue
                kept = self.folder / f".purge-{uuid.uuid4().hex}.parquet"
                con.execute(f"COPY (SELECT * FROM read_parquet({sql_path(part)}) WHERE NOT list_contains(?, key)) "
                            f"TO {sql_path(kept)} (FORMAT parquet)", [keys])
                fsync_path(kept)
                os.replace(kept, part)
                removed += hit
        return removed

    @contextmanager
    def _lock(self, mode: int) -> Iterator[None]:
        with open(self.folder / ".lock", "a+b") as handle:
            fcntl.flock(handle, mode)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class PartWriter:
    """Buffers result rows and commits them as parts (``ContentCache.writer``)."""

    def __init__(self, cache: ContentCache, rows_per_part: int):
        self.cache, self.rows_per_part = cache, max(1, rows_per_part)
        self.rows_written = 0
        self._current: ParquetRowWriter | None = None

    def write(self, row: dict) -> None:
        if self._current is None:
            self._current = ParquetRowWriter(self.cache.folder / f"part-{uuid.uuid4().hex}.parquet", self.cache.schema)
        self._current.write(row)
        self.rows_written += 1
        if self._current.rows_written >= self.rows_per_part:
            self.close()

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None

    def abort(self) -> None:
        if self._current is not None:
            self._current.abort()
            self._current = None


def purge_caches(staging: Path, keys: Iterable[str]) -> int:
    """Drop ``keys`` from every cache under ``staging`` (whatever its computation or identity)."""
    keys = list(keys)
    removed = 0
    root = Path(staging) / CACHE_DIR
    for identity in sorted(root.glob("*/*/identity.json")) if root.is_dir() else []:
        folder = identity.parent
        parts = sorted(folder.glob("part-*.parquet"))
        if not parts:
            continue
        removed += ContentCache.existing(folder).purge(keys)
    return removed


def remove_cache(staging: Path) -> None:
    shutil.rmtree(Path(staging) / CACHE_DIR, ignore_errors=True)
