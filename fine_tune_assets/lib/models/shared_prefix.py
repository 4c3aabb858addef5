"""Rows that open with the same tokens (typically one task's system prompt) share that prefix's
keys and values: computed once per batch instead of once per row.

On the sample data the triage system prompt is ~270 of a row's ~350 tokens. Rows attending to a
shared prefix cache see the same tokens at the same positions as alone, so losses, gradients and
greedy answers are unchanged (tests check all three); only the compute drops. Used by evaluation
(always) and by training (``share_prefix``).
"""

from __future__ import annotations

MIN_SHARED_PREFIX = 16  # shorter common openings are not worth a separate forward pass


def common_prefix(rows: list[list[int]], limit: int) -> int:
    """Length of the token prefix all rows share, capped at ``limit``; 0 when shorter than the minimum."""
    length = 0
    for column in zip(*rows, strict=False):
        if length >= limit or any(tok != column[0] for tok in column):
            break
        length += 1
    return length if length >= MIN_SHARED_PREFIX else 0


def prefix_groups(sequences: list[list[int]]) -> list[list[int]]:
    """Row indices grouped by their first ``MIN_SHARED_PREFIX`` tokens, in a stable order.

    Rows that share their opening with no other row are pooled into one last group (batched
    together without a shared prefix) rather than left as batches of one.
    """
    groups: dict[tuple, list[int]] = {}
    for i, seq in enumerate(sequences):
        groups.setdefault(tuple(seq[:MIN_SHARED_PREFIX]), []).append(i)
    shared = [members for _, members in sorted(groups.items()) if len(members) > 1]
    alone = sorted(i for members in groups.values() if len(members) == 1 for i in members)
    return shared + ([alone] if alone else [])


def prefix_cache(backbone, prefix: list[int], batch_size: int, device):
    """The prefix's key/value cache, computed once and repeated for every row of the batch.

    Gradients flow through it when called with grad enabled (training)."""
    import torch

    cache = backbone(input_ids=torch.tensor([prefix], device=device), use_cache=True).cache
    cache.batch_repeat_interleave(batch_size)
    return cache
