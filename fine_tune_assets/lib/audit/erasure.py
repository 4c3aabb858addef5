"""Erasure requests (GDPR Art. 17 and similar): forget records from every future dataset version.

``erase`` resolves the request (record ids or prefixes, or raw source files by name or content hash),
then publishes a new version of the newest dataset without those records and, in the SAME registry
transaction as that version: the request's rows in ``erasures`` (the deny-list every later publish
reads, so a re-ingested copy of the same record or file stays out), a ``needs_retraining`` flag in
``adapter_flags`` for every adapter trained on a version that holds one of the records, and one
``erasure`` ledger event. A crash leaves all of it or none of it.

Nothing is lost from the accounting: an erased record becomes a content-free quarantine row (stage
``erasure``, reason ``erased``, the request id), so input = accepted + quarantined still holds, and an
already-quarantined record keeps its row but loses its (scrubbed) content.

Staging folders (a cache of the data stages; ingest's holds raw, unscrubbed text) that hold the
records are deleted. The raw files themselves are the data owner's: the result names the files and
lines that still hold the records (ingest re-reads them; the deny-list keeps them out of datasets).

Access control: with the deployment's roles (``access``, see ``audit.access``) only a ``data_steward`` may
erase; a refusal is a ``denied`` ledger event and ``AccessDenied``, before anything is resolved or written.

Not done here: earlier dataset versions and adapters stay on disk, immutable and hashed by
``verify``; deleting them is a retention decision (the flags say which adapters to retrain first).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ..common.hashing import sha256_json
from ..common.paths import DataPaths
from ..data.content_cache import purge_caches
from ..data.publish import SPLITS, AccountingError, ErasedMeanwhile, PublishRequest, publish_dataset
from ..data.records import RECORD_SCHEMA
from ..registry.backends import in_list
from ..registry.connection import connect, registry_exists, rows_as_dicts
from ..registry.erasures import NEEDS_RETRAINING
from ..registry.ledger import EventKind, append_event, current_user, read_events, transaction
from .access import DATA_STEWARD, OFF, AccessPolicy, require
from .lineage import LineageError, resolve_records, resolve_source
from .verify import compare_files


class ErasureError(ValueError):
    """The request cannot be applied as asked (message says why)."""


@dataclass
class ErasureResult:
    request_id: str
    created_at: str
    user: str
    reason: str
    record_ids: list[str]
    source_files: list[dict]
    affected_versions: list[str]
    affected_adapters: list[str]
    new_version: str | None
    new_version_created: bool
    erased_from_new_version: int = 0
    counts: dict = field(default_factory=dict)
    purged_staging: list[str] = field(default_factory=list)  # staging folders deleted (they held the records)
    raw_locations: list[dict] = field(default_factory=list)  # raw files (and lines) that still hold them

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _resolve(con, record_refs: list[str], sources: list[str]) -> tuple[list[str], list[dict]]:
    """Full record ids (records named directly plus every record of each named source) and the sources."""
    try:
        record_ids = set(resolve_records(con, record_refs).values()) if record_refs else set()
        resolved_sources = []
        for source in sources:
            match, names, sha = resolve_source(con, source, strict=True)
            if not names:
                raise LineageError(f"source {source!r} is in no dataset version")
            condition, params = (in_list("source_file"), [names]) if match == "name" else \
                ("source_sha256 = ?", [sha])
            digests = con.execute(f"SELECT DISTINCT source_file, source_sha256 FROM dataset_sources WHERE {condition}",
                                  params).fetchall()
            for name, digest in digests:
                resolved_sources.append({"source_file": name, "source_sha256": digest})
                record_ids |= {r for (r,) in con.execute(
                    "SELECT DISTINCT record_id FROM dataset_records WHERE source_sha256 = ? UNION "
                    "SELECT DISTINCT record_id FROM quarantine WHERE source_sha256 = ?", [digest, digest]).fetchall()}
    except LineageError as exc:
        raise ErasureError(str(exc)) from None
    return sorted(record_ids), resolved_sources


def _republish_request(con, version: dict, folder: Path, record_ids: list[str], sources: list[dict],
                       request_id: str):
    """A PublishRequest that re-publishes ``version``'s accepted records (exact JSONL messages) and its
    quarantine, with this request's records and sources denied."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    rows = []
    for split in SPLITS:
        table = pq.read_table(folder / f"{split}.parquet", columns=["record_id", "n_tokens", "source_file",
                                                                    "source_sha256", "source_line", "source_format"])
        with open(folder / f"{split}.jsonl", encoding="utf-8") as handle:
            for row, line in zip(table.to_pylist(), handle, strict=True):
                rows.append({**row, "messages_json": json.dumps(json.loads(line)["messages"], ensure_ascii=False),
                             "mapping": None})
    schema = RECORD_SCHEMA.append(pa.field("n_tokens", pa.int64()))
    handle, validated = tempfile.mkstemp(suffix=".parquet", prefix=".erasure-", dir=folder.parent)
    os.close(handle)
    try:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), validated)
    except BaseException:
        Path(validated).unlink(missing_ok=True)
        raise
    recorded = rows_as_dicts(con.execute("SELECT * FROM dataset_sources WHERE version_id = ? ORDER BY source_file",
                                         [version["version_id"]]))
    reports = [{"path": s["source_file"], "sha256": s["source_sha256"], "format": s["format"], "mapping": s["mapping"],
                "inputs": s["inputs"], "blank_lines": s["blank_lines"]} for s in recorded]
    checks = [*json.loads(version["checks"]), {
        "name": "erasure_applied", "passed": True, "blocking": False, "severity": "INFO",
        "observed": len(record_ids), "threshold": None,
        "description": f"erasure request {request_id}: re-published from {version['version_id'][:12]} without the "
                       "erased records; the other checks are those of that version (a subset of its records)"}]
    request = PublishRequest(
        validated_path=Path(validated), quarantine_paths=[folder / "quarantine.parquet"], file_reports=reports,
        scrub_policy=json.loads(version["scrub_policy"]), scrub_policy_hash=version["scrub_policy_hash"],
        scrub_entity_counts=json.loads(version["scrub_entity_counts"]), checks=checks,
        settings=json.loads(version["settings"]), eval_fraction=manifest["eval_fraction"],
        code_version=version["code_version"], run_id=None,
        erased_records=dict.fromkeys(record_ids, request_id),
        erased_sources={s["source_sha256"]: request_id for s in sources})
    return request, Path(validated)


