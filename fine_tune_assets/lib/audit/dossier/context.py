"""Everything one dossier is built from, read once: registry rows, ledger events, report files, ``verify``.

``load_context`` is the only reader of the registry here; the section builders get a ``DossierContext`` and
never open the registry, so one dossier shows one consistent state. ``verify_all`` runs first because it
opens the registry itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ...common.hashing import sha256_file
from ...common.paths import DataPaths
from ...registry.backends import display, is_postgres
from ...registry.connection import connect, registry_exists, rows_as_dicts
from ...registry.ledger import EventKind, read_events
from ...registry.queries import adapters, dataset_sources, dataset_versions
from ...registry.resolve import LATEST, NotFound, resolve_adapter
from ..access import AccessError, load_access
from ..verify import verify_all
from .events import mentions
from .previous import Previous, previous_adapter
from .values import load_json


class DossierError(LookupError):
    """The adapter asked about is not in the registry (the message says what to run instead)."""


@dataclass(frozen=True)
class DossierContext:
    """The facts about one adapter; the properties are derived from the rows, never read again."""

    paths: DataPaths
    adapter: dict  # its adapters row
    dataset: dict | None  # its dataset_versions row; None when the version is not in the registry
    sources: list[dict]  # dataset_sources rows of that version
    stage_counts: list[dict]  # quarantined records per {stage, reason, n}
    evaluation: dict | None  # its newest evaluations row
    report: dict | None  # its eval_report.json
    report_path: Path | None
    previous: Previous
    events: list[dict]  # the whole ledger, in seq order
    integrity: dict  # verify_all's result
    access: dict | str  # the roles file now: AccessPolicy.describe(), or {"error": why it is unusable}

    @property
    def aid(self) -> str:
        return self.adapter["adapter_id"]

    @property
    def version_id(self) -> str:
        return self.adapter["dataset_version"]

    @property
    def adapter_dir(self) -> Path:
        return Path(self.adapter["path"])

    @cached_property
    def lineage(self) -> dict:
        return load_json(self.adapter["lineage"]) or {}

    @cached_property
    def metrics(self) -> dict:
        return load_json(self.adapter["metrics"]) or self.lineage.get("metrics") or {}

    @cached_property
    def checks(self) -> list | None:
        """The dataset gate results recorded with the version."""
        return load_json(self.dataset["checks"]) if self.dataset else None

    @cached_property
    def mine(self) -> list[dict]:
        """The ledger events about this adapter or its dataset version."""
        return [e for e in self.events if mentions(e, self.aid, self.version_id)]

    @cached_property
    def erasures(self) -> list[dict]:
        return [e for e in self.mine if e["kind"] == EventKind.ERASURE]

    @cached_property
    def retrain(self) -> list[dict]:
        """The erasures that make this adapter need retraining: they name it, or the version it was trained on."""
        return [e for e in self.erasures if self.aid in ((e["payload"] or {}).get("affected_adapters") or [])
                or self.version_id in ((e["payload"] or {}).get("affected_versions") or [])]

    @property
    def head(self) -> dict | None:
        return self.events[-1] if self.events else None

    @cached_property
    def manifest_sha256(self) -> str | None:
        """As recorded by the publish event; else hashed from the version's manifest.json, if it is there."""
        for e in self.mine:
            if e["kind"] == EventKind.DATASET_PUBLISHED and isinstance(e["payload"], dict):
                return e["payload"].get("manifest_sha256")
        manifest = Path(self.dataset["path"]) / "manifest.json" if self.dataset else None
        return sha256_file(manifest) if manifest and manifest.is_file() else None


def as_paths(paths_or_registry) -> DataPaths:
    """A DataPaths, the data directory, or the registry file (whose folder is the data directory)."""
    if isinstance(paths_or_registry, DataPaths):
        return paths_or_registry
    if is_postgres(paths_or_registry):
        raise DossierError("a PostgreSQL registry does not say where the data directory is: give the data "
                           "directory (with FINE_TUNE_REGISTRY_URL set) instead")
    registry = Path(paths_or_registry)
    if registry.is_dir():
        return DataPaths(registry.resolve())
    return DataPaths(registry.resolve().parent)


def _evaluation_row(con, adapter_id: str) -> dict | None:
    """The adapter's newest ``evaluations`` row, as stored."""
    rows = rows_as_dicts(con.execute("SELECT * FROM evaluations WHERE adapter_id = ? ORDER BY created_at DESC "
                                     "LIMIT 1", [adapter_id]))
    return rows[0] if rows else None


def _eval_report(evaluation: dict | None, adapter_dir: Path) -> tuple[dict | None, Path | None]:
    """The evaluation report JSON named by the registry row, else the one in ``<adapter>/eval/``."""
    candidates = ([Path(evaluation["report_path"])] if evaluation and evaluation.get("report_path") else []) \
        + [adapter_dir / "eval" / "eval_report.json"]
    for path in candidates:
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8")), path
            except (OSError, ValueError):
                continue
    return None, None


def load_context(paths_or_registry, wanted: str) -> DossierContext:
    """The context of adapter ``wanted``: an id, unique prefix, 'latest' or stage name (``registry.resolve``)."""
    paths = as_paths(paths_or_registry)
    if not registry_exists(paths.registry):
        raise DossierError(f"no registry at {display(paths.registry)}: nothing has been published yet")
    integrity = verify_all(paths)  # opens the registry itself: run before our own connection
    with connect(paths.registry, read_only=True) as con:
        try:
            adapter = resolve_adapter(con, wanted or LATEST)
        except NotFound as exc:
            raise DossierError(str(exc)) from None
        version_id = adapter["dataset_version"]
        versions = dataset_versions(con)
        dataset = next((v for v in versions if v["version_id"] == version_id), None)
        sources = dataset_sources(con, version_id)
        stage_counts = rows_as_dicts(con.execute(
            "SELECT stage, reason, count(*) AS n FROM quarantine WHERE version_id = ? GROUP BY stage, reason "
            "ORDER BY stage, reason", [version_id]))
        evaluation = _evaluation_row(con, adapter["adapter_id"])
        events = read_events(con)
        parents = {v["version_id"]: v["parent_version"] for v in versions}
        previous_id, rule = previous_adapter(adapter, events, parents, adapters(con))
        previous_eval = _evaluation_row(con, previous_id) if previous_id else None
    report, report_path = _eval_report(evaluation, Path(adapter["path"]))
    try:
        access = load_access(paths.access).describe()
    except AccessError as exc:
        access = {"error": str(exc)}
    previous = Previous(previous_id, rule, previous_eval,
                        _eval_report(previous_eval, paths.adapters / previous_id)[0] if previous_id else None)
    return DossierContext(paths=paths, adapter=adapter, dataset=dataset, sources=sources, stage_counts=stage_counts,
                          evaluation=evaluation, report=report, report_path=report_path, previous=previous,
                          events=events, integrity=integrity, access=access)
