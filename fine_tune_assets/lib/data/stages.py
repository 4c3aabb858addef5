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

from ..common.hashing import sha256_json
from ..common.parquet import ParquetRowWriter, atomic_write_bytes, iter_rows
from ..common.paths import DataPaths
from ..common.versions import installed_version
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


def scrub_stage(paths: DataPaths, ingested: StageOutput, policy, workers: int = 2,
                max_record_chars: int = DEFAULT_MAX_RECORD_CHARS, progress: Progress | None = None,
                executor: str = "local") -> StageOutput:
    """Size guard first (cheap), then Presidio over every message of every role (expensive).

    ``executor`` (``local``: this machine's process pool; ``ray``: Ray Data actors) and ``workers``
    are not part of the data version: both produce byte-identical records and quarantine
    (``fine_tune_assets_tests/lib/data/scrub/test_ray_executor.py``), so either one reuses the
    other's staging folder.
    """
    from .scrub import describe_policy, scrub_conversations
    from .scrub.pool import check_executor

    check_executor(executor)
    presidio = installed_version("presidio-analyzer")
    data_version = sha256_json({"code": SCRUB_CODE_VERSION, "input": ingested.data_version,
                                "policy": policy.hash, "max_record_chars": max_record_chars})
    if reused := _reuse(paths, "scrub", data_version):
        return reused

    def body(writer: _StageWriter) -> dict:
        pending: dict[int, Record] = {}
        entity_totals: Counter = Counter()
        n_inputs = 0

        def admitted():
            nonlocal n_inputs
            for i, row in enumerate(iter_rows(ingested.records_path)):
                n_inputs += 1
                record = Record.from_row(row)
                size = sum(len(m["content"]) for m in record.messages)
                if size > max_record_chars:
                    writer.reject(Rejection.for_record(
                        record, "scrub", "over_size_limit",
                        f"{size:,} characters, limit {max_record_chars:,} (checked before PII scrubbing)",
                        scrubbed=False))
                    continue
                pending[i] = record
                yield i, record.messages

        total, started, last = ingested.summary["records"], time.monotonic(), [0.0]

        def report(done: int) -> None:
            """At most one line every 5 s, with rate and ETA (long runs show progress, short ones stay quiet)."""
            now = time.monotonic()
            if progress and (now - last[0] >= 5 or done >= total):
                last[0] = now
                rate = done / max(now - started, 1e-9)
                eta = (total - done) / rate if rate else 0
                progress(f"scrubbed {done} of {total} records ({rate:.0f} records/s, ETA {eta:.0f} s)")

        for key, result in scrub_conversations(admitted(), policy, workers=workers, progress=report,
                                               executor=executor):
            record = pending.pop(key)
            record.messages = result.messages
            entity_totals.update(result.entity_counts)
            record.extra = {"scrub_entity_counts": json.dumps(dict(sorted(result.entity_counts.items()))),
                            "scrub_policy_hash": policy.hash, "presidio_version": presidio}
            writer.records.write(record.to_row())
        if progress:
            progress(f"scrubbed {writer.records.rows_written} records in {time.monotonic() - started:.1f} s; "
                     f"{writer.quarantine.rows_written} quarantined before the PII pass")
        return {"inputs": n_inputs, "records": writer.records.rows_written,
                "rejected": writer.quarantine.rows_written, "entity_counts": dict(sorted(entity_totals.items())),
                "policy_hash": policy.hash, "presidio_version": presidio,
                "cumulative": {"scrub": {"policy_hash": policy.hash, "policy": describe_policy(policy),
                                         "entity_counts": dict(sorted(entity_totals.items()))}}}

    return _run(_StageWriter(paths, "scrub", data_version, scrub_record_schema()), body, ingested)


# --- validate ---------------------------------------------------------------------------------

def validate_stage(paths: DataPaths, scrubbed: StageOutput, tokenizer, tokenizer_id: str,
                   settings: ValidationSettings, progress: Progress | None = None) -> StageOutput:
    data_version = sha256_json({"code": VALIDATE_CODE_VERSION, "input": scrubbed.data_version,
                                "tokenizer": tokenizer_id, "settings": settings.__dict__})
    if reused := _reuse(paths, "validate", data_version):
        return reused

    def body(writer: _StageWriter) -> dict:
        summary = validate_file(
            scrubbed.records_path, writer.tmp / "records.parquet", tokenizer, settings, writer.reject,
            progress=(lambda n: progress(f"validated {n} records")) if progress else None)
        return {"inputs": summary.inputs, "records": summary.accepted, "rejected": summary.rejected,
                "settings": settings.__dict__, "tokenizer": tokenizer_id}

    return _run(_StageWriter(paths, "validate", data_version, record_schema=None), body, scrubbed)
