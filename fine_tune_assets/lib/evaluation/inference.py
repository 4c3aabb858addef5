"""The model passes of an evaluation: held-out and general-prompt loss, and greedy answers to every prompt.

Rows that share an opening (e.g. the system prompt) are batched together and that opening is computed once
through one key/value cache (``models.shared_prefix``); the numbers and answers are those of one row at a time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ..models.chat_template import IGNORE_INDEX
from ..models.shared_prefix import common_prefix, prefix_cache, prefix_groups
from .spec import EvalSpec

Progress = Callable[[str], None]


def _causal_parts(model):
    """(backbone, lm_head) of a causal LM, through a PEFT wrapper (LoRA layers are injected in place)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.base_model, base.get_output_embeddings()


def _batches(sequences: list[list[int]], batch_size: int) -> list[list[int]]:
    """Index batches that never mix rows with different openings (so each batch keeps its shared
    prefix, see ``shared_prefix``), sorted by length inside each group (little padding)."""
    batches = []
    for group in prefix_groups(sequences):
        members = sorted(group, key=lambda i: len(sequences[i]))
        batches += [members[k:k + batch_size] for k in range(0, len(members), batch_size)]
    return batches


def assistant_loss(model, rows: list[dict], pad_id: int, batch_size: int = 8) -> tuple[float | None, int]:
    """Token-weighted mean NLL over label tokens; only labelled positions go through the LM head."""
    import torch
    import torch.nn.functional as F

    backbone, head = _causal_parts(model)
    device = head.weight.device
    total, count = 0.0, 0
    with torch.no_grad():
        for chunk in _batches([r["input_ids"] for r in rows], batch_size):
            batch = [rows[i] for i in chunk]
            # Share only positions whose next token is not a label: the loss needs no hidden state there.
            first_label = min(next((k for k, y in enumerate(r["labels"]) if y != IGNORE_INDEX), len(r["labels"]))
                              for r in batch)
            shared = common_prefix([r["input_ids"] for r in batch], first_label - 1)
            width = max(len(r["input_ids"]) for r in batch) - shared
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(batch), shared + width), dtype=torch.long)
            mask[:, :shared] = 1
            for j, r in enumerate(batch):
                n = len(r["input_ids"]) - shared
                ids[j, :n], labels[j, :n] = torch.tensor(r["input_ids"][shared:]), torch.tensor(r["labels"][shared:])
                mask[j, shared:shared + n] = 1
            cache = prefix_cache(backbone, batch[0]["input_ids"][:shared], len(batch), device) if shared else None
            hidden = backbone(input_ids=ids.to(device), attention_mask=mask.to(device), cache=cache,
                              use_cache=cache is not None).last_hidden_state
            shifted = labels[:, 1:].to(device)
            keep = shifted != IGNORE_INDEX
            logits = head(hidden[:, :-1][keep]).float()
            total += float(F.cross_entropy(logits, shifted[keep], reduction="sum"))
            count += int(keep.sum())
    return (total / count if count else None), count


def generate_answers(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int,
                     progress: Progress | None = None, label: str = "") -> tuple[list[str], dict]:
    """Greedy answers in batches that share their prompt's opening (e.g. the system prompt) through one
    key/value cache; each row's own part is left-padded after the shared part, and the attention mask
    hides the padding (positions come from the mask, so every row sees the positions it would alone)."""
    import torch

    encoded = [tokenizer(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"] for p in prompts]
    stop_ids = sorted({tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
                      - {None, tokenizer.unk_token_id})
    pad_id = tokenizer.pad_token_id
    backbone, head = _causal_parts(model)
    device = head.weight.device
    answers: list[str] = [""] * len(prompts)
    new_tokens, done = 0, 0
    started = time.perf_counter()
    for chunk in _batches(encoded, batch_size):
        rows = [encoded[i] for i in chunk]
        shared = common_prefix(rows, min(len(r) for r in rows) - 1)
        width = max(len(r) for r in rows) - shared
        ids = torch.full((len(rows), shared + width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, r in enumerate(rows):
            ids[j, :shared], mask[j, :shared] = torch.tensor(r[:shared]), 1
            own = r[shared:]
            ids[j, shared + width - len(own):], mask[j, shared + width - len(own):] = torch.tensor(own), 1
        with torch.no_grad():
            cache = prefix_cache(backbone, rows[0][:shared], len(rows), device) if shared else None
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), cache=cache,
                                 max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None,
                                 top_k=None, eos_token_id=stop_ids, pad_token_id=pad_id)
        for row, index in zip(out[:, ids.shape[1]:].tolist(), chunk, strict=True):
            cut = next((k for k, tok in enumerate(row) if tok in stop_ids), len(row))
            new_tokens += cut
            answers[index] = tokenizer.decode(row[:cut], skip_special_tokens=True)
        done += len(chunk)
        if progress:
            rate = done / (time.perf_counter() - started)
            progress(f"{label} generation {done}/{len(prompts)} prompts, ETA {(len(prompts) - done) / rate:.0f} s")
    seconds = time.perf_counter() - started
    return answers, {"generation_seconds": seconds, "mean_generated_tokens": new_tokens / max(len(prompts), 1),
                     "n_generated": len(prompts)}


def model_pass(model, tokenizer, eval_rows, general_rows, prompts, spec: EvalSpec, say: Progress,
               side: str) -> tuple[dict, list[str]]:
    """(metrics, answers) of the model as it is now (adapter on or off): losses, perplexities and generation."""
    eval_loss, eval_tokens = assistant_loss(model, eval_rows, tokenizer.pad_token_id, spec.loss_batch_size)
    general_loss = assistant_loss(model, general_rows, tokenizer.pad_token_id, spec.loss_batch_size)[0] \
        if general_rows else None
    say(f"{side}: eval loss {eval_loss:.4f} over {eval_tokens} tokens")
    answers, gen = generate_answers(model, tokenizer, prompts, spec.max_new_tokens, spec.generation_batch_size,
                                    say, side)
    metrics = {"eval_loss": eval_loss, "perplexity": math.exp(eval_loss) if eval_loss is not None else None,
               "eval_tokens": eval_tokens, "general_loss": general_loss,
               "general_perplexity": math.exp(general_loss) if general_loss is not None else None, **gen}
    return metrics, answers
