"""OpenLineage run events for the pipeline's artifacts, and their transport (JSON-lines file, HTTP).

Plain Python, no Dagster and no ``openlineage-python``: the events are built as dicts following the
OpenLineage 2-0-2 ``RunEvent`` schema, so Marquez, DataHub or any other consumer of the standard can
take them. The Dagster side (which asset emits what, and when) is ``defs/openlineage.py``.

What an event carries: names, content hashes, counts and schemas. Never record content, never a
stack trace: an error message is only sent when this project wrote it (see ``defs/openlineage.py``).

Naming (https://openlineage.io/docs/spec/naming):

- jobs: namespace ``$OPENLINEAGE_NAMESPACE`` (default ``fine_tune_assets``), name the asset key
  path joined with ``.`` (``dataset_version``);
- datasets: namespace ``file`` and the absolute path as name (the spec's convention for local
  files, also what the Spark and Airflow integrations emit, so lineage joins up with other tools
  that read the same files). The name is the folder that holds every version of an artifact
  (``<data>/datasets``, ``<data>/adapters``, ``<data>/staging/scrub``); which version a run read or
  wrote is the ``version`` facet: the content hash the pipeline already uses as its identity
  (dataset version id, adapter id, stage data version, base-model identity hash, evaluation id).
  ``FINE_TUNE_OPENLINEAGE_DATASET_NAMESPACE`` overrides the namespace (say ``file://<host>`` when
  several machines write lineage for their own local disks).

Configuration (environment; the ``OPENLINEAGE_*`` names are the standard client's):

===================================== ============================================================
``FINE_TUNE_OPENLINEAGE=off``         emit nothing (``OPENLINEAGE_DISABLED=true`` does the same)
``FINE_TUNE_OPENLINEAGE_FILE``        JSON-lines file, default ``<data>/lineage/openlineage.jsonl``;
                                      ``off`` writes no file
``OPENLINEAGE_URL``                   also POST each event to ``<url>/api/v1/lineage`` (Marquez)
``OPENLINEAGE_ENDPOINT``              another path than ``api/v1/lineage``
``OPENLINEAGE_API_KEY``               sent as ``Authorization: Bearer <key>``
``OPENLINEAGE_NAMESPACE``             job namespace, default ``fine_tune_assets``
``FINE_TUNE_OPENLINEAGE_TIMEOUT``     HTTP timeout in seconds, default 5
``FINE_TUNE_OPENLINEAGE_PRODUCER``    the ``producer`` URI (e.g. your repository URL at a tag)
===================================== ============================================================
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..common.hashing import sha256_json
from ..common.versions import installed_version

log = logging.getLogger(__name__)

SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT_SCHEMA_URL = f"{SPEC_URL}#/$defs/RunEvent"
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
DEFAULT_JOB_NAMESPACE = "fine_tune_assets"
DEFAULT_DATASET_NAMESPACE = "file"
DEFAULT_ENDPOINT = "api/v1/lineage"
DEFAULT_TIMEOUT_S = 5.0
MAX_ERROR_MESSAGE_CHARS = 2000
CUSTOM_FACET_PREFIX = "fineTuneAssets_"

_FACETS = "https://openlineage.io/spec/facets"
FACET_SCHEMA_URLS = {
    "parent": f"{_FACETS}/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "nominalTime": f"{_FACETS}/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
    "errorMessage": f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "processing_engine": f"{_FACETS}/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet",
    "jobType": f"{_FACETS}/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "documentation": f"{_FACETS}/1-0-1/DocumentationJobFacet.json#/$defs/DocumentationJobFacet",
    "sourceCodeLocation": f"{_FACETS}/1-0-1/SourceCodeLocationJobFacet.json#/$defs/SourceCodeLocationJobFacet",
    "version": f"{_FACETS}/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
    "schema": f"{_FACETS}/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "outputStatistics": f"{_FACETS}/1-0-2/OutputStatisticsOutputDatasetFacet.json"
                        "#/$defs/OutputStatisticsOutputDatasetFacet",
}

# This project's own facets (custom facet names carry a prefix, per the spec). Their JSON Schema is
# CUSTOM_FACET_SCHEMAS below; the URL is an identifier (the repository has no public home yet).
CUSTOM_SCHEMA_ID = "urn:fine_tune_assets:openlineage-facets:1-0-0"
CUSTOM_FACET_SCHEMAS: dict[str, dict] = {
    "FilesDatasetFacet": {
        "description": "The files of one version of a dataset: path relative to the version's folder, size, sha256 "
                       "(only where the pipeline already records it or the files are small).",
        "type": "object",
        "properties": {"files": {"type": "array", "items": {
            "type": "object", "required": ["path"], "additionalProperties": False,
            "properties": {"path": {"type": "string"}, "size": {"type": "integer", "minimum": 0},
                           "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}}},
        "required": ["files"],
    },
    "DagsterAssetJobFacet": {
        "description": "The Dagster asset behind a job: key, code version, group.",
        "type": "object",
        "properties": {"assetKey": {"type": "string"}, "codeVersion": {"type": ["string", "null"]},
                       "groupName": {"type": ["string", "null"]}},
        "required": ["assetKey"],
    },
}
CUSTOM_FACET_SCHEMA_URLS = {name: f"{CUSTOM_SCHEMA_ID}#/$defs/{name}" for name in CUSTOM_FACET_SCHEMAS}
FILES_FACET = f"{CUSTOM_FACET_PREFIX}files"
ASSET_FACET = f"{CUSTOM_FACET_PREFIX}dagsterAsset"


def package_version() -> str:
    return installed_version("fine_tune_assets", missing="0+unknown")


def default_producer() -> str:
    """``producer`` / ``_producer`` URI: ``$FINE_TUNE_OPENLINEAGE_PRODUCER`` or this package and version."""
    return os.environ.get("FINE_TUNE_OPENLINEAGE_PRODUCER") or f"urn:fine_tune_assets:{package_version()}"


# --------------------------------------------------------------------------------------------- configuration

_OFF = {"0", "off", "false", "no", "none", "disabled"}


@dataclass(frozen=True)
class LineageConfig:
    enabled: bool = True
    file: Path | None = None
    url: str | None = None
    endpoint: str = DEFAULT_ENDPOINT
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    job_namespace: str = DEFAULT_JOB_NAMESPACE
    dataset_namespace: str = DEFAULT_DATASET_NAMESPACE
    producer: str = field(default_factory=default_producer)

    @classmethod
    def from_env(cls, data_root: str | os.PathLike, environ: Mapping[str, str] | None = None) -> LineageConfig:
        env = os.environ if environ is None else environ
        enabled = (env.get("FINE_TUNE_OPENLINEAGE", "on").strip().lower() not in _OFF
                   and env.get("OPENLINEAGE_DISABLED", "").strip().lower() not in {"1", "true", "yes"})
        file_value = env.get("FINE_TUNE_OPENLINEAGE_FILE", "").strip()
        if file_value.lower() in _OFF:
            file = None
        else:
            file = Path(file_value).expanduser() if file_value else Path(data_root) / "lineage" / "openlineage.jsonl"
        try:
            timeout = float(env.get("FINE_TUNE_OPENLINEAGE_TIMEOUT") or DEFAULT_TIMEOUT_S)
        except ValueError:
            timeout = DEFAULT_TIMEOUT_S
        return cls(enabled=enabled, file=file, url=env.get("OPENLINEAGE_URL", "").strip() or None,
                   endpoint=env.get("OPENLINEAGE_ENDPOINT", "").strip() or DEFAULT_ENDPOINT,
                   api_key=env.get("OPENLINEAGE_API_KEY", "").strip() or None, timeout_s=timeout,
                   job_namespace=env.get("OPENLINEAGE_NAMESPACE", "").strip() or DEFAULT_JOB_NAMESPACE,
                   dataset_namespace=env.get("FINE_TUNE_OPENLINEAGE_DATASET_NAMESPACE", "").strip()
                   or DEFAULT_DATASET_NAMESPACE,
                   producer=env.get("FINE_TUNE_OPENLINEAGE_PRODUCER", "").strip()
                   or f"urn:fine_tune_assets:{package_version()}")

    @property
    def http_url(self) -> str | None:
        if not self.url:
            return None
        return self.url.rstrip("/") + "/" + self.endpoint.lstrip("/")


# --------------------------------------------------------------------------------------------- events

def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_run_id(value: str) -> str:
    """``value`` when it is a UUID (Dagster run ids are), else a stable uuid5 of it."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fine_tune_assets:run:{value}"))


