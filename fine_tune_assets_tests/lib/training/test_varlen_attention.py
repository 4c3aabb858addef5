"""Padding-free varlen attention: row boundaries and refusals on any machine; on CUDA, the same
logits and gradients as row-by-row attention (the GPU half runs where a GPU is present)."""

import pytest
import torch

from fine_tune_assets.lib.training import varlen_attention

ROWS = [37, 120, 5, 64]


def test_sequence_boundaries_from_positions():
    positions = torch.cat([torch.arange(n) for n in ROWS]).unsqueeze(0)
    cu, longest = varlen_attention.sequence_boundaries(positions)
    assert cu.tolist() == [0, 37, 157, 162, 226]
    assert cu.dtype == torch.int32
    assert longest == 120


def test_sequence_boundaries_refuse_a_batch_not_starting_at_zero():
    with pytest.raises(ValueError, match="start every row at 0"):
        varlen_attention.sequence_boundaries(torch.arange(3, 10).unsqueeze(0))


@pytest.mark.parametrize("case", ["padded batch", "mask", "no positions"])
def test_refuses_what_it_cannot_attend_correctly(case):
    if varlen_attention._varlen_attn() is None:
        pytest.skip("this torch has no torch.nn.attention.varlen")
    q = torch.zeros(2 if case == "padded batch" else 1, 4, 8, 16)
    mask = torch.ones(1, 8, dtype=torch.bool) if case == "mask" else None
    positions = None if case == "no positions" else torch.arange(8).unsqueeze(0)
    module = torch.nn.Module()
    with pytest.raises(ValueError, match="one flattened padding-free row"):
        varlen_attention.varlen_attention_forward(module, q, q, q, mask, position_ids=positions)


def _tiny_llama(attn_implementation: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=3,
                         num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=512)
    config._attn_implementation = attn_implementation
    return LlamaForCausalLM(config).to("cuda", torch.bfloat16)


@pytest.mark.gpu
@pytest.mark.skipif(not varlen_attention.available(), reason="needs CUDA and torch.nn.attention.varlen")
def test_varlen_matches_row_by_row_attention_on_cuda():
    name = varlen_attention.register()
    torch.manual_seed(1)
    rows = [torch.randint(0, 512, (n,), device="cuda") for n in ROWS]
    flat = torch.cat(rows).unsqueeze(0)
    positions = torch.cat([torch.arange(n, device="cuda") for n in ROWS]).unsqueeze(0)

    reference = _tiny_llama("sdpa")
    expected = torch.cat([reference(input_ids=r.unsqueeze(0), use_cache=False).logits[0] for r in rows])
    expected.float().sum().backward()
    expected_grad = reference.model.layers[0].self_attn.q_proj.weight.grad.float()

    model = _tiny_llama(name)
    model.load_state_dict(reference.state_dict())
    logits = model(input_ids=flat, position_ids=positions, use_cache=False).logits[0]
    logits.float().sum().backward()
    grad = model.model.layers[0].self_attn.q_proj.weight.grad.float()

    scale = expected.float().abs().max()
    assert (logits.float() - expected.float()).abs().max() <= 0.02 * scale
    assert torch.nn.functional.cosine_similarity(grad.flatten(), expected_grad.flatten(), dim=0) > 0.999
