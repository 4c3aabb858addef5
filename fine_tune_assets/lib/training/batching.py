"""Shared-prefix batching (opt-in ``share_prefix``): batches whose rows open with the same tokens.

Rows of one task often open with the same long system prompt. The sampler draws each batch from
rows with the same opening; the collator splits off the batch's common prefix, which the trainer
runs once per batch (``trainer.CountingSFTTrainer.compute_loss``). The batches differ from the
default shuffle's, but are just as seeded: a resume sees the very same ones.
"""

from __future__ import annotations

import math
import random

from ..models.chat_template import IGNORE_INDEX
from ..models.shared_prefix import common_prefix, prefix_groups


class SharedPrefixBatchSampler:
    """Training batches (lists of row indices) that never mix rows with different openings (see
    ``models.shared_prefix.prefix_groups``), so each batch keeps the long prefix its rows share.

    Each epoch: rows shuffled within their group, cut into batches of ``batch_size`` (a group's last
    batch may be shorter), then the batch order shuffled; all from ``random.Random(seed, epoch)``, so
    the order is a pure function of seed and epoch (a resume that skips the batches already consumed
    in its epoch sees the very same ones). The Trainer calls ``set_epoch``.

    It deliberately has no ``batch_size`` attribute: accelerate's ``BatchSamplerShard`` would then
    hold back every short batch in mid-epoch (it expects only the last one to be short) and drop it.
    """

    def __init__(self, sequences: list[list[int]], batch_size: int, seed: int):
        self.groups = prefix_groups(sequences)
        self.rows_per_batch = batch_size
        self.seed = seed
        self.epoch = 0
        self.drop_last = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(f"share_prefix:{self.seed}:{epoch}")
        size, batches = self.rows_per_batch, []
        for group in self.groups:
            members = list(group)
            rng.shuffle(members)
            batches += [members[k:k + size] for k in range(0, len(members), size)]
        rng.shuffle(batches)
        return batches

    def __iter__(self):
        return iter(self.batches(self.epoch))  # built now, not lazily: the epoch is the one set before iter()

    def __len__(self) -> int:
        return sum(math.ceil(len(group) / self.rows_per_batch) for group in self.groups)


class SharedPrefixCollator:
    """A batch as its shared prefix plus right-padded suffixes.

    ``prefix_ids`` [1, P]: the tokens every row starts with, capped so that no label falls inside it
    or on the first suffix token (P <= first label index - 1 of every row; P = 0 when shorter than
    ``MIN_SHARED_PREFIX``). ``input_ids``/``attention_mask``/``labels`` [B, W]: each row's tokens
    after P, right-padded (pad ``pad_token_id``, label -100, mask 0).
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        ids = [list(e["input_ids"]) for e in examples]
        labels = [list(e["labels"]) for e in examples]
        first_label = min(next((k for k, y in enumerate(row) if y != IGNORE_INDEX), len(row)) for row in labels)
        shared = common_prefix(ids, first_label - 1)
        width = max(len(row) for row in ids) - shared
        batch_ids = torch.full((len(ids), width), self.pad_token_id, dtype=torch.long)
        batch_labels = torch.full((len(ids), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for j, (row, row_labels) in enumerate(zip(ids, labels, strict=True)):
            n = len(row) - shared
            batch_ids[j, :n] = torch.tensor(row[shared:])
            batch_labels[j, :n] = torch.tensor(row_labels[shared:])
            mask[j, :n] = 1
        return {"prefix_ids": torch.tensor([ids[0][:shared]], dtype=torch.long).reshape(1, shared),
                "input_ids": batch_ids, "attention_mask": mask, "labels": batch_labels}
