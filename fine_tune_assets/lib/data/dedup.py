"""Exact and near-duplicate detection over scrubbed conversations.

Exact: the same scrubbed content (two raw records that differ only in PII become one).
Near: the same text after folding case, punctuation and whitespace, or a MinHash estimate of character
5-gram Jaccard similarity at or above a threshold (datasketch LSH, so it scales past pairwise).
The system prompt is left out: every example of a task shares it. Within a group of duplicates the
record with the smallest record_id is kept, so the choice does not depend on file order and a kept
record stays kept as data is added (unless a new record with a smaller id joins its group).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH

from ..common.hashing import sha256_json, sha256_text

_NON_WORD = re.compile(r"[^\w<>]+")


def content_hash(messages: list[dict]) -> str:
    return sha256_json(messages)


def normalized_text(messages: list[dict]) -> str:
    text = " ".join(m["content"] for m in messages if m["role"] != "system")
    return _NON_WORD.sub(" ", text.lower()).strip()


def _shingles(text: str, n: int = 5) -> set[bytes]:
    """Character n-grams: robust for short texts, where one changed word moves word n-grams a lot."""
    if len(text) <= n:
        return {text.encode()}
    return {text[i:i + n].encode() for i in range(len(text) - n + 1)}


NUM_PERM = 128
SEED = 1
SCHEME = "affine32"  # datasketch 2's default, named: cached signatures must not change meaning on upgrade
SIGNATURE_DTYPE = np.uint32  # the scheme's hash values are 32-bit: 512 bytes a signature


@functools.cache
def _permutations(num_perm: int):
    """datasketch draws them anew for every MinHash (a fifth of its cost); they depend on the seed alone."""
    return MinHash(num_perm=num_perm, seed=SEED, scheme=SCHEME).permutations


@dataclass(frozen=True)
class Fingerprint:
    """What duplicate detection needs of a conversation (what the validate cache keeps for each record)."""

    content_sha256: str  # the exact scrubbed content
    normal_sha256: str  # the normalized text
    signature: bytes  # its MinHash, SIGNATURE_DTYPE values


def fingerprint(messages: list[dict], num_perm: int = NUM_PERM) -> Fingerprint:
    text = normalized_text(messages)
    minhash = MinHash(num_perm=num_perm, seed=SEED, permutations=_permutations(num_perm), scheme=SCHEME)
    minhash.update_batch(list(_shingles(text)))
    return Fingerprint(content_hash(messages), sha256_text(text), minhash.hashvalues.astype(SIGNATURE_DTYPE).tobytes())


@dataclass
class Duplicate:
    record_id: str
    kind: str  # duplicate_exact | duplicate_near
    kept_record_id: str


class DuplicateFinder:
    """Feed records in ascending record_id order; ``check`` says whether each one repeats an earlier one.

    Near duplicates: the LSH banding of datasketch's ``MinHashLSH`` (its bands for the threshold, the
    same candidates), kept in plain dicts of band bytes. datasketch's index spends ~76 µs a record (a
    byte swap per band, a storage layer, a second key table), this ~23 µs, which matters because every
    run checks every record, old ones included. Memory: ~2.6 KB a kept record (``bench/validate_memory.py``).
    """

    def __init__(self, threshold: float = 0.85, num_perm: int = NUM_PERM):
        self.threshold = threshold
        self.num_perm = num_perm
        self._exact: dict[str, str] = {}
        self._normal: dict[str, str] = {}
        # LSH only proposes candidates: a lower band threshold misses fewer pairs near the cut-off,
        # and each candidate is then compared on its MinHash estimate against the real threshold.
        self._bands = MinHashLSH(threshold=max(0.5, threshold - 0.15), num_perm=num_perm).hashranges
        # a bucket holds one record id (most do) or a list of them: a list per bucket cost 0.9 KB a record
        self._buckets: list[dict[bytes, str | list[str]]] = [{} for _ in self._bands]
        self._signatures: dict[str, bytes] = {}

    def check(self, record_id: str, messages: list[dict] | None = None,
              known: Fingerprint | None = None) -> Duplicate | None:
        """``known``: ``fingerprint(messages)`` when already computed (the validate cache keeps it)."""
        known = known or fingerprint(messages, self.num_perm)
        if known.content_sha256 in self._exact:
            return Duplicate(record_id, "duplicate_exact", self._exact[known.content_sha256])
        self._exact[known.content_sha256] = record_id
        if known.normal_sha256 in self._normal:
            return Duplicate(record_id, "duplicate_near", self._normal[known.normal_sha256])
        self._normal[known.normal_sha256] = record_id
        values = np.frombuffer(known.signature, dtype=SIGNATURE_DTYPE)
        keys = [values[start:end].tobytes() for start, end in self._bands]
        candidates: set[str] = set()
        for bucket, key in zip(self._buckets, keys):
            held = bucket.get(key)
            if held is not None:
                candidates.update((held,) if isinstance(held, str) else held)
        for candidate in sorted(candidates):
            other = np.frombuffer(self._signatures[candidate], dtype=SIGNATURE_DTYPE)
            if np.count_nonzero(other == values) / len(values) >= self.threshold:  # MinHash.jaccard
                return Duplicate(record_id, "duplicate_near", candidate)
        for bucket, key in zip(self._buckets, keys):
            held = bucket.get(key)
            if held is None:
                bucket[key] = record_id
            elif isinstance(held, str):
                bucket[key] = [held, record_id]
            else:
                held.append(record_id)
        self._signatures[record_id] = known.signature
        return None
