"""The data stages as plain functions: raw files -> normalized -> scrubbed -> validated.

Each stage reads its input from a Parquet file, writes its output and its quarantine into a
content-addressed staging folder ``staging/<stage>/<data_version>/`` and returns a ``StageOutput``.
The data version is computed from the inputs' identities (file hashes, policy hash, settings, code
version) *before* any work, so re-running a stage on unchanged input reuses its output. The Dagster
assets are thin wrappers around these functions; tests and benchmarks call them directly.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..common.hashing import sha256_json
from ..common.parquet import ParquetRowWriter, atomic_write_bytes
from ..common.paths import DataPaths
from ..common.versions import installed_version
from .content_cache import ContentCache
from .ingest import DEFAULT_MAX_LINE_BYTES, ingest_directory
from .mapping import load_mappings
from .records import QUARANTINE_SCHEMA, RECORD_SCHEMA, Record, Rejection
from .validate import ValidationSettings, validate_file

log = logging.getLogger(__name__)

INGEST_CODE_VERSION = "ingest-1"
SCRUB_CODE_VERSION = "scrub-1"
VALIDATE_CODE_VERSION = "validate-1"
DEFAULT_MAX_RECORD_CHARS = 200_000

Progress = Callable[[str], None]


@dataclass
class StageOutput:
    stage: str
    data_version: str
    folder: Path
    summary: dict
    reused: bool = False

    @property
    def records_path(self) -> Path:
        return self.folder / "records.parquet"

    @property
    def quarantine_path(self) -> Path:
        return self.folder / "quarantine.parquet"

    @classmethod
    def load(cls, folder: Path) -> StageOutput:
        summary = json.loads((folder / "summary.json").read_text())
        return cls(summary["stage"], summary["data_version"], folder, summary, reused=True)


def _stage_folder(paths: DataPaths, stage: str, data_version: str) -> Path:
    return paths.staging / stage / data_version


def _reuse(paths: DataPaths, stage: str, data_version: str) -> StageOutput | None:
    folder = _stage_folder(paths, stage, data_version)
    return StageOutput.load(folder) if (folder / "summary.json").exists() else None


class _StageWriter:
    """Writes a stage's records and quarantine into a temporary folder, then renames it into place."""

    def __init__(self, paths: DataPaths, stage: str, data_version: str, record_schema=RECORD_SCHEMA):
        """``record_schema=None``: the stage writes ``records.parquet`` in ``tmp`` by itself."""
        self.final = _stage_folder(paths, stage, data_version)
        self.tmp = self.final.with_name(f".tmp-{uuid.uuid4().hex}")
        self.tmp.mkdir(parents=True)
        self.stage, self.data_version = stage, data_version
        self.records = ParquetRowWriter(self.tmp / "records.parquet", record_schema) if record_schema else None
        self.quarantine = ParquetRowWriter(self.tmp / "quarantine.parquet", QUARANTINE_SCHEMA)
        self.rejected_by_reason: Counter = Counter()

    def reject(self, rejection: Rejection) -> None:
        self.rejected_by_reason[rejection.reason] += 1
        self.quarantine.write(rejection.to_row())

    def commit(self, summary: dict, upstream: StageOutput | None) -> StageOutput:
        """Publish the folder. ``cumulative`` carries the accounting of every stage so far."""
        if self.records:
            self.records.close()
        self.quarantine.close()
        before = upstream.summary["cumulative"] if upstream else {"quarantined": 0, "quarantine_files": []}
        cumulative = {**before, "quarantined": before["quarantined"] + self.quarantine.rows_written,
                      "quarantine_files": [*before["quarantine_files"], str(self.final / "quarantine.parquet")]}
        cumulative.update(summary.pop("cumulative", {}))
        summary = {"stage": self.stage, "data_version": self.data_version,
                   "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())), **summary,
                   "cumulative": cumulative}
        atomic_write_bytes(self.tmp / "summary.json", json.dumps(summary, indent=2).encode())
        if self.final.exists():
            shutil.rmtree(self.final)
        self.tmp.rename(self.final)
        return StageOutput(self.stage, self.data_version, self.final, summary)

    def abort(self) -> None:
        if self.records:
            self.records.abort()
        self.quarantine.abort()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _run(writer: _StageWriter, body: Callable[[_StageWriter], dict],
         upstream: StageOutput | None = None) -> StageOutput:
    try:
        summary = body(writer)
    except BaseException:
        writer.abort()
        raise
    return writer.commit(summary, upstream)