def child_run_id(parent_run_id: str, job_name: str, attempt: int = 0) -> str:
    """The run id of one job inside a parent run: stable, so START and COMPLETE share it.

    OpenLineage ties a run id to one job, so the assets of one Dagster run cannot all reuse the
    Dagster run id; that id is the ``parent`` facet's run instead.
    """
    return str(uuid.uuid5(uuid.UUID(as_run_id(parent_run_id)), f"{job_name}#{attempt}"))


def facet(schema_url: str, producer: str | None = None, /, **fields: Any) -> dict:
    return {"_producer": producer or default_producer(), "_schemaURL": schema_url,
            **{k: v for k, v in fields.items() if v is not None}}


def standard_facet(facet_name: str, producer: str | None = None, /, **fields: Any) -> dict:
    return facet(FACET_SCHEMA_URLS[facet_name], producer, **fields)


def custom_facet(schema_name: str, producer: str | None = None, /, **fields: Any) -> dict:
    return facet(CUSTOM_FACET_SCHEMA_URLS[schema_name], producer, **fields)


def job_type_facet(producer: str | None = None, job_type: str = "ASSET") -> dict:
    return standard_facet("jobType", producer, processingType="BATCH", integration="DAGSTER", jobType=job_type)


def parent_run_facet(namespace: str, name: str, run_id: str, producer: str | None = None) -> dict:
    job, run = {"namespace": namespace, "name": name}, {"runId": as_run_id(run_id)}
    return standard_facet("parent", producer, job=job, run=run, root={"job": dict(job), "run": dict(run)})


