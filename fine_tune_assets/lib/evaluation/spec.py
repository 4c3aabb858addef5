"""What an evaluation measures: ``config/evaluation.yaml``, validated, with its files loaded.

``EvalSpecFile`` (pydantic) is the YAML as written: unknown keys and wrong types are errors that name the
file and the field. ``EvalSpec`` is the loaded spec the evaluation runs on (the JSON Schema parsed, the
general prompts read); its ``to_dict`` is the spec's identity: ``spec_hash`` is part of every
``evaluation_id``, so a field added there changes the id of every evaluation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from ..common.hashing import sha256_json
from .metrics import PRIMARY_METRICS

EVAL_LOGIC_VERSION = "1"


class EvalSpecError(ValueError):
    """The evaluation configuration is unusable (names the file and the key)."""


# ---------------------------------------------------------------- the YAML file

def _spec_error(message: str) -> PydanticCustomError:
    """A check of ours; its message follows the field name ("primary_metric must be one of ...")."""
    return PydanticCustomError("eval_spec", message)


class ResponseFormatFile(BaseModel):
    """``response_format:`` either ``json_schema`` or ``regex`` (``json_schema`` wins when both are set)."""

    model_config = ConfigDict(extra="forbid")

    json_schema: str | None = Field(None, description="JSON Schema file (relative to the spec): the whole answer "
                                                       "must be one JSON value valid under it")
    regex: str | None = Field(None, description="Pattern the whole answer must match (re.fullmatch, DOTALL)")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise _spec_error(f"does not compile: {exc}") from None
        return value


class EvalSpecFile(BaseModel):
    """``config/evaluation.yaml`` as written (see that file for the meaning of each key)."""

    model_config = ConfigDict(extra="forbid")

    response_format: ResponseFormatFile | None = Field(
        None, description="The answer format; absent: no format is scored")
    accuracy_fields: list[str] | None = Field(
        None, description="Fields scored for exact match; empty: every schema property with an enum")
    domain_terms: list[str] | None = Field(
        None, description="Vocabulary whose recall in the answers is measured (whole words, any case)")
    general_prompts: str | None = Field(
        None, description="JSONL of general chats (relative to the spec): the regression check")
    primary_metric: str = Field("format_compliance", description="The metric the adapter must beat the base on")
    max_general_regression: float = Field(0.10, description="Largest allowed relative rise of the general loss")
    champion_tolerance: float = Field(0.0, ge=0, le=1, description="How far (relative) a retrained adapter may trail "
                                                                   "the adapter in production on the primary metric")
    max_new_tokens: int = Field(80, description="Greedy decoding budget per held-out prompt")
    generation_batch_size: int = Field(32, description="Prompts decoded together")
    loss_batch_size: int = Field(16, description="Rows per loss forward pass")
    examples_in_report: int = Field(4, description="Side-by-side examples shown in the report")

    @field_validator("primary_metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in PRIMARY_METRICS:
            raise _spec_error(f"must be one of {sorted(PRIMARY_METRICS)}, not {value!r}")
        return value


def _message(path: Path, exc: ValidationError) -> str:
    """The first problem, naming the field: unknown keys together, as the spec has always reported them."""
    errors = exc.errors()
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1)
    if unknown:
        return f"{path}: unknown key(s) {unknown}"
    error = errors[0]
    where = ".".join(map(str, error["loc"]))
    if error["type"] == "eval_spec":
        return f"{path}: {where} {error['msg']}"
    return f"{path}: {where}: {error['msg']}" if where else f"{path}: {error['msg']}"


# ---------------------------------------------------------------- the loaded spec

@dataclass(frozen=True)
class ResponseFormat:
    """The answer format: a JSON Schema (whole answer one JSON value) or a regex (whole answer matches)."""

    kind: str  # json_schema | regex | none
    name: str = ""
    schema: dict | None = None
    pattern: str | None = None

    def check(self, text: str) -> tuple[bool, Any]:
        """(complies, parsed JSON or None). Surrounding prose or code fences make an answer non-compliant."""
        text = text.strip()
        if self.kind == "regex":
            return re.fullmatch(self.pattern, text, flags=re.DOTALL) is not None, None
        if self.kind != "json_schema":
            return False, None
        try:
            value = json.loads(text)
        except ValueError:
            return False, None
        return self._validator.is_valid(value), value

    @cached_property
    def _validator(self):
        """Built once: every held-out answer of both models is checked against the same schema."""
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self.schema)

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "pattern": self.pattern}


@dataclass
class EvalSpec:
    """What to measure; loaded from ``config/evaluation.yaml`` (see that file for the meaning of each key)."""

    response_format: ResponseFormat = field(default_factory=lambda: ResponseFormat("none"))
    accuracy_fields: list[str] = field(default_factory=list)
    domain_terms: list[str] = field(default_factory=list)
    general_prompts: list[list[dict]] = field(default_factory=list)
    primary_metric: str = "format_compliance"
    max_general_regression: float = 0.10
    champion_tolerance: float = 0.0
    max_new_tokens: int = 80
    generation_batch_size: int = 32
    loss_batch_size: int = 16
    examples_in_report: int = 4
    source: str = ""

    def to_dict(self) -> dict:
        return {
            "response_format": {**self.response_format.describe(), "schema": self.response_format.schema},
            "accuracy_fields": self.accuracy_fields, "domain_terms": self.domain_terms,
            "general_prompts_sha256": sha256_json(self.general_prompts), "n_general_prompts": len(self.general_prompts),
            "primary_metric": self.primary_metric, "max_general_regression": self.max_general_regression,
            "champion_tolerance": self.champion_tolerance,
            "max_new_tokens": self.max_new_tokens, "generation_batch_size": self.generation_batch_size,
            "examples_in_report": self.examples_in_report, "logic_version": EVAL_LOGIC_VERSION,
        }

    @property
    def spec_hash(self) -> str:
        return sha256_json(self.to_dict())


def load_eval_spec(path: str | Path) -> EvalSpec:
    """Read and validate the YAML spec; relative file names are resolved against the spec's folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EvalSpecError(f"{path}: cannot read evaluation spec: {exc}") from None
    try:
        spec = EvalSpecFile.model_validate(raw)
    except ValidationError as exc:
        raise EvalSpecError(_message(path, exc)) from None
    fmt = _response_format(path, spec.response_format or ResponseFormatFile())
    fields = list(spec.accuracy_fields or [])
    if not fields and fmt.schema:
        fields = [k for k, v in (fmt.schema.get("properties") or {}).items() if isinstance(v, dict) and "enum" in v]
    return EvalSpec(
        response_format=fmt, accuracy_fields=fields, domain_terms=list(spec.domain_terms or []),
        general_prompts=_general_prompts(path, spec.general_prompts) if spec.general_prompts else [],
        primary_metric=spec.primary_metric, max_general_regression=spec.max_general_regression,
        champion_tolerance=spec.champion_tolerance, max_new_tokens=spec.max_new_tokens,
        generation_batch_size=spec.generation_batch_size,
        loss_batch_size=spec.loss_batch_size, examples_in_report=spec.examples_in_report, source=str(path))


def _response_format(path: Path, rf: ResponseFormatFile) -> ResponseFormat:
    if rf.json_schema is not None:
        schema_path = path.parent / rf.json_schema
        try:
            schema = json.loads(schema_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EvalSpecError(f"{path}: response_format.json_schema {schema_path}: {exc}") from None
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise EvalSpecError(f"{schema_path}: not a valid JSON Schema: {exc.message}") from None
        return ResponseFormat("json_schema", name=Path(rf.json_schema).name, schema=schema)
    if rf.regex is not None:
        return ResponseFormat("regex", name="regex", pattern=rf.regex)
    return ResponseFormat("none")


def _general_prompts(path: Path, name: str) -> list[list[dict]]:
    general_path = path.parent / name
    general: list[list[dict]] = []
    try:
        with open(general_path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        general.append(json.loads(line)["messages"])
                    except (ValueError, KeyError, TypeError):
                        raise EvalSpecError(f"{general_path}:{number}: expected {{\"messages\": [...]}}") from None
    except OSError as exc:
        raise EvalSpecError(f"{path}: general_prompts: {exc}") from None
    return general
