"""Bridge components without per-call bookkeeping: same outputs, hooks on them still fire."""

import pytest
import torch

import interp.backends.fast_components as fc
from interp.testing import tiny_model

PROMPTS = ["the cat saw a red box", "a dog"]


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gpt_neox", "qwen2"])
def test_fast_bridge_gives_the_same_logits_as_the_plain_module(arch):
    model = tiny_model(arch)
    bridge = model.bridge
    assert all(
        type(c) in fc._FAST.values()
        for c in bridge.modules()
        if isinstance(c, fc.GeneralizedComponent)
    ), "every component swapped at build"
    toks = model.to_tokens(PROMPTS)
    real = toks.attention_mask.bool()
    plain = model.forward(toks, backend="nnsight")  # the unbridged HF module
    assert (model.forward(toks, backend="transformer_lens") - plain)[real].abs().max() <= 1e-5


def test_a_hook_on_a_norm_scale_takes_transformer_lens_route_and_edits_propagate():
    model = tiny_model("llama")
    toks = model.to_tokens(PROMPTS)
    plain = model.forward(toks, backend="transformer_lens")
    seen = []
    with model.bridge.hooks(
        fwd_hooks=[("blocks.0.ln1.hook_scale", lambda t, hook=None: seen.append(t) or t * 2)]
    ):
        with pytest.warns(UserWarning):
            edited = model.forward(toks, backend="transformer_lens")
    assert seen and seen[0].shape[-1] == 1
    assert (edited - plain).abs().max() > 1e-3, "an edit of the norm scale must change the output"
    assert (
        model.forward(toks, backend="transformer_lens") - plain
    ).abs().max() == 0, "hook removed"


def test_block_keyword_filter_reads_the_signature_once(monkeypatch):
    model = tiny_model("llama")
    toks = model.to_tokens(PROMPTS)
    model.forward(toks, backend="transformer_lens")
    calls = []
    real = fc.inspect.signature
    monkeypatch.setattr(fc.inspect, "signature", lambda f: calls.append(f) or real(f))
    model.forward(toks, backend="transformer_lens")
    layers = {id(layer) for layer in model.hf.model.layers} | {
        id(b.original_component) for b in model.bridge.blocks
    }
    assert not [f for f in calls if id(getattr(f, "__self__", None)) in layers]


def test_offloaded_weights_keep_transformer_lens_per_call_materialisation(monkeypatch):
    model = tiny_model("llama")
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module

    from interp.backends.transformer_lens import share_weights_copy

    bridge = build_bridge_from_module(
        share_weights_copy(model.hf),
        model.architecture,
        hf_config=model.hf.config,
        model_name="tiny",
    )
    monkeypatch.setattr(fc, "has_offloaded_params", lambda m: True)
    assert fc.install(bridge) == 0
    assert not any(type(c) in fc._FAST.values() for c in bridge.modules())


def test_hook_points_skip_dispatch_only_while_unhooked():
    model = tiny_model("llama")
    hp = (
        model.bridge.blocks[0].attn.hook_z
        if hasattr(model.bridge.blocks[0].attn, "hook_z")
        else model.bridge.hook_dict["blocks.0.attn.hook_z"]
    )
    assert isinstance(hp, fc.FastHookPoint)
    x = torch.randn(2, 3)
    assert hp(x) is x
    handle = hp.add_hook(lambda t, hook=None: t * 0)
    try:
        assert hp(x).abs().max() == 0, "a hooked hook point runs its hooks"
    finally:
        handle.hook.remove()
        hp.fwd_hooks.clear()
    seen = []
    glob = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: seen.append(type(m))
    )
    try:
        hp(x)
    finally:
        glob.remove()
    assert seen, "torch's global forward hooks still see hook points"