# --- ingest -----------------------------------------------------------------------------------

def ingest_stage(paths: DataPaths, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                 progress: Progress | None = None) -> StageOutput:
    mappings = load_mappings(paths.mappings)
    reports, stream = ingest_directory(paths.raw, mappings, max_line_bytes)
    data_version = sha256_json({
        "code": INGEST_CODE_VERSION, "max_line_bytes": max_line_bytes,
        "files": [(r.path, r.sha256) for r in reports], "mappings": [(m.name, m.sha256) for m in mappings]})
    if reused := _reuse(paths, "ingest", data_version):
        return reused

    def body(writer: _StageWriter) -> dict:
        for item in stream:
            if isinstance(item, Record):
                writer.records.write(item.to_row())
            else:
                writer.reject(item)
        for report in reports:
            if progress:
                progress(f"{report.path}: {report.records} records, {report.rejected} quarantined, "
                         f"{report.blank_lines} blank lines")
        return {"inputs": sum(r.inputs for r in reports), "records": writer.records.rows_written,
                "rejected": writer.quarantine.rows_written, "mappings": {m.name: m.sha256 for m in mappings},
                "cumulative": {"inputs": sum(r.inputs for r in reports), "files": [r.to_dict() for r in reports]}}

    return _run(_StageWriter(paths, "ingest", data_version), body)


# --- scrub ------------------------------------------------------------------------------------

def scrub_record_schema():
    import pyarrow as pa

    return RECORD_SCHEMA.append(pa.field("scrub_entity_counts", pa.string())) \
        .append(pa.field("scrub_policy_hash", pa.string())).append(pa.field("presidio_version", pa.string()))


def scrub_cache(paths: DataPaths, policy) -> ContentCache:
    """Scrubbed messages by record id (the raw content's hash) under this policy, its versions and key."""
    import pyarrow as pa

    from .scrub.pseudonyms import key_fingerprint

    identity = {"code": SCRUB_CODE_VERSION, "policy": policy.hash, "pseudonym_key": key_fingerprint(policy)}
    schema = pa.schema([pa.field("key", pa.string()), pa.field("messages_json", pa.string()),
                        pa.field("entity_counts", pa.string())])
    return ContentCache(paths.staging, "scrub", identity, schema)


