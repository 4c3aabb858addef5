"""Declared mappings from tabular exports (CSV, Parquet) to chat messages.

A mapping is a YAML file under ``$FINE_TUNE_DATA_DIR/mappings/``::

    name: helpdesk_tickets
    files: ["helpdesk_tickets_*.csv", "helpdesk_tickets_*.parquet"]   # globs relative to raw/
    messages:
      - {role: system, text: "You triage tickets ..."}                # a constant
      - {role: user, template: "Subject: {subject}\\n\\n{body}"}       # str.format over the row
      - {role: assistant, column: answer}                              # one column as is
      - {role: assistant, json_fields: {category: triage_category}}    # a JSON object from columns

Columns that no message names never enter the dataset (an export's customer_email column, say).
"""

from __future__ import annotations

import fnmatch
import json
import string
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..common.hashing import sha256_bytes

SOURCE_KINDS = ("text", "column", "template", "json_fields")


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the problem."""


class MissingValue(ValueError):
    """A row lacks a value the mapping needs; the message names the column, never the row's content."""


@dataclass(frozen=True)
class MessageSpec:
    role: str
    kind: str
    value: object  # str for text/column/template, dict[str, str] for json_fields

    def columns(self) -> set[str]:
        if self.kind == "column":
            return {self.value}
        if self.kind == "template":
            return {name for _, name, _, _ in string.Formatter().parse(self.value) if name}
        if self.kind == "json_fields":
            return set(self.value.values())
        return set()

    def render(self, row: dict) -> str:
        if self.kind == "text":
            return self.value
        if self.kind == "column":
            return _text(row, self.value)
        if self.kind == "template":
            return self.value.format(**{c: _text(row, c) for c in self.columns()})
        return json.dumps({key: _text(row, column) for key, column in self.value.items()}, ensure_ascii=False)


def _text(row: dict, column: str) -> str:
    value = row.get(column)
    if value is None or (isinstance(value, float) and value != value):
        raise MissingValue(f"column {column!r} is empty")
    text = str(value)
    if not text.strip():
        raise MissingValue(f"column {column!r} is empty")
    return text


@dataclass(frozen=True)
class Mapping:
    name: str
    files: tuple[str, ...]
    messages: tuple[MessageSpec, ...]
    path: Path
    sha256: str

    def matches(self, relative_path: str) -> bool:
        name = Path(relative_path).name
        return any(fnmatch.fnmatch(relative_path, g) or fnmatch.fnmatch(name, g) for g in self.files)

    def required_columns(self) -> set[str]:
        return set().union(*(spec.columns() for spec in self.messages))

    def to_messages(self, row: dict) -> list[dict]:
        return [{"role": spec.role, "content": spec.render(row)} for spec in self.messages]


def load_mapping(path: str | Path) -> Mapping:
    path = Path(path)
    raw = path.read_bytes()
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML ({exc})") from None
    except RecursionError:
        raise MappingError(f"{path}: not valid YAML (nested too deep)") from None
    if not isinstance(doc, dict):
        raise MappingError(f"{path}: expected a mapping with 'name', 'files' and 'messages'")
    for key in ("name", "files", "messages"):
        if key not in doc:
            raise MappingError(f"{path}: missing key {key!r}")
    if not isinstance(doc["messages"], list):
        raise MappingError(f"{path}: 'messages' must be a list of messages")
    specs = []
    for i, item in enumerate(doc["messages"], 1):
        kinds = [k for k in SOURCE_KINDS if k in item] if isinstance(item, dict) else []
        if not isinstance(item, dict) or "role" not in item or len(kinds) != 1:
            raise MappingError(f"{path}: message {i} needs 'role' and exactly one of {', '.join(SOURCE_KINDS)}")
        spec = MessageSpec(item["role"], kinds[0], item[kinds[0]])
        if problem := _spec_problem(spec):
            raise MappingError(f"{path}: message {i}: {problem}")
        specs.append(spec)
    files = doc["files"] if isinstance(doc["files"], list) else [doc["files"]]
    if not files or not all(isinstance(f, str) for f in files):
        raise MappingError(f"{path}: 'files' must be a glob or a list of globs")
    return Mapping(str(doc["name"]), tuple(files), tuple(specs), path, sha256_bytes(raw))


def _spec_problem(spec: MessageSpec) -> str | None:
    """What makes a message of a mapping unusable on every row, or None: found when the mapping loads, not as
    a crash at its first row."""
    if spec.kind == "json_fields":
        if not isinstance(spec.value, dict) or not spec.value:
            return "json_fields must map keys to column names"
        words = [spec.role, *spec.value.keys(), *spec.value.values()]
    else:
        words = [spec.role, spec.value]
    if not all(_is_text(w) for w in words):
        return f"role and {spec.kind} must be text"
    if spec.kind == "template":
        try:
            spec.render(dict.fromkeys(spec.columns(), "x"))
        except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
            return (f"template {spec.value!r} must name plain columns in braces ({{column}}; {{{{ for a brace): "
                    f"{type(exc).__name__}: {exc}")
    return None


def _is_text(value: object) -> bool:
    """A string UTF-8 can hold (YAML's ``"\\ud800"`` escape gives a lone surrogate, which it cannot)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_mappings(directory: str | Path) -> list[Mapping]:
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return [load_mapping(p) for p in sorted(directory.glob("*.y*ml"))]


def mapping_for(relative_path: str, mappings: list[Mapping]) -> Mapping | None:
    return next((m for m in mappings if m.matches(relative_path)), None)
