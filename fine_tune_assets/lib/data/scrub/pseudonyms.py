"""Keyed pseudonyms and the value normalisation that placeholders share, without Presidio.

Apart from ``operators.py`` (Presidio's anonymizer operators) so that reading the key's fingerprint,
which every scrub stage does to name its data version, does not import Presidio (seconds).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata

import regex

_COMPACT_TYPES = {"PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "ACCOUNT_NUMBER", "EMPLOYEE_ID"}


def normalize_value(text: str, entity_type: str) -> str:
    """The form two mentions must share to get the same placeholder or pseudonym."""
    value = unicodedata.normalize("NFKC", text).casefold().strip()
    if entity_type in _COMPACT_TYPES:
        return regex.sub(r"[^0-9a-z+]", "", value)
    value = regex.sub(r"['’]s$", "", value)
    value = regex.sub(r"[\s\p{P}]+", " ", value).strip()
    return value


class PseudonymKeyError(RuntimeError):
    """The pseudonymisation key is not set."""


class Pseudonymizer:
    """Keyed HMAC-SHA256 pseudonyms. The key lives only in this object; repr never shows it."""

    def __init__(self, key_env: str, length: int = 8):
        key = os.environ.get(key_env)
        if not key:
            raise PseudonymKeyError(
                f"pseudonymize needs a secret key in the environment variable {key_env}; "
                f"set it (e.g. `export {key_env}=$(openssl rand -hex 32)`) and keep it out of the repository"
            )
        self._key = key.encode("utf-8")
        self.key_env = key_env
        self.length = max(4, min(int(length), 16))

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_env={self.key_env!r}, length={self.length})"

    __str__ = __repr__

    def __reduce__(self):  # never pickle the key; a worker re-reads its environment
        return (Pseudonymizer, (self.key_env, self.length))

    @property
    def fingerprint(self) -> str:
        """Names the key without revealing it: pseudonyms made under another key are other pseudonyms."""
        return hmac.new(self._key, b"fine-tune-assets pseudonym key fingerprint", hashlib.sha256).hexdigest()[:16]

    def token(self, value: str, entity_type: str) -> str:
        msg = f"{entity_type}\x1f{normalize_value(value, entity_type)}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[: self.length]


def key_fingerprint(policy) -> str | None:
    """The fingerprint of the pseudonym key a policy uses (``None`` when it makes no pseudonyms).

    Part of the scrub stage's data version and of its cache's identity: rotating the key must not reuse
    records pseudonymized under the old one.
    """
    if not policy.uses_pseudonyms:
        return None
    return Pseudonymizer(policy.pseudonym_key_env, policy.pseudonym_length).fingerprint


