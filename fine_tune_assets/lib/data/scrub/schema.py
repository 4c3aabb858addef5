"""The scrub policy file as written: pydantic models, so that an invalid file fails naming the field.

The models follow the YAML's own layout (an ``operators`` section, a ``pseudonymize`` section).
``policy.policy_from_dict`` validates a file with ``PolicyFile`` and resolves it (paths, upper-cased
entity names) into the ``ScrubPolicy`` the scrubber runs with and the policy hash is taken from.
Unknown keys are errors: a misspelt key would otherwise silently leave a default in force.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .nlp import SPACY_MODEL

OperatorName = Literal["placeholder", "pseudonymize", "redact", "mask", "replace"]
PLACEHOLDER = "placeholder"
PSEUDONYMIZE = "pseudonymize"
DEFAULT_KEY_ENV = "FINE_TUNE_PSEUDONYM_KEY"

# numbers written unquoted in YAML (an allow-listed id, an entity key) are taken as their text
_CONFIG = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class OperatorSpec(BaseModel):
    """One replacement operator: ``placeholder``, ``pseudonymize`` or Presidio's redact/mask/replace.

    Written as a name (``redact``) or as a mapping; keys other than ``type`` and ``params`` are
    parameters too (``{type: mask, masking_char: "*", chars_to_mask: 6, from_end: true}``).
    """

    model_config = ConfigDict(_CONFIG, frozen=True)

    type: OperatorName = Field(description="placeholder (<PERSON_1>, numbered per conversation), pseudonymize "
                                           "(<PERSON_3fa2c1d0>, keyed HMAC), or Presidio's redact, mask, replace")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="Parameters of Presidio's operator (e.g. masking_char, new_value)")

    @model_validator(mode="before")
    @classmethod
    def _name_or_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"type": value}
        if not isinstance(value, Mapping):
            raise PydanticCustomError("operator", "operator must be a name or a mapping, got {value}",
                                      {"value": repr(value)})
        rest = dict(value)
        out = {key: rest.pop(key) for key in ("type", "params") if key in rest}
        if "params" in out and out["params"] is None:  # `params:` with nothing under it, as before
            out["params"] = {}
        if rest and isinstance(out.get("params") or {}, Mapping):
            out["params"] = {**(out.get("params") or {}), **rest}
        return out

    def as_dict(self) -> dict:
        return {"type": self.type, "params": dict(self.params)}


class PseudonymizeSection(BaseModel):
    """Settings of the ``pseudonymize`` operator."""

    model_config = _CONFIG

    key_env: str = Field(default=DEFAULT_KEY_ENV,
                         description="Environment variable that holds the HMAC key (the key itself is never "
                                     "written to a policy)")
    length: int = Field(default=8, description="Hex characters of a pseudonym (the operator keeps 4 to 16)")


class PolicyFile(BaseModel):
    """A scrub policy YAML (``fine_tune_assets/defaults/scrub_policy.yaml`` is the packaged default)."""

    model_config = _CONFIG

    version: int = Field(default=1, description="Version of the policy file format")
    entities: tuple[str, ...] = Field(
        default=(), validate_default=True,
        description="Entity types to detect and replace (Presidio's names, plus STREET_ADDRESS, DATE_OF_BIRTH "
                    "and those of the recognizers file)")
    score_threshold: float = Field(default=0.5, gt=0.0, le=1.0,
                                   description="A finding is kept when its score reaches this")
    entity_thresholds: dict[str, float] = Field(default_factory=dict,
                                                description="Per-entity thresholds that override score_threshold")
    operators: dict[str, OperatorSpec] = Field(
        default_factory=dict,
        description="Replacement per entity type; the key 'default' applies to the rest (placeholder when absent). "
                    "A single name applies to every type")
    pseudonymize: PseudonymizeSection = Field(default_factory=PseudonymizeSection,
                                              description="Settings of the pseudonymize operator")
    recognizers_file: str | None = Field(default=None,
                                         description="Extra recognizers in Presidio's YAML format: relative to the "
                                                     "policy file, absolute, or ${ENV_VAR:-default}")
    spacy_model: str = Field(default=SPACY_MODEL, description="Installed spaCy model Presidio analyses with")
    name_heuristics: bool = Field(default=True, description="Gazetteer, proper-noun and case-normalised person "
                                                            "detection on top of spaCy's NER")
    allow_list: tuple[str, ...] = Field(default=(), description="Exact strings that are never scrubbed")
    residual_threshold: float = Field(default=0.5, description="Score at which the pattern-only second scan of "
                                                               "scrubbed text (residual_pii) blocks")

    @field_validator("entities", "entity_thresholds", "pseudonymize", "allow_list", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        """``key:`` with no value in YAML is None: read it as the key's empty default."""
        if value is None:
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)
        return value

    @field_validator("operators", mode="before")
    @classmethod
    def _one_name_for_all(cls, value: Any) -> Any:
        if value is None:
            return {}
        return {"default": value} if isinstance(value, str) else value

    @field_validator("entities")
    @classmethod
    def _upper_and_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        entities = tuple(dict.fromkeys(e.upper() for e in value))
        if not entities:
            raise PydanticCustomError("no_entities", "policy lists no entities")
        return entities
