"""Chat templates with ``{% generation %}`` markers, and tokenisation into assistant-only labels.

The loss counts assistant tokens only; their labels come from the template's ``{% generation %}``
markers. Stock templates (SmolLM2's, plain ChatML) have none: TRL refuses to patch SmolLM2's and
transformers alone silently returns an all-zero mask. So ``chat_templates/`` ships, next to each
stock template ``X.jinja``, an ``X_training.jinja`` copy with markers that renders byte-identically
(``check_template_equivalence`` checks it on the real rows before training). Training saves that copy
with the adapter, so training and inference see the same text and evaluation reads it back.

Template files are package data; their text is hashed into adapters, so it is kept byte-identical
(the file's final newline is not part of the template).

Tokenisation happens here, not in TRL: with ``padding_free`` and no packing TRL does not enforce
``max_length``, and it drops fully-masked rows silently only when truncating. Here every row is
truncated to ``max_seq_length`` and a row with no trainable token is an error that names it.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

IGNORE_INDEX = -100  # the label of a position that carries no loss (PyTorch's cross-entropy default)


class TrainingDataError(ValueError):
    """The data cannot train anything useful (e.g. an example with no trainable assistant token)."""


def read_template(name: str) -> str:
    """The packaged template ``chat_templates/<name>.jinja``."""
    text = files(__package__).joinpath("chat_templates", f"{name}.jinja").read_bytes().decode("utf-8")
    return text.removesuffix("\n")


SMOLLM2_TEMPLATE = read_template("smollm2")
CHATML_TEMPLATE = read_template("chatml")
# Stock template (stripped) -> its copy with the assistant's content and <|im_end|> (the stop token it
# must learn) marked.
TRAINING_TEMPLATES = {SMOLLM2_TEMPLATE.strip(): read_template("smollm2_training"),
                      CHATML_TEMPLATE.strip(): read_template("chatml_training")}


def training_chat_template(tokenizer) -> str:
    """The template with ``{% generation %}`` markers to train with (see module docstring)."""
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        raise TrainingDataError("the tokenizer has no chat template; cannot build assistant-only labels")
    if "generation %}" in template:
        return template
    try:
        return TRAINING_TEMPLATES[template.strip()]
    except KeyError:
        raise TrainingDataError(
            "no training copy (with {% generation %} markers) of this tokenizer's chat template is known; "
            "add one to fine_tune_assets/lib/models/chat_templates/ and TRAINING_TEMPLATES") from None


def check_template_equivalence(tokenizer, training_template: str, conversations: list[list[dict]]) -> None:
    """Fail unless the training template renders exactly like the tokenizer's own on these rows."""
    for index, messages in enumerate(conversations):
        for prompt in (False, True):
            stock = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
            marked = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt,
                                                   chat_template=training_template)
            if stock != marked:
                raise TrainingDataError(
                    f"training chat template renders row {index} differently from the model's template; "
                    "training and inference would see different text")


def read_conversations(path: str | Path) -> list[list[dict]]:
    """The ``messages`` of each row of a chat JSONL file."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line)["messages"])
    return rows


def tokenize_conversation(tokenizer, messages: list[dict], training_template: str,
                          max_seq_length: int | None = None) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (-100 outside assistant content + end-of-turn), truncated at the end."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True, chat_template=training_template)
    input_ids = list(out["input_ids"])
    mask = list(out["assistant_masks"])
    labels = [tok if bit else IGNORE_INDEX for tok, bit in zip(input_ids, mask, strict=True)]
    if max_seq_length:
        input_ids, labels = input_ids[:max_seq_length], labels[:max_seq_length]
    return {"input_ids": input_ids, "labels": labels}


def tokenize_split(tokenizer, conversations: list[list[dict]], training_template: str, max_seq_length: int,
                   split: str) -> list[dict[str, list[int]]]:
    """Tokenise a split; a row without a trainable token is an error naming the row and the cause."""
    rows = []
    for index, messages in enumerate(conversations):
        row = tokenize_conversation(tokenizer, messages, training_template, max_seq_length)
        if all(label == IGNORE_INDEX for label in row["labels"][1:]):  # label 0 is never predicted
            has_assistant = any(m.get("role") == "assistant" and m.get("content") for m in messages)
            cause = (f"its assistant turn starts after max_seq_length={max_seq_length} tokens"
                     if has_assistant else "it has no non-empty assistant turn")
            raise TrainingDataError(
                f"{split} row {index} has no trainable (assistant) token: {cause}. Every label would be -100; "
                "fix or drop the row (training would otherwise silently learn nothing from it).")
        rows.append(row)
    if not rows:
        raise TrainingDataError(f"{split} split is empty")
    return rows