def error_message_facet(message: str, producer: str | None = None) -> dict:
    """No ``stackTrace``: a trace can quote data; the run's own log has it."""
    return standard_facet("errorMessage", producer, message=message[:MAX_ERROR_MESSAGE_CHARS],
                          programmingLanguage="python")


def nominal_time_facet(start: str, end: str | None = None, producer: str | None = None) -> dict:
    return standard_facet("nominalTime", producer, nominalStartTime=start, nominalEndTime=end)


def processing_engine_facet(name: str, version: str, producer: str | None = None) -> dict:
    return standard_facet("processing_engine", producer, name=name, version=version,
                          openlineageAdapterVersion=package_version())


def documentation_facet(description: str, producer: str | None = None) -> dict:
    return standard_facet("documentation", producer, description=description)


def source_code_location_facet(url: str, type_: str = "git", producer: str | None = None, **more: Any) -> dict:
    return standard_facet("sourceCodeLocation", producer, type=type_, url=url, **more)


def run_event(event_type: str, *, job_namespace: str, job_name: str, run_id: str,
              inputs: Iterable[Dataset] = (), outputs: Iterable[Dataset] = (),
              run_facets: Mapping[str, dict] | None = None, job_facets: Mapping[str, dict] | None = None,
              producer: str | None = None, event_time: str | None = None) -> dict:
    """One OpenLineage 2-0-2 RunEvent as a JSON-ready dict."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"eventType must be one of {EVENT_TYPES}, not {event_type!r}")
    return {
        "eventType": event_type,
        "eventTime": event_time or utc_now(),
        "producer": producer or default_producer(),
        "schemaURL": RUN_EVENT_SCHEMA_URL,
        "run": {"runId": as_run_id(run_id), "facets": dict(run_facets or {})},
        "job": {"namespace": job_namespace, "name": job_name, "facets": dict(job_facets or {})},
        "inputs": [d.as_input() for d in inputs],
        "outputs": [d.as_output() for d in outputs],
    }


# --------------------------------------------------------------------------------------------- datasets

@dataclass
class Dataset:
    namespace: str
    name: str
    facets: dict = field(default_factory=dict)
    output_facets: dict = field(default_factory=dict)

    @property
    def version(self) -> str | None:
        return (self.facets.get("version") or {}).get("datasetVersion")

    def as_input(self) -> dict:
        return {"namespace": self.namespace, "name": self.name, "facets": self.facets}

    def as_output(self) -> dict:
        return {**self.as_input(), "outputFacets": self.output_facets}


def arrow_schema_fields(schema) -> list[dict]:
    """SchemaDatasetFacet fields from a pyarrow schema, nested structs and lists included."""
    import pyarrow as pa

    def one(name: str, dtype) -> dict:
        entry = {"name": name, "type": str(dtype)}
        if pa.types.is_struct(dtype):
            entry["type"] = "struct"
            entry["fields"] = [one(f.name, f.type) for f in dtype]
        elif pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
            entry["type"] = "list"
            entry["fields"] = [one(dtype.value_field.name, dtype.value_type)]
        return entry

    return [one(f.name, f.type) for f in schema]


def parquet_schema_fields(path: Path) -> list[dict] | None:
    """Schema of a Parquet file from its footer (cheap); None when the file is missing."""
    import pyarrow.parquet as pq

    return arrow_schema_fields(pq.read_schema(path)) if Path(path).exists() else None


def _file_entries(folder: Path, names: Iterable[str], hashes: Mapping[str, str] | None = None) -> list[dict]:
    entries = []
    for name in names:
        path = folder / name
        entry: dict[str, Any] = {"path": name}
        if path.is_file():
            entry["size"] = path.stat().st_size
        if hashes and hashes.get(name):
            entry["sha256"] = hashes[name]
        entries.append(entry)
    return entries


def dataset(namespace: str, name: str | Path, *, version: str | None = None, schema: list[dict] | None = None,
            files: list[dict] | None = None, row_count: int | None = None, producer: str | None = None) -> Dataset:
    facets: dict[str, dict] = {}
    if version:
        facets["version"] = standard_facet("version", producer, datasetVersion=version)
    if schema:
        facets["schema"] = standard_facet("schema", producer, fields=schema)
    if files is not None:
        facets[FILES_FACET] = custom_facet("FilesDatasetFacet", producer, files=files)
    output = {}
    if row_count is not None or files:
        output["outputStatistics"] = standard_facet(
            "outputStatistics", producer, rowCount=row_count,
            size=sum(f.get("size", 0) for f in files or []) if files else None,
            fileCount=len(files) if files else None)
    return Dataset(namespace, str(name), facets, output)


def raw_files_dataset(namespace: str, raw_dir: Path, files: list[dict] | None,
                      producer: str | None = None) -> Dataset:
    """The landing zone as read by the ingest stage; version = hash of its files' hashes."""
    if files is None:
        return dataset(namespace, raw_dir, producer=producer)
    hashes = {f["path"]: f["sha256"] for f in files if f.get("sha256")}
    entries = _file_entries(raw_dir, sorted(hashes), hashes)
    return dataset(namespace, raw_dir, version=sha256_json(hashes), files=entries,
                   row_count=sum(int(f.get("inputs") or 0) for f in files), producer=producer)


