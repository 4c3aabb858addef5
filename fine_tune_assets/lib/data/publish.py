"""Publish a dataset version: deterministic split, canonical files, one atomic commit point.

Layout of ``datasets/<version>/``: ``train.jsonl`` and ``eval.jsonl`` (``{"messages": [...]}`` per
line, directly usable by TRL and OpenAI's fine-tuning API), ``train.parquet`` / ``eval.parquet``
(messages plus provenance), ``quarantine.parquet`` (reasons and provenance, scrubbed content only)
and ``manifest.json``. The version id is the sha256 of the canonical content (the two JSONL files),
so unchanged input publishes no new version. Files are written to a temporary folder, fsynced and
renamed into place; then one DuckDB transaction registers the version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from ..common.hashing import canonical_json, sha256_file, sha256_json
from ..common.parquet import ParquetRowWriter, fsync_path
from ..common.paths import DataPaths
from ..registry.backends import insert_from_parquet
from ..registry.connection import connect
from ..registry.erasures import denylist, erased_records_in
from ..registry.ledger import EventKind, append_event, transaction
from .records import PROVENANCE_FIELDS, QUARANTINE_SCHEMA
from .split import split_of

SPLITS = ("train", "eval")
MESSAGE_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string()), ("weight", pa.int64())]))
DATASET_SCHEMA = pa.schema([pa.field("record_id", pa.string()), pa.field("messages", MESSAGE_TYPE),
                            pa.field("n_tokens", pa.int64()), *PROVENANCE_FIELDS])


class AccountingError(RuntimeError):
    """Input records != accepted + quarantined: something was lost; refuse to publish."""


class ErasedMeanwhile(RuntimeError):
    """An erasure request committed while this version was written: registering it would resurrect records."""


@dataclass
class PublishRequest:
    validated_path: Path
    quarantine_paths: list[Path]
    file_reports: list[dict]
    scrub_policy: dict
    scrub_policy_hash: str
    scrub_entity_counts: dict
    checks: list[dict]
    settings: dict
    eval_fraction: float
    code_version: str
    run_id: str | None = None
    # Erasure requests being applied by this publish, on top of those already in the registry
    # ({record_id: request_id}, {source sha256: request_id}): see audit/erasure.py.
    erased_records: dict[str, str] = field(default_factory=dict)
    erased_sources: dict[str, str] = field(default_factory=dict)


@dataclass
class PublishResult:
    version_id: str
    path: Path
    created: bool
    parent_version: str | None
    counts: dict = field(default_factory=dict)
    token_stats: dict = field(default_factory=dict)


def _jsonl_line(messages: list[dict]) -> bytes:
    return (json.dumps({"messages": messages}, ensure_ascii=False) + "\n").encode("utf-8")


def _erased_request(row: dict, denied: tuple[dict, dict]) -> str | None:
    records, sources = denied
    return records.get(row["record_id"]) or sources.get(row.get("source_sha256"))


def _write_splits(request: PublishRequest, folder: Path, denied: tuple[dict, dict],
                  erased_path: Path) -> dict[str, str]:
    """Stream the accepted records in record_id order into the split files; returns each JSONL's sha256.

    Records under an erasure request go to ``erased_path`` as content-free quarantine rows instead."""
    digests = {s: hashlib.sha256() for s in SPLITS}
    handles = {s: open(folder / f"{s}.jsonl", "wb") for s in SPLITS}
    writers = {s: ParquetRowWriter(folder / f"{s}.parquet", DATASET_SCHEMA) for s in SPLITS}
    erased = ParquetRowWriter(erased_path, QUARANTINE_SCHEMA)
    writers["erased"] = erased
    try:
        with duckdb.connect() as con:
            cursor = con.execute("SELECT * FROM read_parquet(?) ORDER BY record_id",
                                 [str(request.validated_path)])
            columns = [d[0] for d in cursor.description]
            while rows := cursor.fetchmany(1024):
                for values in rows:
                    row = dict(zip(columns, values))
                    request_id = _erased_request(row, denied)
                    if request_id:
                        erased.write({"record_id": row["record_id"], "stage": "erasure", "reason": "erased",
                                      "detail": f"erasure request {request_id}", "messages_json": None,
                                      **{f.name: row[f.name] for f in PROVENANCE_FIELDS}})
                        continue
                    split = split_of(row["record_id"], request.eval_fraction)
                    messages = json.loads(row["messages_json"])
                    line = _jsonl_line(messages)
                    handles[split].write(line)
                    digests[split].update(line)
                    writers[split].write({
                        "record_id": row["record_id"], "messages": messages, "n_tokens": row["n_tokens"],
                        **{f.name: row[f.name] for f in PROVENANCE_FIELDS}})
        for s in SPLITS:
            handles[s].flush()
            os.fsync(handles[s].fileno())
        for w in writers.values():
            w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        for h in handles.values():
            h.close()
    return {f"{s}.jsonl": digests[s].hexdigest() for s in SPLITS}


def _write_quarantine(paths: list[Path], target: Path, denied: tuple[dict, dict]) -> int:
    """All quarantine rows in a stable order; an erased record keeps its row (the accounting) but loses
    its (scrubbed) content."""
    with ParquetRowWriter(target, QUARANTINE_SCHEMA) as writer, duckdb.connect() as con:
        paths = [str(p) for p in paths if Path(p).exists()]
        if paths:
            cursor = con.execute(
                "SELECT * FROM read_parquet(?, union_by_name=true) ORDER BY source_file, source_line, record_id",
                [paths])
            columns = [d[0] for d in cursor.description]
            while rows := cursor.fetchmany(1024):
                for values in rows:
                    row = dict(zip(columns, values))
                    request_id = _erased_request(row, denied)
                    if request_id and row.get("messages_json") is not None:
                        row["messages_json"] = None
                        row["detail"] = f"{row['detail']}; content erased (request {request_id})"
                    writer.write(row)
    return writer.rows_written


def _token_stats(con, folder: Path) -> dict:
    stats = {}
    for s in SPLITS:
        row = con.execute(
            "SELECT count(*), coalesce(sum(n_tokens), 0), min(n_tokens), max(n_tokens), avg(n_tokens), "
            "quantile_cont(n_tokens, 0.5), quantile_cont(n_tokens, 0.95) FROM read_parquet(?)",
            [str(folder / f"{s}.parquet")]).fetchone()
        keys = ("examples", "total", "min", "max", "mean", "p50", "p95")
        stats[s] = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in zip(keys, row)}
    return stats


def publish_dataset(paths: DataPaths, request: PublishRequest,
                    on_register: Callable[[object, str], None] | None = None) -> PublishResult:
    """Publish (or find) the version of ``request``'s accepted records, less every erased record.

    ``on_register(con, version_id)`` runs inside the registering transaction (the erasure request uses
    it to commit its rows and ledger event with the version that applies it); it does not run when the
    content is already published."""
    paths.datasets.mkdir(parents=True, exist_ok=True)
    tmp = paths.datasets / f".tmp-{uuid.uuid4().hex}"
    erased_path = paths.datasets / f".tmp-erased-{uuid.uuid4().hex}.parquet"
    try:
        tmp.mkdir()
        registered_records, registered_sources = denylist(paths.registry)
        denied = ({**registered_records, **request.erased_records}, {**registered_sources, **request.erased_sources})
        digests = _write_splits(request, tmp, denied, erased_path)
        version_id = sha256_json(digests)
        final = paths.datasets / version_id
        # One write transaction from "is it registered?" to the registry rows: a concurrent publisher of the
        # same content waits here (the DuckDB file's lock, PostgreSQL's write lock) and then finds it registered.
        # The files are read by a DuckDB of our own: the registry may be PostgreSQL.
        with connect(paths.registry) as con, transaction(con), duckdb.connect() as local:
            registered = con.execute("SELECT 1 FROM dataset_versions WHERE version_id = ?", [version_id]).fetchone()
            parent = con.execute(
                "SELECT version_id FROM dataset_versions ORDER BY created_at DESC LIMIT 1").fetchone()
            if registered:
                shutil.rmtree(tmp)
                return PublishResult(version_id, final, False, parent[0] if parent else None)
            n_quarantined = _write_quarantine([*request.quarantine_paths, erased_path], tmp / "quarantine.parquet",
                                              denied)
            token_stats = _token_stats(local, tmp)
            accepted = sum(token_stats[s]["examples"] for s in SPLITS)
            inputs = sum(r["inputs"] for r in request.file_reports)
            if inputs != accepted + n_quarantined:
                raise AccountingError(f"{inputs} input records but {accepted} accepted + {n_quarantined} "
                                      "quarantined: refusing to publish")
            by_reason = dict(local.execute(
                "SELECT reason, count(*) FROM read_parquet(?) GROUP BY reason ORDER BY reason",
                [str(tmp / "quarantine.parquet")]).fetchall())
            counts = {"input_records": inputs, "accepted": accepted, "quarantined": n_quarantined,
                      "quarantined_by_reason": by_reason,
                      "train": token_stats["train"]["examples"], "eval": token_stats["eval"]["examples"]}
            created_at = datetime.now(UTC)
            files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
            manifest = {
                "version_id": version_id, "created_at": created_at.isoformat(),
                "parent_version": parent[0] if parent else None, "content_hashes": digests, "files": files,
                "counts": counts, "token_stats": token_stats, "eval_fraction": request.eval_fraction,
                "scrub_policy_hash": request.scrub_policy_hash, "sources": request.file_reports,
                "checks": request.checks, "settings": request.settings, "code_version": request.code_version,
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
            for p in tmp.iterdir():
                fsync_path(p)
            if final.exists():  # left by a run killed before registering it: out of sight at once, then deleted
                stale = paths.datasets / f".tmp-{uuid.uuid4().hex}"
                os.replace(final, stale)
                shutil.rmtree(stale)
            os.replace(tmp, final)
            fsync_path(paths.datasets)  # the rename is on disk before the registry says the folder is there
            try:
                _register(con, final, manifest, request, created_at, on_register)
            except BaseException:  # rolled back: no folder of a version the registry does not hold
                os.replace(final, tmp)  # out of sight at once; the `finally` deletes it
                raise
            return PublishResult(version_id, final, True, manifest["parent_version"], counts, token_stats)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
        erased_path.unlink(missing_ok=True)


def _register(con, folder: Path, manifest: dict, request: PublishRequest, created_at: datetime,
              on_register: Callable[[object, str], None] | None = None) -> None:
    """The version's rows, its ledger event (and an erasure's rows), in the caller's transaction: all or nothing."""
    version_id = manifest["version_id"]
    counts = manifest["counts"]
    con.execute(
        "INSERT INTO dataset_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [version_id, created_at, manifest["parent_version"], str(folder), counts["train"], counts["eval"],
         counts["input_records"], counts["accepted"], counts["quarantined"],
         canonical_json(counts["quarantined_by_reason"]), canonical_json(manifest["token_stats"]),
         request.scrub_policy_hash, canonical_json(request.scrub_policy),
         canonical_json(request.scrub_entity_counts), canonical_json(request.checks),
         canonical_json(request.settings), canonical_json(manifest["files"]), request.code_version,
         request.run_id])
    for split in SPLITS:
        insert_from_parquet(con, "dataset_records", "SELECT ?, record_id, ?, source_file, source_sha256, "
                            "source_line, n_tokens FROM read_parquet(?)",
                            [version_id, split, str(folder / f"{split}.parquet")])
    insert_from_parquet(con, "quarantine", "SELECT ?, record_id, stage, reason, detail, source_file, "
                        "source_sha256, source_line FROM read_parquet(?)",
                        [version_id, str(folder / "quarantine.parquet")])
    accepted_by_file = dict(con.execute(
        "SELECT source_file, count(*) FROM dataset_records WHERE version_id = ? GROUP BY 1",
        [version_id]).fetchall())
    for report in request.file_reports:
        accepted = accepted_by_file.get(report["path"], 0)
        con.execute("INSERT INTO dataset_sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [version_id, report["path"], report["sha256"], report["format"], report.get("mapping"),
                     report["inputs"], accepted, report["inputs"] - accepted, report["blank_lines"]])
    append_event(con, EventKind.DATASET_PUBLISHED, version_id, {
        "version_id": version_id, "files": manifest["files"],
        "manifest_sha256": sha256_file(folder / "manifest.json"), "counts": counts})
    if on_register:
        on_register(con, version_id)
    erased = erased_records_in(con, version_id)
    if erased:  # an erasure committed while this version's files were written (it read the deny-list before)
        raise ErasedMeanwhile(f"{erased} records of dataset version {version_id[:12]} were erased while it was "
                              "being published: publish again (they will be left out)")