def scrub_stage(paths: DataPaths, ingested: StageOutput, policy, workers: int = 2,
                max_record_chars: int = DEFAULT_MAX_RECORD_CHARS, progress: Progress | None = None,
                executor: str = "local") -> StageOutput:
    """Size guard first (cheap), then Presidio over every message of every role (expensive).

    Only records the scrub cache (``scrub_cache``) does not hold are scrubbed; they are added to it as
    they finish. Then every admitted record is written in input order from the cache. A record's
    output depends on its messages and the cache's identity alone, so a warm run writes the same bytes
    as a cold one (``fine_tune_assets_tests/lib/data/test_incremental.py``).

    ``executor`` (``local``: this machine's process pool; ``ray``: Ray Data actors) and ``workers``
    are not part of the data version: both produce byte-identical records and quarantine
    (``fine_tune_assets_tests/lib/data/scrub/test_ray_executor.py``), so either one reuses the
    other's staging folder.
    """
    from .scrub.pool import check_executor
    from .scrub.pseudonyms import key_fingerprint

    check_executor(executor)
    presidio = installed_version("presidio-analyzer")
    version_inputs = {"code": SCRUB_CODE_VERSION, "input": ingested.data_version, "policy": policy.hash,
                      "max_record_chars": max_record_chars}
    if fingerprint := key_fingerprint(policy):
        version_inputs["pseudonym_key"] = fingerprint
    data_version = sha256_json(version_inputs)
    if reused := _reuse(paths, "scrub", data_version):
        return reused
    cache = scrub_cache(paths, policy)

    def body(writer: _StageWriter) -> dict:
        from .scrub import describe_policy  # imports Presidio (seconds): only when there is work

        with cache.reading() as cached, _duckdb(paths) as con:
            oversize, scrubbed = _scrub_missing(con, cached, cache, ingested, policy, workers, executor,
                                                max_record_chars, writer, progress)
        started = time.monotonic()
        entity_totals: Counter = Counter()
        with cache.reading() as cached, _duckdb(paths) as con:
            cursor = con.execute(
                f"SELECT i.*, c.messages_json AS scrubbed, c.entity_counts FROM read_parquet(?, file_row_number = true)"
                f" AS i JOIN {cached} AS c ON c.key = i.record_id ORDER BY i.file_row_number",
                [str(ingested.records_path)])
            columns = [d[0] for d in cursor.description]
            while rows := cursor.fetchmany(2048):
                for values in rows:
                    row = dict(zip(columns, values))
                    if row["file_row_number"] in oversize:
                        continue
                    counts = json.loads(row["entity_counts"])
                    entity_totals.update(counts)
                    record = {name: row[name] for name in RECORD_SCHEMA.names}
                    writer.records.write({**record, "messages_json": row["scrubbed"],
                                          "scrub_entity_counts": row["entity_counts"],
                                          "scrub_policy_hash": policy.hash, "presidio_version": presidio})
        n_inputs = ingested.summary["records"]
        if writer.records.rows_written + writer.quarantine.rows_written != n_inputs:
            raise RuntimeError(f"scrub accounting: {n_inputs} records in, {writer.records.rows_written} scrubbed + "
                               f"{writer.quarantine.rows_written} quarantined out (the scrub cache lost rows?)")
        if progress:
            written = writer.records.rows_written
            progress(f"{written} records written in {time.monotonic() - started:.1f} s: {scrubbed} scrubbed in this "
                     f"run, {written - scrubbed} reused (from the scrub cache, or repeats of a record scrubbed once); "
                     f"{writer.quarantine.rows_written} quarantined before the PII pass")
        return {"inputs": n_inputs, "records": writer.records.rows_written,
                "rejected": writer.quarantine.rows_written, "entity_counts": dict(sorted(entity_totals.items())),
                "policy_hash": policy.hash, "presidio_version": presidio,
                "cache": {"scrubbed": scrubbed, "reused": writer.records.rows_written - scrubbed,
                          "folder": str(cache.folder.relative_to(paths.root))},
                "cumulative": {"scrub": {"policy_hash": policy.hash, "policy": describe_policy(policy),
                                         "entity_counts": dict(sorted(entity_totals.items())),
                                         "cache_identity": sha256_json(cache.identity)}}}

    try:
        return _run(_StageWriter(paths, "scrub", data_version, scrub_record_schema()), body, ingested)
    finally:
        cache.compact()


def _duckdb(paths: DataPaths):
    """A DuckDB connection whose sorts and joins spill to the staging area beyond 1 GiB, not into memory."""
    spill = paths.staging / ".duckdb-spill"
    spill.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(config={"memory_limit": "1GB", "temp_directory": str(spill)})


