"""LoRA training on a tiny locally built model: real TRL/PEFT runs, no mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fine_tune_assets.lib.models.chat_template import (
    IGNORE_INDEX,
    SMOLLM2_TEMPLATE,
    TrainingDataError,
    check_template_equivalence,
    tokenize_conversation,
    tokenize_split,
    training_chat_template,
)
from fine_tune_assets.lib.models.loading import peft_wrapping
from fine_tune_assets.lib.training import TrainingConfig, train_adapter
from fine_tune_assets.lib.training.trainer import counting_sft_trainer_class
from fine_tune_assets_tests.factories import REPO, SYSTEM, triage_examples, write_jsonl
from fine_tune_assets_tests.tiny_model import corpus_conversations

pytestmark = pytest.mark.slow  # every test here needs the tiny model (built once per session, ~30-45 s)


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.fixture(scope="module")
def triage_files(tmp_path_factory) -> tuple[Path, Path]:
    rows = triage_examples()
    train = [r for i, r in enumerate(rows) if i % 8 not in (3, 6)]
    held_out = [r for i, r in enumerate(rows) if i % 8 in (3, 6)]
    folder = tmp_path_factory.mktemp("triage")
    return write_jsonl(folder / "train.jsonl", train), write_jsonl(folder / "eval.jsonl", held_out)


def test_training_templates_render_byte_identically(tiny_tokenizer):
    """The marker copies must not change a single byte of what the model sees."""
    conversations = corpus_conversations(limit=40) + [r["messages"] for r in triage_examples()]
    conversations.append([{"role": "user", "content": "no system"}, {"role": "assistant", "content": "ok"},
                          {"role": "user", "content": "again"}, {"role": "assistant", "content": "sure"}])
    check_template_equivalence(tiny_tokenizer, training_chat_template(tiny_tokenizer), conversations)

    smol_folder = REPO / "data" / "models" / "SmolLM2-135M-Instruct" / "tokenizer"
    if (smol_folder / "tokenizer_config.json").exists():
        from transformers import AutoTokenizer

        smol = AutoTokenizer.from_pretrained(str(smol_folder))
        assert smol.chat_template.strip() == SMOLLM2_TEMPLATE.strip()
        check_template_equivalence(smol, training_chat_template(smol), conversations)
    else:  # still check SmolLM2's copy against its stock text on the tiny tokenizer
        tiny_tokenizer_copy = tiny_tokenizer.__class__.from_pretrained(tiny_tokenizer.name_or_path)
        tiny_tokenizer_copy.chat_template = SMOLLM2_TEMPLATE
        check_template_equivalence(tiny_tokenizer_copy, training_chat_template(tiny_tokenizer_copy), conversations)


def test_labels_are_masked_exactly_outside_assistant_turns(tiny_tokenizer):
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "bill is wrong"},
                {"role": "assistant", "content": '{"category": "billing", "priority": "low"}'},
                {"role": "user", "content": "and the router?"},
                {"role": "assistant", "content": '{"category": "outage", "priority": "high"}'}]
    template = training_chat_template(tiny_tokenizer)
    row = tokenize_conversation(tiny_tokenizer, messages, template)
    ids, labels = row["input_ids"], row["labels"]
    assert tiny_tokenizer.decode(ids) == tiny_tokenizer.apply_chat_template(messages, tokenize=False)
    for token, label in zip(ids, labels, strict=True):
        assert label in (token, IGNORE_INDEX)
    spans, current = [], []
    for token, label in zip(ids, labels, strict=True):
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    # Exactly the two answers plus their end-of-turn token (the stop the model must learn) are trained.
    assert [tiny_tokenizer.decode(s) for s in spans] == [m["content"] + "<|im_end|>" for m in messages
                                                          if m["role"] == "assistant"]
    masked = tiny_tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab == IGNORE_INDEX])
    expected = tiny_tokenizer.apply_chat_template(messages, tokenize=False)
    for m in messages:
        if m["role"] == "assistant":
            expected = expected.replace(m["content"] + "<|im_end|>", "", 1)
    assert masked == expected


def test_rows_without_trainable_tokens_fail_fast(tiny_tokenizer, tiny_model_dir, tmp_path):
    template = training_chat_template(tiny_tokenizer)
    good = triage_examples()[0]["messages"]
    no_answer = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hello"}]
    with pytest.raises(TrainingDataError, match=r"train row 1 has no trainable .*no non-empty assistant turn"):
        tokenize_split(tiny_tokenizer, [good, no_answer], template, 512, "train")
    with pytest.raises(TrainingDataError, match=r"row 0 .*max_seq_length=8"):
        tokenize_split(tiny_tokenizer, [good], template, 8, "eval")

    train = write_jsonl(tmp_path / "train.jsonl", [{"messages": good}, {"messages": no_answer}])
    held_out = write_jsonl(tmp_path / "eval.jsonl", [{"messages": good}])
    with pytest.raises(TrainingDataError, match="train row 1"):
        train_adapter(train, held_out, tiny_model_dir, tmp_path / "adapter", TrainingConfig(max_steps=1))
    assert not (tmp_path / "adapter").exists()


def test_train_adapter_learns_and_saves_a_loadable_adapter(tiny_model_dir, triage_files, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    train_path, eval_path = triage_files
    config = TrainingConfig(learning_rate=3e-3, num_epochs=6, per_device_batch_size=4, gradient_accumulation_steps=1,
                            max_seq_length=256, save_steps=20, logging_steps=5, lora_dropout=0.0,
                            eval_before_training=True)
    events: list[dict] = []
    output = tmp_path / "adapter"
    metrics = train_adapter(train_path, eval_path, tiny_model_dir, output, config, progress=events.append)

    assert metrics["steps"] == 54  # 36 rows / batch 4 -> 9 steps per epoch, 6 epochs
    assert metrics["eval_loss"] < metrics["eval_loss_before"] - 1.0, metrics  # measured: 2.79 -> 0.76
    assert metrics["trained_tokens"] > 0 and metrics["tokens_per_s"] > 0 and metrics["train_seconds"] > 0
    assert metrics["trained_tokens"] == 6 * metrics["train_dataset_trained_tokens"]  # every row, every epoch
    assert events and events[-1]["step"] == 54 and all(e["tokens_per_s"] >= 0 for e in events)
    assert any(e["loss"] is not None and e["eta_s"] is not None for e in events)
    assert metrics["resumed_from_step"] is None
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja",
                 "training_metrics.json", "training_config.json", "training_log.json"):
        assert (output / name).exists(), name
    assert not output.with_name("adapter.checkpoints").exists(), "checkpoints are deleted after success"
    curve = json.loads((output / "training_log.json").read_text())
    assert curve[0] == {"step": 0, "eval_loss": pytest.approx(metrics["eval_loss_before"])}
    assert curve[-1]["step"] == 54 and curve[-1]["eval_loss"] == pytest.approx(metrics["eval_loss"])
    trained = [r for r in curve if "loss" in r]
    assert [r["step"] for r in trained][:3] == [1, 5, 10]
    assert all(isinstance(r[k], float) for r in trained for k in ("loss", "learning_rate", "grad_norm", "epoch"))
    assert trained[-1]["loss"] < trained[0]["loss"]

    tokenizer = AutoTokenizer.from_pretrained(str(output))
    assert "{% generation %}" in tokenizer.chat_template
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    with peft_wrapping():
        model = PeftModel.from_pretrained(base, str(output)).eval()
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "my bill doubled this month!!"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.no_grad():
        generated = model.generate(**prompt, max_new_tokens=24, do_sample=False,
                                   eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(generated[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    # The format and the stop token are learnt (the labels collapse on a model this small: not asserted).
    assert set(json.loads(answer)) == {"category", "priority"}, answer


def test_train_adapter_4bit_path_on_cpu(tiny_model_dir, triage_files, tmp_path):
    """QLoRA loading (NF4 through bitsandbytes) trains on CPU too, so the CUDA memory saver is testable here."""
    pytest.importorskip("bitsandbytes")
    train_path, eval_path = triage_files
    config = TrainingConfig(learning_rate=3e-3, num_epochs=2, per_device_batch_size=4, gradient_accumulation_steps=1,
                            max_seq_length=256, save_steps=1000, lora_dropout=0.0, load_in_4bit=True,
                            eval_before_training=True, export_merged=True)
    notes: list[dict] = []
    metrics = train_adapter(train_path, eval_path, tiny_model_dir, tmp_path / "adapter", config, progress=notes.append)
    assert metrics["steps"] == 18
    assert metrics["eval_loss"] < metrics["eval_loss_before"], metrics
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    assert not (tmp_path / "adapter.merged").exists()  # merging into 4-bit weights is skipped, and says so
    assert any("export_merged skipped" in n.get("message", "") for n in notes)


def test_padding_free_batches_keep_conversations_apart(tiny_model_dir, tiny_tokenizer):
    """Flattened rows must not attend to each other: same loss as a padded batch.

    transformers only builds the block-diagonal mask from position_ids when no KV cache is passed:
    a plain forward call (use_cache defaults to True) silently lets rows attend across boundaries.
    SFTTrainer.compute_loss forces use_cache=False; any hand-written loss code must do the same.
    """
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    template = training_chat_template(tiny_tokenizer)
    rows = tokenize_split(tiny_tokenizer, [r["messages"] for r in triage_examples()[:4]], template, 256, "train")
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="sdpa").eval()
    pad = tiny_tokenizer.pad_token_id
    with torch.no_grad():
        padded = model(**DataCollatorForLanguageModeling(pad_token_id=pad)(rows)).loss.item()
        flat = DataCollatorForLanguageModeling(pad_token_id=pad, padding_free=True)(rows)
        assert flat["input_ids"].shape[0] == 1
        assert model(**flat, use_cache=False).loss.item() == pytest.approx(padded, abs=1e-4)
        assert model(**flat).loss.item() != pytest.approx(padded, abs=1e-3)  # the pitfall, still present


def test_label_only_loss_equals_the_models_own_loss(tiny_model_dir, tiny_tokenizer, tmp_path):
    """CountingSFTTrainer.compute_loss projects only labelled positions through the LM head; it must
    give the plain forward's mean NLL over label tokens, padded or padding-free, train or eval, with
    the LoRA layers active, and divide by ``num_items_in_batch`` when the Trainer passes it."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    template = training_chat_template(tiny_tokenizer)
    rows = tokenize_split(tiny_tokenizer, [r["messages"] for r in triage_examples()[:6]], template, 256, "train")
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, activation_checkpointing=False,
                     padding_free=True, max_length=None, per_device_eval_batch_size=len(rows), report_to="none")
    lora = LoraConfig(r=8, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    with peft_wrapping():  # the trainer wraps the model with get_peft_model
        trainer = counting_sft_trainer_class()(
            model=AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="sdpa"), args=args,
            train_dataset=Dataset.from_list(rows), eval_dataset=Dataset.from_list(rows),
            processing_class=tiny_tokenizer, peft_config=lora)
    assert trainer.label_only_loss
    model, pad = trainer.model, tiny_tokenizer.pad_token_id
    padded = DataCollatorForLanguageModeling(pad_token_id=pad)(rows)
    flat = DataCollatorForLanguageModeling(pad_token_id=pad, padding_free=True)(rows)
    with torch.no_grad():
        for batch in (padded, flat):
            for training in (True, False):
                model.train(training)
                expected = model(**batch, use_cache=False).loss.item()  # the model's own mean NLL
                assert trainer.compute_loss(model, dict(batch)).item() == pytest.approx(expected, abs=1e-4)
                labelled = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
                summed = trainer.compute_loss(model, dict(batch), num_items_in_batch=torch.tensor(3 * labelled))
                assert summed.item() == pytest.approx(expected / 3, abs=1e-4)
        with model.disable_adapter():  # LoRA really ran above: without it the loss differs
            assert trainer.compute_loss(model, dict(flat)).item() != pytest.approx(expected, abs=1e-3)
    assert trainer.evaluate()["eval_loss"] == pytest.approx(expected, abs=1e-4)  # one eval batch: all rows


