"""The cost and hardware plan: exact model sizes from a config alone, memory against what the project measured
on an H200 and against the seed's hardware table, the dataset's workload, the price table and the CLI."""

import json
import math

import pytest

from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.training import TrainingConfig
from fine_tune_assets.lib.training.model_size import load_config, model_size
from fine_tune_assets.lib.training.plan import (
    HOURS_PER_MONTH,
    PlanError,
    Prices,
    Workload,
    check_against_measurements,
    dataset_workload,
    hardware_entry,
    make_plan,
    planned_against_actual,
)
from fine_tune_assets_tests.factories import REPO, cli, publish_test_dataset

PRICES = REPO / "data" / "config" / "prices.yaml"
CONFIGS = REPO / "data" / "config" / "model_configs"
H200 = REPO / "docs" / "results" / "h200-2026-11-30" / "run2-varlen"


def _llama(**shape):
    from transformers import LlamaConfig

    return LlamaConfig(**{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300, **shape})


@pytest.mark.parametrize("targets", ["all-linear", ["q_proj", "v_proj"]])
def test_sizes_from_the_meta_device_equal_a_real_model_and_peft(targets):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    config = _llama(tie_word_embeddings=False)
    size = model_size(config, "tiny", 8, targets)
    model = AutoModelForCausalLM.from_config(config)
    assert size.parameters == sum(p.numel() for p in model.parameters())
    assert size.quantizable_parameters == size.parameters - 2 * 300 * 64 - (2 * 2 + 1) * 64  # embed, head, norms
    peft = get_peft_model(model, LoraConfig(r=8, target_modules=targets))
    assert size.lora_parameters == sum(p.numel() for p in peft.parameters() if p.requires_grad)


def test_a_config_file_alone_sizes_a_70b_model():
    config, name = load_config(str(CONFIGS / "llama-2-70b.json"), "unused")
    size = model_size(config, name, 16, "all-linear")
    assert name == "llama-2-70b" and size.parameters == 68_976_648_192  # Llama-2-70B: 69B
    assert size.kv_size == 8 * 128  # grouped-query attention: 8 KV heads of 128


@pytest.mark.parametrize(("result", "method"), [("qlora_b16", "qlora"), ("lora_bf16_b16", "lora")])
def test_peak_memory_is_within_15_percent_above_the_h200_measurement(result, method):
    """The 1.07B Llama of docs/training-gpu.md (LoRA r16 on q/k/v/o, batch 16): the estimate must not
    understate the measured peak, nor overstate it by more than 15%."""
    measured = json.loads((H200 / f"train_throughput_cuda_{result}.json").read_text())
    config = _llama(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                    num_key_value_heads=8, vocab_size=49152, tie_word_embeddings=True)
    size = model_size(config, "1b", 16, ["q_proj", "k_proj", "v_proj", "o_proj"])
    assert size.parameters == measured["model_parameters"]
    check = check_against_measurements(size, measured["results"]["project"], method)
    assert 0 <= check["error"] <= 0.15, check


def _plan(name: str, method: str, rows: int = 4, tokens: float = 1024):
    config, name = load_config(str(CONFIGS / f"{name}.json"), "unused")
    size = model_size(config, name, 16, "all-linear")
    work = Workload(method, rows, tokens, 1.0, 10_000_000, 3.0, "test")
    return make_plan(size, work, Prices.load(PRICES))


def _gpus(plan: dict, hardware: str):
    return next(o["gpus"] for o in plan["costs"]["hardware"] if o["hardware"] == hardware)


def test_the_seed_hardware_table():
    """7B QLoRA on one 24 GB card; 70B QLoRA on 80 GB cards (the seed says 2-4; at 4 x 1,024 tokens one
    holds it, at 4 x 4,096 it takes 2); 70B in full does not fit eight of them."""
    assert _gpus(_plan("llama-2-7b", "qlora"), "RTX4090-24GB") == 1
    assert _gpus(_plan("llama-2-7b", "lora"), "RTX4090-24GB") == 1  # 13.5 GB of bf16 weights: tight, but fits
    assert _gpus(_plan("llama-2-7b", "full"), "H100-80GB") == 2
    seventy = _plan("llama-2-70b", "qlora")
    assert 35 < seventy["peak_memory_gb"]["weights"] < 38  # 69B x 0.516 bytes, embeddings in bf16
    assert _gpus(seventy, "H100-80GB") == 1 and _gpus(seventy, "RTX4090-24GB") == 4
    assert _gpus(_plan("llama-2-70b", "qlora", rows=4, tokens=4096), "H100-80GB") == 2
    assert _gpus(_plan("llama-2-70b", "full"), "H100-80GB") is None