def staged_dataset(namespace: str, folder: Path, data_version: str | None = None,
                   producer: str | None = None) -> Dataset:
    """A stage output ``staging/<stage>/<data_version>/``: named by ``staging/<stage>``."""
    folder = Path(folder)
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    names = [n for n in ("records.parquet", "quarantine.parquet") if (folder / n).exists()]
    return dataset(namespace, folder.parent, version=data_version or summary.get("data_version") or folder.name,
                   schema=parquet_schema_fields(folder / "records.parquet"),
                   files=_file_entries(folder, names), row_count=summary.get("records"), producer=producer)


def published_dataset(namespace: str, folder: Path, version_id: str | None = None,
                      producer: str | None = None) -> Dataset:
    """A dataset version ``datasets/<version_id>/``: version id, Parquet schema, file hashes from its manifest."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    hashes = manifest.get("files") or {}
    counts = manifest.get("counts") or {}
    rows = counts["train"] + counts["eval"] if {"train", "eval"} <= set(counts) else None
    return dataset(namespace, folder.parent, version=version_id or manifest.get("version_id") or folder.name,
                   schema=parquet_schema_fields(folder / "train.parquet"),
                   files=_file_entries(folder, sorted(hashes), hashes) if hashes else None,
                   row_count=rows, producer=producer)


def base_model_dataset(namespace: str, folder: Path, identity_hash: str | None, weights_sha256: Mapping | None,
                       producer: str | None = None) -> Dataset:
    weights = dict(weights_sha256 or {})
    return dataset(namespace, folder, version=identity_hash,
                   files=_file_entries(Path(folder), sorted(weights), weights) if weights else None,
                   producer=producer)


def _hashed_top_level_files(folder: Path):
    """File entries with sha256 for the top-level files of ``folder`` (None when it is missing)."""
    if not folder.is_dir():
        return None
    from ..common.hashing import sha256_file

    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    return _file_entries(folder, names, {n: sha256_file(folder / n) for n in names})


def adapter_dataset(namespace: str, folder: Path, adapter_id: str | None = None, hash_files: bool = False,
                    producer: str | None = None) -> Dataset:
    """An adapter ``adapters/<adapter_id>/``; ``hash_files``: sha256 of its top-level files (megabytes)."""
    folder = Path(folder)
    files = _hashed_top_level_files(folder) if hash_files else None
    return dataset(namespace, folder.parent, version=adapter_id or folder.name, files=files, producer=producer)


def eval_report_dataset(namespace: str, folder: Path, eval_id: str | None, hash_files: bool = False,
                        producer: str | None = None) -> Dataset:
    """An evaluation ``adapters/<adapter_id>/eval/`` (one per adapter)."""
    folder = Path(folder)
    files = _hashed_top_level_files(folder) if hash_files else None
    return dataset(namespace, folder, version=eval_id, files=files, producer=producer)


# --------------------------------------------------------------------------------------------- transport

def _safe_url(url: str) -> str:
    """The URL without user:password, for log messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        parts = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
    return urllib.parse.urlunsplit(parts)