def test_export_merged_gives_the_adapters_logits(tiny_model_dir, triage_files, tmp_path):
    """``export_merged`` writes base + LoRA as one plain model next to the adapter: same logits as
    the base model with the adapter loaded through PEFT."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fine_tune_assets.lib.training.export import merged_dir_for

    train_path, eval_path = triage_files
    config = TrainingConfig(learning_rate=3e-3, max_steps=4, per_device_batch_size=4, gradient_accumulation_steps=1,
                            max_seq_length=256, save_steps=1000, eval_after_training=False, export_merged=True)
    output = tmp_path / "adapter"
    train_adapter(train_path, eval_path, tiny_model_dir, output, config)
    merged_dir = merged_dir_for(output)
    assert merged_dir == tmp_path / "adapter.merged" and not (output / "merged").exists()

    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir)).eval()
    with peft_wrapping():
        peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                                         str(output)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(merged_dir))
    ids = tokenizer.apply_chat_template(triage_examples()[0]["messages"], return_tensors="pt", return_dict=True)
    with torch.no_grad():
        expected, got = peft(**ids).logits, merged(**ids).logits
        base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))(**ids).logits
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    assert not torch.allclose(base, expected, atol=1e-3), "the adapter changed the model"


def _shared_prefix_trainer(tiny_model_dir, tiny_tokenizer, tmp_path, rows, share_prefix=True):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig

    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, activation_checkpointing=False,
                     padding_free=True, max_length=None, per_device_train_batch_size=4, report_to="none", seed=7)
    lora = LoraConfig(r=8, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False,
                      task_type="CAUSAL_LM")
    with peft_wrapping():  # the trainer wraps the model with get_peft_model
        return counting_sft_trainer_class()(
            model=AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="sdpa"), args=args,
            train_dataset=Dataset.from_list(rows), eval_dataset=Dataset.from_list(rows[:2]),
            processing_class=tiny_tokenizer, peft_config=lora, share_prefix=share_prefix)


def test_shared_prefix_gives_the_same_loss_and_gradients(tiny_model_dir, tiny_tokenizer, tmp_path):
    """A batch whose rows share a system prompt: the prefix run once (with gradients) and shared through
    a KV cache gives the loss and LoRA gradients of the padding-free path (dropout 0)."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from fine_tune_assets.lib.training.batching import SharedPrefixCollator

    template = training_chat_template(tiny_tokenizer)
    conversations = [r["messages"] for r in triage_examples()]
    rows = tokenize_split(tiny_tokenizer, [conversations[i] for i in (0, 9, 17, 30)], template, 256, "train")
    trainer = _shared_prefix_trainer(tiny_model_dir, tiny_tokenizer, tmp_path, rows)
    model, pad = trainer.model, tiny_tokenizer.pad_token_id
    model.train()
    shared = SharedPrefixCollator(pad)(rows)
    flat = DataCollatorForLanguageModeling(pad_token_id=pad, padding_free=True)(rows)
    prefix = shared["prefix_ids"].shape[1]
    first_label = min(next(k for k, y in enumerate(r["labels"]) if y != IGNORE_INDEX) for r in rows)
    assert 16 <= prefix <= first_label - 1
    assert shared["prefix_ids"][0].tolist() == rows[0]["input_ids"][:prefix]
    assert shared["input_ids"].shape[0] == 4 and (shared["labels"][:, 0] == IGNORE_INDEX).all()
    for j, row in enumerate(rows):  # the suffix is the rest of the row, right-padded
        n = len(row["input_ids"]) - prefix
        assert shared["input_ids"][j, :n].tolist() == row["input_ids"][prefix:]
        assert shared["labels"][j, :n].tolist() == row["labels"][prefix:]
        assert shared["attention_mask"][j].sum() == n
    labelled = int((flat["labels"][:, 1:] != IGNORE_INDEX).sum())
    assert int((shared["labels"][:, 1:] != IGNORE_INDEX).sum()) == labelled

    def loss_and_grads(batch):
        model.zero_grad()
        loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=torch.tensor(labelled))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        return loss.item(), grads

    expected_loss, expected = loss_and_grads(flat)
    loss, got = loss_and_grads(shared)
    assert loss == pytest.approx(expected_loss, abs=1e-5)
    assert got.keys() == expected.keys() and len(got) > 0
    for name in expected:
        assert torch.allclose(got[name], expected[name], atol=1e-5), (name, (got[name] - expected[name]).abs().max())
    assert any(g.abs().max() > 1e-4 for g in expected.values())  # gradients are not trivially zero

    # The counter: the prefix once per batch plus the real suffix tokens; logically once per row.
    before = dict(trainer.counter)
    trainer.training_step(model, dict(shared), num_items_in_batch=torch.tensor(labelled))
    total = sum(len(r["input_ids"]) for r in rows)
    assert trainer.counter["input_tokens"] - before["input_tokens"] == total - 3 * prefix
    assert trainer.counter["logical_input_tokens"] - before["logical_input_tokens"] == total
    assert trainer.counter["trained_tokens"] - before["trained_tokens"] == labelled