def purge_staging(paths: DataPaths, record_ids: list[str], source_shas: list[str]) -> list[str]:
    """Delete every staging folder (a cache of the data stages, rebuilt on the next run) whose records or
    quarantine hold an erased record: the ingest stage keeps the raw, unscrubbed text. The records'
    rows go from the per-record caches too (``content_cache.py``: scrubbed text, token counts,
    signatures), those of an erased source file included."""
    purged, erased_ids = [], set(record_ids)
    for folder in sorted(p.parent for p in paths.staging.glob("*/*/summary.json")):
        files = [str(f) for f in (folder / "records.parquet", folder / "quarantine.parquet") if f.exists()]
        if not files:
            continue
        with duckdb.connect() as con:
            hits = con.execute("SELECT DISTINCT record_id FROM read_parquet(?, union_by_name=true) WHERE "
                               "list_contains(?, record_id) OR list_contains(?, source_sha256)",
                               [files, record_ids, source_shas]).fetchall()
        if hits:
            erased_ids.update(record_id for (record_id,) in hits)
            shutil.rmtree(folder)
            purged.append(str(folder.relative_to(paths.root)))
    with connect(paths.registry, read_only=True) as con:  # a source's records no staging folder holds any more
        located = con.execute(f"SELECT record_id FROM dataset_records WHERE {in_list('source_sha256')} UNION "
                              f"SELECT record_id FROM quarantine WHERE {in_list('source_sha256')}",
                              [source_shas, source_shas]).fetchall()
        erased_ids.update(record_id for (record_id,) in located)
    purge_caches(paths.staging, sorted(erased_ids))
    return purged


def _check_unchanged(paths: DataPaths, version_id: str, folder: Path) -> None:
    """Refuse to re-publish from a dataset folder whose files no longer match their ledger event."""
    with connect(paths.registry, read_only=True) as con:
        events = [e for e in read_events(con)
                  if e["kind"] == EventKind.DATASET_PUBLISHED and e["subject"] == version_id]
    if not events or not isinstance(events[-1]["payload"], dict):
        return  # published before the ledger: nothing to compare with (verify warns about it)
    recorded = dict(events[-1]["payload"].get("files") or {})
    problems: list[str] = []
    compare_files(f"dataset {version_id[:12]}", folder, recorded, problems, extra_allowed=True)
    if problems:
        raise ErasureError("the newest dataset version changed on disk since it was published, refusing to "
                           "re-publish it: " + "; ".join(problems) + " (see `fine-tune-assets verify`)")


REPUBLISH_ATTEMPTS = 5  # concurrent erasures each re-publish the newest version; the later ones start again


