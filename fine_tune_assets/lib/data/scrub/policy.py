"""The scrub policy: what counts as PII, how sure a finding must be, and what replaces it.

A policy is a YAML file (its schema: ``schema.PolicyFile``); its hash (policy + recognizers file +
library and model versions) is the identity auditors see next to every scrubbed dataset, so that a
change of any input to detection changes the hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ...common.paths import DEFAULTS_DIR
from .nlp import SPACY_MODEL
from .schema import DEFAULT_KEY_ENV, PLACEHOLDER, PSEUDONYMIZE, OperatorSpec, PolicyFile
from .versions import versions

DEFAULT_POLICY = DEFAULTS_DIR / "scrub_policy.yaml"
# Bump when detection or replacement logic changes in a way that changes outputs.
# 2: dotted international phones (+44.20.7946.0385) no longer taken for dates
# 3: names found by cue phrases in any case (cues.py), one decision per conversation (consistency.py)
# 4: lower-case typos and camel-case products are not names, "Dear <Company>" is not a read-back,
#    a decided value is not propagated onto a product or a short acronym ("HaloBox", "NAT") and is
#    matched casefolded ("Kießling" decided, "KIESSLING" found); big cities from the time-zone
#    database are places, "from <place>" is no name cue, a title stays outside the placeholder
SCRUB_LOGIC_VERSION = "4"


class PolicyError(ValueError):
    """The policy file is invalid."""


@dataclass(frozen=True)
class ScrubPolicy:
    """What to detect and how to replace it, resolved from a policy file. Build with ``load_policy``."""

    entities: tuple[str, ...]
    score_threshold: float = 0.5
    entity_thresholds: Mapping[str, float] = field(default_factory=dict)
    operator: OperatorSpec = field(default_factory=lambda: OperatorSpec(type=PLACEHOLDER))
    entity_operators: Mapping[str, OperatorSpec] = field(default_factory=dict)
    pseudonym_key_env: str = DEFAULT_KEY_ENV
    pseudonym_length: int = 8
    recognizers_file: str | None = None
    spacy_model: str = SPACY_MODEL
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

    @property
    def recognizers_file_sha256(self) -> str | None:
        if not self.recognizers_file:
            return None
        return hashlib.sha256(Path(self.recognizers_file).read_bytes()).hexdigest()

    @functools.cached_property
    def hash(self) -> str:
        """sha256 of the canonical policy, the recognizers file content and the versions."""
        payload = {
            "policy": self.canonical(),
            "recognizers_file_sha256": self.recognizers_file_sha256,
            "versions": versions(self.spacy_model),
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: str) -> str:
    """``${VAR}`` and ``${VAR:-default}`` in paths."""
    return _ENV.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)


def _field_errors(exc: ValidationError) -> str:
    """``operators.PERSON.type: Input should be ...``, one per invalid field."""
    out = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(policy)"
        out.append(f"{where}: {'unknown key' if err['type'] == 'extra_forbidden' else err['msg']}")
    return "; ".join(out)


def policy_from_dict(data: Mapping[str, Any], base_dir: Path | None = None,
                     source: str | None = None) -> ScrubPolicy:
    """Validate a policy mapping (as read from YAML). Relative paths resolve against ``base_dir``."""
    try:
        spec = PolicyFile.model_validate(dict(data) if isinstance(data, Mapping) else data)
    except ValidationError as exc:
        raise PolicyError(f"invalid scrub policy {source or '<dict>'}: {_field_errors(exc)}") from None
    operators = dict(spec.operators)
    default_op = operators.pop("default", OperatorSpec(type=PLACEHOLDER))
    rec_file = spec.recognizers_file
    if rec_file:
        path = Path(_expand(rec_file)).expanduser()
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        path = path.resolve()
        if not path.is_file():
            raise PolicyError(f"recognizers_file: recognizers file not found: {path} "
                              f"(from policy {source or '<dict>'})")
        rec_file = str(path)
    return ScrubPolicy(
        entities=spec.entities,
        score_threshold=spec.score_threshold,
        entity_thresholds={k.upper(): v for k, v in spec.entity_thresholds.items()},
        operator=default_op,
        entity_operators={k.upper(): op for k, op in operators.items()},
        pseudonym_key_env=spec.pseudonymize.key_env,
        pseudonym_length=spec.pseudonymize.length,
        recognizers_file=rec_file or None,
        spacy_model=spec.spacy_model,
        name_heuristics=spec.name_heuristics,
        allow_list=spec.allow_list,
        residual_threshold=spec.residual_threshold,
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


__all__ = ["PolicyError", "ScrubPolicy", "load_policy", "policy_from_dict"]