def _scrub_missing(con, cached: str, cache: ContentCache, ingested: StageOutput, policy, workers: int, executor: str,
                   max_record_chars: int, writer: _StageWriter, progress: Progress | None) -> tuple[set[int], int]:
    """Quarantine the over-size records and scrub those the cache lacks into it, in input order.

    Returns the row numbers of the over-size records and how many records were scrubbed.
    """
    from .scrub import scrub_conversations

    n_missing = con.execute(f"SELECT count(DISTINCT record_id) FROM read_parquet(?) WHERE record_id NOT IN "
                            f"(SELECT key FROM {cached})", [str(ingested.records_path)]).fetchone()[0]
    if progress:
        progress(f"{n_missing} distinct records of {ingested.summary['records']} are not in the scrub cache "
                 f"({cache.folder.name}): scrubbing them")
    cursor = con.execute(
        f"SELECT i.*, c.key IS NOT NULL AS cached FROM read_parquet(?, file_row_number = true) AS i "
        f"LEFT JOIN (SELECT key FROM {cached}) AS c ON c.key = i.record_id ORDER BY i.file_row_number",
        [str(ingested.records_path)])
    columns = [d[0] for d in cursor.description]
    oversize: set[int] = set()
    todo: dict[str, None] = {}  # record ids already sent: a repeated record is scrubbed once

    def missing():
        while rows := cursor.fetchmany(2048):
            for values in rows:
                row = dict(zip(columns, values))
                record = Record.from_row({k: v for k, v in row.items() if k in RECORD_SCHEMA.names})
                size = sum(len(m["content"]) for m in record.messages)
                if size > max_record_chars:
                    oversize.add(row["file_row_number"])
                    writer.reject(Rejection.for_record(
                        record, "scrub", "over_size_limit",
                        f"{size:,} characters, limit {max_record_chars:,} (checked before PII scrubbing)",
                        scrubbed=False))
                elif not row["cached"] and record.record_id not in todo:
                    todo[record.record_id] = None
                    yield record.record_id, record.messages

    started, last = time.monotonic(), [0.0]

    def report(done: int) -> None:
        """At most one line every 5 s, with rate and ETA (long runs show progress, short ones stay quiet)."""
        now = time.monotonic()
        if progress and now - last[0] >= 5:
            last[0] = now
            rate = done / max(now - started, 1e-9)
            eta = (n_missing - done) / rate if rate else 0
            progress(f"scrubbed {done} of {n_missing} records ({rate:.0f} records/s, ETA {eta:.0f} s)")

    scrubbed = 0
    with cache.writer() as out:
        for record_id, result in scrub_conversations(missing(), policy, workers=workers, progress=report,
                                                     executor=executor):
            out.write({"key": record_id, "messages_json": json.dumps(result.messages, ensure_ascii=False),
                       "entity_counts": json.dumps(dict(sorted(result.entity_counts.items())))})
            scrubbed += 1
    if progress:
        progress(f"scrubbed {scrubbed} records not in the scrub cache in {time.monotonic() - started:.1f} s")
    return oversize, scrubbed


# --- validate ---------------------------------------------------------------------------------

def validate_cache(paths: DataPaths, scrubbed: StageOutput, tokenizer_id: str) -> ContentCache:
    """Token counts and MinHash signatures by record id, for records scrubbed under one scrub identity."""
    from . import dedup
    from .validate import validate_cache_schema

    scrub_identity = scrubbed.summary["cumulative"].get("scrub", {}).get("cache_identity", scrubbed.data_version)
    identity = {"code": VALIDATE_CODE_VERSION, "scrub": scrub_identity, "tokenizer": tokenizer_id,
                "minhash": {"num_perm": dedup.NUM_PERM, "seed": dedup.SEED, "scheme": dedup.SCHEME,
                            "datasketch": installed_version("datasketch")}}
    return ContentCache(paths.staging, "validate", identity, validate_cache_schema())


def validate_stage(paths: DataPaths, scrubbed: StageOutput, tokenizer, tokenizer_id: str,
                   settings: ValidationSettings, progress: Progress | None = None) -> StageOutput:
    data_version = sha256_json({"code": VALIDATE_CODE_VERSION, "input": scrubbed.data_version,
                                "tokenizer": tokenizer_id, "settings": settings.__dict__})
    if reused := _reuse(paths, "validate", data_version):
        return reused
    cache = validate_cache(paths, scrubbed, tokenizer_id)

    def body(writer: _StageWriter) -> dict:
        summary = validate_file(
            scrubbed.records_path, writer.tmp / "records.parquet", tokenizer, settings, writer.reject, cache,
            progress=(lambda n: progress(f"validated {n} records")) if progress else None)
        if progress:
            progress(f"validated {summary.inputs} records: {summary.computed} tokenized and hashed in this run (the "
                     "others came from the validate cache, or failed a check before)")
        return {"inputs": summary.inputs, "records": summary.accepted, "rejected": summary.rejected,
                "settings": settings.__dict__, "tokenizer": tokenizer_id,
                "cache": {"computed": summary.computed, "folder": str(cache.folder.relative_to(paths.root))}}

    return _run(_StageWriter(paths, "validate", data_version, record_schema=None), body, scrubbed)