def test_hours_money_and_break_even_follow_the_price_table():
    plan = _plan("llama-2-7b", "qlora")
    prices = Prices.load(PRICES)
    h100 = next(o for o in plan["costs"]["hardware"] if o["hardware"] == "H100-80GB")
    expected_hours = 10_000_000 * 6 * plan["parameters"] / (0.094 * 989e12) / 3600
    assert math.isclose(h100["gpu_hours"], expected_hours, rel_tol=0.01)
    assert math.isclose(h100["cost"], expected_hours * 2.99, rel_tol=0.01)
    assert plan["costs"]["api_fine_tuning"]["gpt-4o-mini-2024-07-18"]["training_cost"] == 30.0
    b = plan["break_even"]
    per_request = (1500 * 0.15 + 150 * 0.60) / 1e6
    monthly = 0.71 * HOURS_PER_MONTH + h100["cost"] / 12
    assert b["self_hosted_monthly_cost"] == pytest.approx(monthly, abs=0.01)
    assert b["break_even_requests_per_month"] == pytest.approx(monthly / per_request, rel=1e-4)
    assert {"parameters", "peak_memory_gb", "training_tokens", "gpu_hours", "costs"} <= set(plan)
    assert all(h.source for h in prices.hardware)


def test_a_price_without_a_source_is_refused(tmp_path):
    table = PRICES.read_text().replace(
        'source: "https://openai.com/api/pricing/ (fine-tuning: training $3.00/1M; base model inference $0.15 in, '
        '$0.60 out)"', "source: ''")
    (tmp_path / "prices.yaml").write_text(table)
    with pytest.raises(PlanError, match=r"gpt-4o-mini-2024-07-18.*no source"):
        Prices.load(tmp_path / "prices.yaml")
    with pytest.raises(PlanError, match="not a usable price table"):
        Prices.load(tmp_path / "missing.yaml")


def test_the_workload_of_a_dataset_version(tmp_path):
    """Labelled share: characters of trained assistant turns (a weight-0 turn is context); epochs from
    max_steps; tokens cut at max_seq_length."""
    conversations = [[{"role": "user", "content": "u" * 30}, {"role": "assistant", "content": "a" * 10},
                      {"role": "user", "content": "v" * 50}, {"role": "assistant", "content": "b" * 10, "weight": 0}]
                     for _ in range(4)] + [[{"role": "user", "content": f"q{i}" * 5},
                                            {"role": "assistant", "content": "c" * 10}] for i in range(4)]
    paths = DataPaths.from_env(tmp_path / "data")
    publish_test_dataset(paths, tmp_path, conversations, eval_fraction=0.0)
    train = next(paths.datasets.glob("*/train.parquet"))
    config = TrainingConfig(max_steps=10, per_device_batch_size=2, gradient_accumulation_steps=2, max_seq_length=12)
    work = dataset_workload(train, config, "lora", "dataset x")
    import duckdb

    with duckdb.connect() as con:
        n_rows, tokens = con.execute("SELECT count(*), sum(least(n_tokens, 12)) FROM read_parquet(?)",
                                     [str(train)]).fetchone()
    assert n_rows == 8 and work.epochs == round(10 * 2 * 2 / 8, 3)
    assert work.training_tokens == round(tokens * 40 / 8)
    labelled = 4 * 10 + 4 * 10
    total = 4 * (30 + 10 + 50 + 10) + sum(len(f"q{i}" * 5) + 10 for i in range(4))
    assert work.label_fraction == round(labelled / total, 4)
    assert work.tokens_per_row <= 12


def test_plan_command(tmp_path):
    data = tmp_path / "data"
    (data / "config").mkdir(parents=True)
    (data / "config" / "prices.yaml").write_text(PRICES.read_text())
    result = cli("plan", "--base", str(CONFIGS / "llama-2-7b.json"), data_dir=data)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: 0 dataset versions match 'latest'"), result.stderr
    publish_test_dataset(DataPaths.from_env(data), tmp_path)
    result = cli("plan", "--base", str(CONFIGS / "llama-2-7b.json"), "--method", "qlora", "--json", data_dir=data)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["parameters"] == 6_738_415_616 and plan["method"] == "qlora"
    assert plan["training_config"] == "training defaults" and plan["workload"]["epochs"] == 3
    text = cli("plan", "--base", str(CONFIGS / "llama-2-7b.json"), data_dir=data)
    assert text.returncode == 0, text.stderr
    assert "peak GPU memory (one GPU)" in text.stdout and "H100-80GB" in text.stdout and "break-even" in text.stdout


def test_a_run_is_priced_on_the_hardware_it_used():
    prices = Prices.load(PRICES)
    assert hardware_entry(prices, "cuda", "NVIDIA H200").name == "H200-141GB"
    assert hardware_entry(prices, "cuda", "NVIDIA GeForce RTX 4090").name == "RTX4090-24GB"
    assert hardware_entry(prices, "cuda", "Tesla T4") is None
    cpu = hardware_entry(prices, "cpu", None)
    plan = _plan("llama-2-7b", "qlora")
    metrics = {"train_seconds": 1800.0, "world_size": 2, "peak_memory_gb": 3.2, "peak_memory_kind": "process RSS"}
    against = planned_against_actual(plan, metrics, cpu)
    assert against["actual_compute_hours"] == 1.0 and against["actual_cost"] == float(f"{cpu.price_per_hour:.3g}")
    assert against["planned_peak_memory_gb"] == plan["peak_memory_gb"]["total"]
    unpriced = planned_against_actual(plan, metrics, None)
    assert unpriced["actual_cost"] is None and unpriced["planned_compute_hours"] is None