def test_shared_prefix_batches_never_mix_openings_and_are_seeded(tiny_model_dir, tiny_tokenizer, tmp_path):
    from fine_tune_assets.lib.training.batching import SharedPrefixBatchSampler

    # c differs from a at token 10 (inside the 16-token grouping key); c and d share their opening with
    # no other row, so they are pooled into one batch of their own instead of two batches of one.
    openings = {"a": [1] * 70, "b": [2] * 70, "c": [1] * 10 + [3] * 60, "d": [4] * 70}
    sizes = {"a": 11, "b": 6, "c": 1, "d": 1}
    sequences, group_of = [], []
    for name, opening in openings.items():
        for i in range(sizes[name]):
            sequences.append(opening + [100 + i] * (i + 1))
            group_of.append(name)
    sampler = SharedPrefixBatchSampler(sequences, 4, seed=3)
    assert not hasattr(sampler, "batch_size")  # accelerate would hold back (drop) short mid-epoch batches
    assert len(sampler) == 3 + 2 + 1
    orders = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) and all(1 <= len(b) <= 4 for b in batches)
        assert sorted(i for b in batches for i in b) == list(range(len(sequences)))
        assert sorted({group_of[i] for i in b} for b in batches if len({group_of[i] for i in b}) > 1) == \
            [{"c", "d"}]
        fresh = SharedPrefixBatchSampler(sequences, 4, seed=3)
        fresh.set_epoch(epoch)
        assert list(fresh) == batches  # a pure function of seed and epoch (what a resume relies on)
        orders.append(batches)
    assert orders[0] != orders[1]
    assert SharedPrefixBatchSampler(sequences, 4, seed=4).batches(0) != orders[0]

    # Through the Trainer's (accelerate-prepared) dataloader: every row once per epoch, short batches kept.
    template = training_chat_template(tiny_tokenizer)
    conversations = [r["messages"] for r in triage_examples()[:10]] + corpus_conversations(limit=3)
    rows = tokenize_split(tiny_tokenizer, conversations, template, 2048, "train")
    trainer = _shared_prefix_trainer(tiny_model_dir, tiny_tokenizer, tmp_path, rows)
    batches = list(trainer.get_train_dataloader())
    assert sum(b["input_ids"].shape[0] for b in batches) == len(rows)
    logical = sum(b["input_ids"].shape[0] * b["prefix_ids"].shape[1] + int(b["attention_mask"].sum()) for b in batches)
    assert logical == sum(len(r["input_ids"]) for r in rows)
    assert any(b["prefix_ids"].shape[1] > 0 for b in batches)


