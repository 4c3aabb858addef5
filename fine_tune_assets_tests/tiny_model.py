"""A tiny Llama chat model built locally, so training tests run offline in seconds.

Random weights barely respond to LoRA (an eval-loss comparison would show noise), so the model
gets a short full pre-training on the sample chat exports rendered with its ChatML template.
The result is a normal transformers folder (config, safetensors, tokenizer with chat template).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from fine_tune_assets.lib.models.chat_template import CHATML_TEMPLATE  # stock ChatML: no generation markers
from fine_tune_assets_tests.factories import REPO

RAW_DIR = REPO / "data" / "raw"

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def corpus_conversations(raw_dir: Path = RAW_DIR, limit: int = 600) -> list[list[dict]]:
    """Conversations from the sample chat exports; broken lines are skipped (the raw data has some)."""
    conversations: list[list[dict]] = []
    for path in sorted(raw_dir.glob("*.jsonl")):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    messages = json.loads(line)["messages"]
                    if messages and all(isinstance(m.get("content"), str) and isinstance(m.get("role"), str)
                                        for m in messages):
                        conversations.append([{"role": m["role"], "content": m["content"]} for m in messages])
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
                if len(conversations) >= limit:
                    return conversations
    return conversations


def render_chatml(messages: list[dict]) -> str:
    """The same text CHATML_TEMPLATE renders (the tokenizer does not exist yet when the corpus is made)."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


def fallback_texts() -> list[str]:
    """Used only when the sample data is missing, so the fixture still builds."""
    words = ["router", "bill", "fiber", "plan", "account", "outage", "refund", "password", "modem", "signal", "speed",
             "support"]
    return [" ".join(words[(i + j) % len(words)] for j in range(40)) for i in range(200)]


def build_tiny_model(target: str | Path, vocab_size: int = 2048, hidden_size: int = 192, layers: int = 4,
                     pretrain_steps: int = 180, seq_len: int = 128, batch_size: int = 8,
                     seed: int = 0) -> dict:
    """Train a BPE tokenizer, build a small Llama, pre-train it briefly, save it; return stats."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    started = time.perf_counter()
    target = Path(target)
    torch.manual_seed(seed)
    conversations = corpus_conversations()
    texts = fallback_texts() if not conversations else None

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        bos_token=None, unk_token=None)
    tokenizer.chat_template = CHATML_TEMPLATE
    if texts is None:
        texts = [render_chatml(c) for c in conversations]
    # JSON answers are what the tests train on: make braces, quotes and digits part of the corpus.
    texts += [json.dumps({"category": w, "priority": p}) for w in ("billing", "outage", "account")
              for p in ("low", "high")] * 20
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHATML_TEMPLATE

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    # One long token stream cut into fixed windows: the simplest full pre-training.
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
    windows = torch.tensor(stream[: (len(stream) // seq_len) * seq_len]).view(-1, seq_len)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * min(s, pretrain_steps) / pretrain_steps)))
    generator = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for _ in range(pretrain_steps):
        batch = windows[torch.randint(0, len(windows), (batch_size,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    stats = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "corpus_tokens": len(stream),
        "pretrain_steps": pretrain_steps,
        "pretrain_loss_first": losses[0],
        "pretrain_loss_last": sum(losses[-10:]) / 10,
        "seconds": time.perf_counter() - started,
    }
    (target / "tiny_model_stats.json").write_text(json.dumps(stats, indent=2))
    return stats


if __name__ == "__main__":
    import sys
    import tempfile

    print(json.dumps(build_tiny_model(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()), indent=2))