def erase(paths: DataPaths, reason: str, record_refs: list[str] | None = None, sources: list[str] | None = None,
          user: str | None = None, access: AccessPolicy = OFF) -> ErasureResult:
    """Apply one erasure request (see module docstring); returns what it did. ``access``: the deployment's roles
    (``load_access(paths.access)``); ``OFF`` checks none."""
    record_refs, sources = list(record_refs or []), list(sources or [])
    if not reason or not reason.strip():
        raise ErasureError("an erasure needs a reason (e.g. the ticket of the data subject's request)")
    if not record_refs and not sources:
        raise ErasureError("name at least one --record or --source")
    if not registry_exists(paths.registry):
        raise ErasureError("no registry yet: nothing has been published")
    user = user or current_user()
    if access.configured:
        with connect(paths.registry) as con:  # a refusal commits its denied event, then raises
            require(con, access, user, DATA_STEWARD, "erase records", "erase", {
                "operation": "erase", "record_refs": record_refs, "sources": sources, "reason": reason})
    created_at = datetime.now(UTC)
    with connect(paths.registry, read_only=True) as con:
        if not con.execute("SELECT count(*) FROM dataset_versions").fetchone()[0]:
            raise ErasureError("no dataset version published yet")
        record_ids, resolved_sources = _resolve(con, record_refs, sources)
        affected_versions = sorted({v for (v,) in con.execute(
            f"SELECT DISTINCT version_id FROM dataset_records WHERE {in_list('record_id')}",
            [record_ids]).fetchall()})
        affected_adapters = sorted({a for (a,) in con.execute(
            f"SELECT adapter_id FROM adapters WHERE {in_list('dataset_version')}",
            [affected_versions]).fetchall()})
        newest = rows_as_dicts(con.execute("SELECT * FROM dataset_versions ORDER BY created_at DESC LIMIT 1"))[0]
    request_id = sha256_json({"records": record_ids, "sources": resolved_sources, "reason": reason, "user": user,
                              "created_at": created_at.isoformat()})
    result = ErasureResult(request_id, created_at.isoformat(), user, reason, record_ids, resolved_sources,
                           affected_versions, affected_adapters, None, False)

    def commit(con, version_id: str | None) -> None:
        for record_id in record_ids:
            con.execute("INSERT INTO erasures VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                        [request_id, created_at, user, reason, record_id])
        for s in resolved_sources:
            con.execute("INSERT INTO erasures VALUES (?, ?, ?, ?, NULL, ?, ?)",
                        [request_id, created_at, user, reason, s["source_file"], s["source_sha256"]])
        flag_reason = f"trained on records erased by request {request_id[:12]}: {reason}"
        for adapter_id in affected_adapters:
            con.execute("INSERT INTO adapter_flags VALUES (?, ?, ?, ?, ?)",
                        [adapter_id, NEEDS_RETRAINING, flag_reason, request_id, created_at])
        result.new_version = version_id
        append_event(con, EventKind.ERASURE, request_id, {
            "request_id": request_id, "record_ids": record_ids, "source_files": resolved_sources, "reason": reason,
            "user": user, "affected_versions": affected_versions, "affected_adapters": affected_adapters,
            "new_version": version_id})

    for attempt in range(1, REPUBLISH_ATTEMPTS + 1):
        folder = Path(newest["path"])
        _check_unchanged(paths, newest["version_id"], folder)
        try:
            with connect(paths.registry, read_only=True) as con:
                request, validated = _republish_request(con, newest, folder, record_ids, resolved_sources, request_id)
            try:
                published = publish_dataset(paths, request, on_register=commit)
            finally:
                validated.unlink(missing_ok=True)
            break
        except ErasedMeanwhile as exc:
            # another erasure committed while this one re-published the same version: start again from the
            # version that one left newest (the deny-list now holds its records too)
            if attempt == REPUBLISH_ATTEMPTS:
                raise ErasureError(f"could not re-publish dataset version {newest['version_id'][:12]} without the "
                                   f"records in {attempt} attempts: {exc}") from None
            with connect(paths.registry, read_only=True) as con:
                newest = rows_as_dicts(con.execute(
                    "SELECT * FROM dataset_versions ORDER BY created_at DESC LIMIT 1"))[0]
        except (OSError, ValueError, AccountingError) as exc:
            raise ErasureError(f"could not re-publish dataset version {newest['version_id'][:12]} without the "
                               f"records: {type(exc).__name__}: {exc}") from None
    result.new_version_created = published.created
    if not published.created:
        # Either the newest version holds none of the records (same content), or the content without them is
        # an older version's: that one is current again (``latest`` skips versions holding erased records).
        applied = published.version_id if published.version_id != newest["version_id"] else None
        with connect(paths.registry) as con, transaction(con):
            commit(con, applied)
    else:
        result.counts = published.counts
        result.erased_from_new_version = newest["n_train"] + newest["n_eval"] - published.counts["accepted"]
    result.purged_staging = purge_staging(paths, record_ids, [x["source_sha256"] for x in resolved_sources])
    with connect(paths.registry, read_only=True) as con:
        result.raw_locations = rows_as_dicts(con.execute(
            "SELECT source_file, source_sha256, array_agg(DISTINCT source_line ORDER BY source_line) AS lines FROM ("
            f"SELECT source_file, source_sha256, source_line FROM dataset_records WHERE {in_list('record_id')} "
            f"UNION SELECT source_file, source_sha256, source_line FROM quarantine WHERE {in_list('record_id')}) "
            "AS located GROUP BY source_file, source_sha256 ORDER BY source_file", [record_ids, record_ids]))
    return result

