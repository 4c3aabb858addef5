"""Where the pipeline keeps its files, and where the package itself is: one place, so the CLI, the
assets, the workers and the tests agree."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "FINE_TUNE_DATA_DIR"
REGISTRY_URL_ENV = "FINE_TUNE_REGISTRY_URL"

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The ``fine_tune_assets`` package folder (its ``defaults/`` hold the packaged policy and templates)."""
DEFAULTS_DIR = PACKAGE_ROOT / "defaults"
SOURCE_ROOT = PACKAGE_ROOT.parent
"""The folder above the package: the git checkout in a source install (its commit goes into lineage)."""


@dataclass(frozen=True)
class DataPaths:
    """The layout under ``$FINE_TUNE_DATA_DIR`` (default ``./data``)."""

    root: Path

    @classmethod
    def from_env(cls, data_dir: str | os.PathLike | None = None) -> DataPaths:
        value = data_dir or os.environ.get(DATA_DIR_ENV) or "data"
        return cls(Path(value).expanduser().resolve())

    @property
    def raw(self) -> Path:
        """Landing zone: drop JSONL / CSV / Parquet exports here."""
        return self.root / "raw"

    @property
    def mappings(self) -> Path:
        """Declared column-to-message mappings for tabular exports (YAML)."""
        return self.root / "mappings"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def scrub_policy(self) -> Path | None:
        """The deployment's scrub policy, when it has one; None means the packaged default."""
        candidate = self.config / "scrub_policy.yaml"
        return candidate if candidate.exists() else None

    @property
    def drift_policy(self) -> Path | None:
        """The deployment's drift policy, when it has one; None means the defaults of ``monitoring.policy``."""
        candidate = self.config / "drift_policy.yaml"
        return candidate if candidate.exists() else None

    @property
    def access(self) -> Path | None:
        """The deployment's roles file, when it has one; None means access control is off (``audit.access``)."""
        candidate = self.config / "access.yaml"
        return candidate if candidate.exists() else None

    @property
    def staging(self) -> Path:
        """Intermediate asset outputs, content-addressed. Holds raw text: same trust zone as raw/."""
        return self.root / "staging"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def adapters(self) -> Path:
        """Published adapters, one content-addressed folder each (with its evaluation under ``eval/``)."""
        return self.root / "adapters"

    @property
    def evaluation_spec(self) -> Path:
        """What the evaluation measures and the promotion gate demands (response format, terms, thresholds)."""
        return self.config / "evaluation.yaml"

    @property
    def registry(self) -> Path | str:
        """The registry (``registry.connect`` opens either): ``$FINE_TUNE_REGISTRY_URL``, a PostgreSQL URL,
        for a deployment shared by several machines; else the DuckDB file ``registry_file``."""
        return os.environ.get(REGISTRY_URL_ENV, "").strip() or self.registry_file

    @property
    def registry_file(self) -> Path:
        """The embedded registry, a DuckDB file (what ``registry migrate`` copies from by default)."""
        return self.root / "registry.duckdb"
