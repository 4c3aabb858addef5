"""The train and eval splits as token rows, checked before any model is loaded.

The tokenizer's stock chat template is swapped for its marked training copy only after that copy
renders the first rows byte-identically (``models.chat_template``); a row with no trainable token
fails here, naming the split and the row, rather than training on nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..models.chat_template import (
    IGNORE_INDEX,
    check_template_equivalence,
    read_conversations,
    tokenize_split,
    training_chat_template,
)

TEMPLATE_CHECK_ROWS = 64  # rows rendered with both templates before training


@dataclass(frozen=True)
class TokenizedSplits:
    template: str  # the training template (with {% generation %} markers), saved with the adapter
    train: list[dict[str, list[int]]]
    eval: list[dict[str, list[int]]]

    def train_token_counts(self) -> tuple[int, int]:
        """Tokens in the train split, and how many of them carry a label (are trained on)."""
        return (sum(len(r["input_ids"]) for r in self.train),
                sum(sum(1 for x in r["labels"] if x != IGNORE_INDEX) for r in self.train))


def load_tokenizer(base_model_dir: str | Path):
    """The base model's tokenizer, with a pad token for generation."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir))
    if tokenizer.pad_token is None:
        # The collator is padding-free; a pad token is only needed by generation. Never mask eos as pad.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenize_splits(tokenizer, train_path: str | Path, eval_path: str | Path, max_seq_length: int) -> TokenizedSplits:
    template = training_chat_template(tokenizer)
    train_conversations = read_conversations(train_path)
    eval_conversations = read_conversations(eval_path)
    check_template_equivalence(tokenizer, template, (train_conversations + eval_conversations)[:TEMPLATE_CHECK_ROWS])
    return TokenizedSplits(template,
                           tokenize_split(tokenizer, train_conversations, template, max_seq_length, "train"),
                           tokenize_split(tokenizer, eval_conversations, template, max_seq_length, "eval"))