def write_jsonl(event: dict, path: Path) -> None:
    """Append one event as one line with a single ``write`` on an O_APPEND descriptor, so concurrent
    writers (parallel runs) never interleave partial lines."""
    line = (json.dumps(event, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
        if written != len(line):  # not seen on local disks; finish the line rather than leave half of it
            os.write(fd, line[written:])
    finally:
        os.close(fd)


def post_http(event: dict, config: LineageConfig) -> None:
    """POST the event to the configured endpoint; raises on any failure (``emit`` turns it into a warning)."""
    body = json.dumps(event, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    request = urllib.request.Request(config.http_url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=config.timeout_s) as response:
        if response.status >= 300:
            raise urllib.error.HTTPError(config.http_url, response.status, response.reason, response.headers, None)


def emit(event: dict, config: LineageConfig, logger=None) -> bool:
    """Write the event to the file, then POST it when a URL is configured. Lineage never fails a
    materialization: a failed write or POST is a warning naming the target and the error (never the
    payload or the API key). Returns True when every configured target took the event."""
    logger = logger or log
    if not config.enabled:
        return True
    ok = True
    if config.file is not None:
        try:
            write_jsonl(event, config.file)
        except OSError as exc:
            ok = False
            logger.warning(f"OpenLineage: could not append to {config.file}: {exc.__class__.__name__}: {exc}")
    if config.http_url:
        try:
            post_http(event, config)
        except Exception as exc:
            ok = False
            reason = f"HTTP {exc.code}" if isinstance(exc, urllib.error.HTTPError) else \
                f"{exc.__class__.__name__}: {getattr(exc, 'reason', exc)}"
            logger.warning(f"OpenLineage: POST to {_safe_url(config.http_url)} failed ({reason}); "
                           f"the event is still in {config.file or 'no file (FINE_TUNE_OPENLINEAGE_FILE=off)'}")
    return ok


def read_events(path: Path) -> list[dict]:
    """Every event of a JSON-lines file, in order (for tests and tools)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
