"""interp.weights: W_V, W_O, W_U and the norm folds in one canonical layout on every
architecture."""

import pytest
import torch

from interp.testing import tiny_model
from interp.weights import (
    final_norm_parts,
    folded_unembed,
    input_norm_weight,
    norm_scale,
    output_weight,
    unembed_weight,
    value_weight,
)


def _v_rows_reference(model, layer):
    """[n_kv, d_model, d_head] W_V sliced by hand from each architecture's storage."""
    attn, dh, kv, h = (
        model.attention_modules()[layer],
        model.d_head,
        model.n_kv_heads,
        model.n_heads,
    )
    if model.spec.family == "gpt2":  # Conv1D [d_model, q | k | v]
        w = attn.c_attn.weight[:, (h + kv) * dh :]
        return torch.stack([w[:, i * dh : (i + 1) * dh] for i in range(kv)])
    if model.spec.family == "gpt_neox":  # Linear rows [head, (q, k, v), d_head]
        w = attn.query_key_value.weight
        return torch.stack([w[(3 * i + 2) * dh : (3 * i + 3) * dh].T for i in range(h)])
    w = attn.v_proj.weight  # Linear rows [kv, d_head]
    return torch.stack([w[i * dh : (i + 1) * dh].T for i in range(kv)])


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gpt_neox", "qwen2"])
def test_value_weight_matches_each_storage_layout(arch):
    model = tiny_model(arch)
    for layer in range(model.n_layers):
        got = value_weight(model, layer)
        assert got.shape == (model.n_kv_heads, model.d_model, model.d_head)
        torch.testing.assert_close(got, _v_rows_reference(model, layer).detach().float())
    assert output_weight(model, 0).shape == (model.n_heads, model.d_head, model.d_model)


def test_value_weight_gives_the_models_values():
    model = tiny_model("llama")  # no bias on v_proj: v = norm(x) @ W_V
    _, cache = model.run_with_cache("the cat saw a red box", sites=("v",))
    captured = {}
    block = model.layer_modules()[1]
    handle = block.self_attn.register_forward_pre_hook(
        lambda m, a, k: captured.__setitem__("x", k["hidden_states"]), with_kwargs=True
    )
    try:
        model.forward("the cat saw a red box")
    finally:
        handle.remove()
    v = torch.einsum("bpm,kmd->bpkd", captured["x"].float(), value_weight(model, 1))
    torch.testing.assert_close(v, cache[1, "v"].float(), atol=1e-5, rtol=1e-4)


def test_norm_folds():
    llama, gpt2 = tiny_model("llama"), tiny_model("gpt2")
    gain, eps, layernorm = final_norm_parts(llama)
    assert not layernorm and eps > 0
    torch.testing.assert_close(folded_unembed(llama), unembed_weight(llama) * gain)
    centred = folded_unembed(gpt2)  # LayerNorm: its centring is folded in
    assert final_norm_parts(gpt2)[2] and centred.mean(-1).abs().max() < 1e-5
    assert not torch.allclose(folded_unembed(gpt2, centre=False), centred)
    torch.testing.assert_close(
        input_norm_weight(llama, 0), llama.layer_modules()[0].input_layernorm.weight.float()
    )
    x = torch.tensor([[3.0, 4.0]])
    assert float(norm_scale(x, 0.0, False)) == pytest.approx((12.5) ** 0.5)
    assert float(norm_scale(x, 0.0, True)) == pytest.approx(0.5)