def test_train_adapter_with_shared_prefix(tiny_model_dir, triage_files, tmp_path):
    # Rows group by their first 64 tokens: give them a system prompt longer than that, as in the real data.
    long_system = SYSTEM + " Categories: billing, outage, account. Priorities: low, high. " * 3
    paths = []
    for path in triage_files:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for row in rows:
            row["messages"][0]["content"] = long_system
        paths.append(write_jsonl(tmp_path / path.name, rows))
    train_path, eval_path = paths
    config = TrainingConfig(learning_rate=3e-3, num_epochs=3, per_device_batch_size=4, gradient_accumulation_steps=1,
                            max_seq_length=256, save_steps=1000, logging_steps=3, lora_dropout=0.0,
                            eval_before_training=True, share_prefix=True)
    assert config.training_hash != TrainingConfig(**{**config.to_dict(), "share_prefix": False}).training_hash
    output = tmp_path / "adapter"
    metrics = train_adapter(train_path, eval_path, tiny_model_dir, output, config)
    assert metrics["steps"] == 27  # one opening: 36 rows / batch 4 -> 9 batches per epoch
    assert metrics["eval_loss"] < metrics["eval_loss_before"] - 0.5, metrics
    assert metrics["trained_tokens"] == 3 * metrics["train_dataset_trained_tokens"]
    assert metrics["logical_input_tokens"] == 3 * metrics["train_dataset_tokens"]  # every row, every epoch
    assert metrics["input_tokens"] < 0.8 * metrics["logical_input_tokens"]  # the prefix ran once per batch
    assert metrics["logical_tokens_per_s"] > metrics["tokens_per_s"] > 0
    assert json.loads((output / "training_config.json").read_text())["share_prefix"] is True
    assert (output / "adapter_model.safetensors").exists()
