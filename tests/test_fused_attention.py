"""The bridge's fused attention route: taken only when no hook needs the pattern, same numbers."""

import pytest

import interp.backends.fused_attention as fa
from interp.testing import tiny_model

PROMPTS = ["the cat saw a red box", "a dog"]  # unequal lengths: padding and masks


def _count_fused(monkeypatch):
    calls = []
    real = fa._fused_call
    monkeypatch.setattr(fa, "_fused_call", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


@pytest.mark.parametrize("arch", ["llama", "qwen2", "mistral"])
def test_fused_route_matches_the_step_by_step_route(arch, monkeypatch):
    calls = _count_fused(monkeypatch)
    model = tiny_model(arch)
    toks = model.to_tokens(PROMPTS)
    real = toks.attention_mask.bool()
    fused = model.forward(toks, backend="transformer_lens")
    assert len(calls) == model.n_layers
    with model.bridge.hooks(
        fwd_hooks=[
            (f"blocks.{l}.attn.hook_pattern", lambda t, hook=None: t) for l in range(model.n_layers)
        ]
    ):
        step = model.forward(toks, backend="transformer_lens")
    assert (
        len(calls) == model.n_layers
    ), "a pattern hook must send the call down the step-by-step route"
    assert (fused - step)[real].abs().max() <= 1e-5
    assert (fused - model.forward(toks, backend="nnsight"))[real].abs().max() <= 1e-5


def test_what_a_user_hooks_still_fires_and_training_uses_the_full_route(monkeypatch):
    calls = _count_fused(monkeypatch)
    model = tiny_model("llama")
    attn = model.bridge.blocks[0].attn
    seen = []
    with model.bridge.hooks(
        fwd_hooks=[("blocks.0.attn.hook_rot_q", lambda t, hook=None: seen.append(t.shape))]
    ):
        assert not fa.uses_fused_route(attn)
        model.forward(model.to_tokens(PROMPTS), backend="transformer_lens")
    assert seen and len(calls) == model.n_layers - 1
    assert fa.uses_fused_route(attn)
    attn.train()
    try:
        assert not fa.uses_fused_route(attn)
    finally:
        attn.eval()


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox"])
def test_other_architectures_keep_transformer_lens_attention(arch):
    model = tiny_model(arch)
    assert not any(getattr(b.attn, "_interp_fused", False) for b in model.bridge.blocks)
