"""The drift policy: ``config/drift_policy.yaml``, validated, with a hash that goes into every report.

``DriftPolicy`` (pydantic) is the YAML as written and the loaded policy at once: unknown keys and
wrong types are errors that name the file and the field. Its ``policy_hash`` covers every value and
``DRIFT_LOGIC_VERSION``, so that an auditor can tell which rules made a decision.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..common.hashing import sha256_json

# Bump when a detector or the decision logic changes in a way that changes decisions.
DRIFT_LOGIC_VERSION = "2"


class DriftPolicyError(ValueError):
    """The drift policy file is unusable (names the file and the key)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowPolicy(_Strict):
    min_records: int = Field(200, ge=2, description="Below this many new records: insufficient_data")
    max_records: int = Field(2000, ge=2, description="Above this many: a deterministic subsample")

    @model_validator(mode="after")
    def _ordered(self):
        if self.max_records < self.min_records:
            raise ValueError("max_records must be at least min_records")
        return self


class DescriptorPolicy(_Strict):
    enabled: bool = True
    js_floor: float = Field(0.1, ge=0, le=1, description="A descriptor counts only from this Jensen-Shannon distance")
    per_task: bool = Field(True, description="Also compare each task (system prompt) on its own")
    min_task_records: int = Field(50, ge=2, description="A task needs this many records on both sides")


class NoveltyPolicy(_Strict):
    enabled: bool = True
    quantile: float = Field(0.99, gt=0, lt=1, description="Novel: above this quantile of the reference's scores")
    min_rate: float = Field(0.03, ge=0, le=1, description="The novel share must be at least this")


class TermsPolicy(_Strict):
    enabled: bool = True
    min_records: int = Field(5, ge=2, description="Terms used by fewer pooled records are not tested; a flagged "
                                                 "term is used by at least this many window records")
    min_share_increase: float = Field(0.03, ge=0, le=1, description="A term counts only if the share of window "
                                                                    "records using it rose by this much")


class ClassifierPolicy(_Strict):
    enabled: bool = True
    folds: int = Field(5, ge=2)
    permutations: int = Field(200, ge=10, description="Label permutations for the AUC's p-value")
    min_auc: float = Field(0.55, ge=0.5, le=1)
    max_features: int = Field(20000, ge=100, description="TF-IDF vocabulary cap (word 1-2-grams)")
    max_records_per_side: int = Field(1000, ge=20, description="Records of each side the classifier sees "
                                                               "(hash-ordered subsample): bounds its cost")


class ConfirmationPolicy(_Strict):
    consecutive_windows: int = Field(2, ge=1, description="Signals in this many consecutive disjoint windows confirm")
    hard_auc: float = Field(0.75, ge=0.5, le=1, description="A flagged classifier at this AUC confirms at once")
    hard_novelty_rate: float = Field(0.15, ge=0, le=1, description="A flagged novelty rate this high confirms at once")
    hard_families: int = Field(3, ge=1, description="This many families flagged together confirm at once")


class DriftPolicy(_Strict):
    """``config/drift_policy.yaml`` (see that file for the meaning of each key)."""

    alpha: float = Field(0.01, gt=0, le=1, description="Significance level of every family's test")
    seed: int = Field(0, description="Subsampling, the negative control's halves and the permutations")
    window: WindowPolicy = WindowPolicy()
    descriptors: DescriptorPolicy = DescriptorPolicy()
    novelty: NoveltyPolicy = NoveltyPolicy()
    terms: TermsPolicy = TermsPolicy()
    classifier: ClassifierPolicy = ClassifierPolicy()
    confirmation: ConfirmationPolicy = ConfirmationPolicy()
    cooldown_hours: float = Field(24.0, ge=0, description="No retraining request this soon after the last one")
    source: str = Field("", exclude=True, description="Where the policy was read from (not hashed)")

    @property
    def families(self) -> list[str]:
        return [name for name in ("descriptors", "novelty", "terms", "classifier") if getattr(self, name).enabled]

    def canonical(self) -> dict:
        return {**self.model_dump(), "logic_version": DRIFT_LOGIC_VERSION}

    @property
    def policy_hash(self) -> str:
        return sha256_json(self.canonical())


def load_drift_policy(path: str | Path | None = None) -> DriftPolicy:
    """Read and validate a drift policy file; without one, the defaults written in this module."""
    if path is None:
        return DriftPolicy(source="built-in defaults")
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DriftPolicyError(f"{path}: cannot read drift policy: {exc}") from None
    if not isinstance(raw, dict):
        raise DriftPolicyError(f"{path}: a drift policy is a mapping of keys, not {type(raw).__name__}")
    try:
        return DriftPolicy.model_validate(raw).model_copy(update={"source": str(path)})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        raise DriftPolicyError(f"{path}: {where}: {error['msg']}" if where else f"{path}: {error['msg']}") from None
