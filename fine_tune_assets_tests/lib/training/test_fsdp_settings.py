"""FSDP-QLoRA settings for multi-GPU nodes, checked on the CPU (no GPU here: the settings, not a run):
the 4-bit storage dtype equals the compute dtype, CPU-RAM-efficient loading is on before the model loads,
the SFTConfig fields match the repository's accelerate config, and impossible combinations are refused."""

import pytest
import torch
import yaml

from fine_tune_assets.lib.models.loading import quantization_kwargs
from fine_tune_assets.lib.training import TrainingConfig
from fine_tune_assets.lib.training.distributed import DistributedConfigError, check_fsdp, torchrun_env
from fine_tune_assets.lib.training.sft_config import FSDP_CONFIG, fsdp_arguments
from fine_tune_assets_tests.factories import REPO

FSDP = TrainingConfig(fsdp=True, load_in_4bit=True, nproc_per_node=8, device="cuda")


def test_4bit_weights_are_stored_in_the_compute_dtype_under_fsdp():
    sharded = quantization_kwargs(torch.bfloat16, fsdp=True)
    assert sharded["bnb_4bit_quant_storage"] == sharded["bnb_4bit_compute_dtype"] == torch.bfloat16
    assert "bnb_4bit_quant_storage" not in quantization_kwargs(torch.bfloat16)  # uint8 packing otherwise


def test_cpu_ram_efficient_loading_is_on_in_the_processes_environment():
    assert torchrun_env(8, "cuda", fsdp=True)["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"
    assert FSDP_CONFIG["cpu_ram_efficient_loading"] is True


def test_sft_fields_match_the_accelerate_config_file():
    arguments = fsdp_arguments(FSDP, "cuda")
    assert arguments["fsdp"] == "full_shard auto_wrap"
    accelerate = yaml.safe_load((REPO / "deploy" / "accelerate_fsdp_qlora.yaml").read_text())
    assert accelerate["distributed_type"] == "FSDP" and accelerate["mixed_precision"] == "bf16"
    assert {k.removeprefix("fsdp_"): v for k, v in accelerate["fsdp_config"].items()} == arguments["fsdp_config"]
    assert fsdp_arguments(TrainingConfig(), "cuda") == {}


@pytest.mark.parametrize("config, device, missing", [
    (FSDP, "cpu", "a CUDA device"),
    (TrainingConfig(fsdp=True, load_in_4bit=True, device="cuda"), "cuda", "nproc_per_node > 1"),
    (TrainingConfig(fsdp=True, nproc_per_node=2, device="cuda"), "cuda", "load_in_4bit"),
])
def test_fsdp_without_what_it_needs_is_refused(config, device, missing):
    with pytest.raises(DistributedConfigError, match=missing):
        check_fsdp(config, device)
    check_fsdp(FSDP, "cuda")  # the complete combination passes


def test_new_knobs_at_their_defaults_keep_the_config_hashes():
    # the default config's hashes before fsdp and nproc_per_node existed: checkpoints and lineage stay valid
    assert TrainingConfig().config_hash == "fe2eb05eaaefa281464d787bc7aa8e63e4b0fdae774e59cc7dc3da40df62781c"
    assert TrainingConfig().training_hash == "22738018a5f74594849746acae5cf531810f626e826e6070d3ffc0f0b19e0712"
    assert TrainingConfig(nproc_per_node=2).training_hash != TrainingConfig().training_hash  # another batch
