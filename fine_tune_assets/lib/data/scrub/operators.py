"""Replacement operators, plugged into Presidio's AnonymizerEngine with ``add_anonymizer``.

``placeholder``: ``<PERSON_1>``, numbered per conversation, so a model still learns that the
same person came back in a later turn (the pattern of Presidio's documented instance-counter
example). ``pseudonymize``: ``<PERSON_3fa2c1d0>``, keyed HMAC-SHA256 of the normalised value, the
same across a whole dataset and not reversible without the key.
"""

from __future__ import annotations

import regex
from presidio_anonymizer.operators import Operator, OperatorType

from .pseudonyms import Pseudonymizer, PseudonymKeyError, key_fingerprint, normalize_value

__all__ = ["PLACEHOLDER_RE", "PlaceholderNumbering", "PlaceholderOperator", "PseudonymKeyError", "PseudonymOperator",
           "Pseudonymizer", "key_fingerprint", "normalize_value"]

# <PERSON_1>, <EMAIL_ADDRESS_12>, <PERSON_3fa2c1d0>, <PERSON> (Presidio's replace)
PLACEHOLDER_RE = regex.compile(r"<([A-Z][A-Z0-9]*(?:_[A-Z][A-Z0-9]*)*)(?:_(\d+|[0-9a-f]{4,16}))?>")

class PlaceholderNumbering:
    """Per-conversation numbering: the same normalised value of a type keeps the same number.

    A lone first or last name that belongs to exactly one full name already seen ("Anna" after
    "Anna Kowalska") reuses that number, and the other way round. Numbers continue after the
    highest placeholder already present, so scrubbing partly scrubbed text cannot collide.
    """

    def __init__(self, existing_text: str = ""):
        self._numbers: dict[str, dict[str, int]] = {}
        self._next: dict[str, int] = {}
        for m in PLACEHOLDER_RE.finditer(existing_text):
            if m.group(2) and m.group(2).isdigit():
                etype, n = m.group(1), int(m.group(2))
                self._next[etype] = max(self._next.get(etype, 1), n + 1)

    def number(self, value: str, entity_type: str) -> int:
        key = normalize_value(value, entity_type)
        table = self._numbers.setdefault(entity_type, {})
        if key in table:
            return table[key]
        if entity_type == "PERSON" and key:
            alias = self._person_alias(key, table)
            if alias is not None:
                table[key] = alias
                return alias
        n = self._next.get(entity_type, 1)
        self._next[entity_type] = n + 1
        table[key] = n
        return n

    @staticmethod
    def _person_alias(key: str, table: dict[str, int]) -> int | None:
        parts = key.split()
        if len(parts) == 1:
            hits = {n for k, n in table.items() if len(k.split()) > 1 and key in k.split()}
        else:
            hits = {n for k, n in table.items() if len(k.split()) == 1 and k in parts}
        return hits.pop() if len(hits) == 1 else None


class PlaceholderOperator(Operator):
    """Presidio operator ``placeholder``: ``<TYPE_n>`` from a ``PlaceholderNumbering`` in params."""

    def operate(self, text: str | None = None, params: dict | None = None) -> str:
        numbering: PlaceholderNumbering = params["numbering"]
        entity_type = params["entity_type"]
        return f"<{entity_type}_{numbering.number(text, entity_type)}>"

    def validate(self, params: dict | None = None) -> None:
        if not isinstance((params or {}).get("numbering"), PlaceholderNumbering):
            raise ValueError("placeholder operator needs params['numbering'] (a PlaceholderNumbering)")

    def operator_name(self) -> str:
        return "placeholder"

    def operator_type(self) -> OperatorType:
        return OperatorType.Anonymize


class PseudonymOperator(Operator):
    """Presidio operator ``pseudonymize``: ``<TYPE_hmac>`` from a ``Pseudonymizer`` in params."""

    def operate(self, text: str | None = None, params: dict | None = None) -> str:
        pseudonymizer: Pseudonymizer = params["pseudonymizer"]
        entity_type = params["entity_type"]
        return f"<{entity_type}_{pseudonymizer.token(text, entity_type)}>"

    def validate(self, params: dict | None = None) -> None:
        if not isinstance((params or {}).get("pseudonymizer"), Pseudonymizer):
            raise ValueError("pseudonymize operator needs params['pseudonymizer']")

    def operator_name(self) -> str:
        return "pseudonymize"

    def operator_type(self) -> OperatorType:
        return OperatorType.Anonymize
