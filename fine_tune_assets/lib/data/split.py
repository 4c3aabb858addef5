"""Deterministic train/eval split by record hash (as Ludwig does): a record keeps its split as data grows."""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def split_of(record_id: str, eval_fraction: float, salt: str = "split-v1") -> str:
    digest = hashlib.sha256(f"{salt}:{record_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % BUCKETS
    return "eval" if bucket < round(eval_fraction * BUCKETS) else "train"
