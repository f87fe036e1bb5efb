"""The newer architectures (Gemma 3, Gemma 2, Qwen3, Phi-3, OLMo-2) beyond engine parity.

Engine parity and KV-cache equivalence run on every tiny architecture in test_backends.py and
test_generation.py; here: what the weight tables must get right for each family.
"""

import pytest
import torch

import interp
from interp.testing import tiny_model
from interp.weights import final_norm_parts, folded_unembed, norm_scale

NEWER = ("gemma3", "gemma2", "qwen3", "phi3", "olmo2")


@pytest.fixture(scope="module", params=NEWER)
def model(request):
    return tiny_model(request.param)


def test_folded_unembed_reads_the_logits_off_the_final_residual(model):
    """logits = (x / s(x)) @ folded_unembed^T, with Gemma's (1 + weight) gain in the fold."""
    captured = {}

    def keep_input(module, inputs, output):
        captured["x"] = inputs[0]  # returns None: the output is left as it is

    hook = model.final_norm.register_forward_hook(keep_input)
    try:
        logits = model.forward("once upon a time there was a little girl named")[0, -1]
    finally:
        hook.remove()
    _, eps, layernorm = final_norm_parts(model)
    x = captured["x"][0, -1]
    lens = (x / norm_scale(x, eps, layernorm)) @ folded_unembed(model).T
    cap = getattr(model.hf.config, "final_logit_softcapping", None)
    if cap:
        lens = torch.tanh(lens / cap) * cap
    assert (lens - logits).abs().max() <= 1e-4


def test_both_engines_serve_the_newer_architectures(model):
    assert model.info()["backends"] == list(interp.BACKENDS)
    assert model.bridge is not None


def test_sliding_window_layers_are_exercised(model):
    """The tiny Gemmas' window (4) is shorter than the prompt: layer 0 masks far keys."""
    if not model.spec.family.startswith("gemma"):
        pytest.skip("no sliding window in this family's tiny config")
    _, cache = model.run_with_cache("the cat saw a red box in the city", sites=("pattern",))
    pattern = cache[0, "pattern"][0]  # [heads, q, k]; layer 0 slides, layer 1 is global
    assert float(pattern[:, -1, :-4].abs().max()) == 0.0
    assert float(cache[1, "pattern"][0][:, -1, :-4].sum()) > 0.0


def test_unsupported_architecture_lists_the_new_ones():
    from transformers import BloomConfig, BloomForCausalLM

    hf = BloomForCausalLM(BloomConfig(vocab_size=50, hidden_size=32, n_layer=1, n_head=4))
    with pytest.raises(interp.UnsupportedArchitectureError) as err:
        interp.Model(hf, None)
    for name in (
        "Gemma3ForCausalLM",
        "Gemma2ForCausalLM",
        "Qwen3ForCausalLM",
        "Phi3ForCausalLM",
        "Olmo2ForCausalLM",
    ):
        assert name in str(err.value)
