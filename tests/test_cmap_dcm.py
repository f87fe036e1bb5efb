"""CMAP against planted cross-model differences; DCM recovering a planted set of heads."""

import copy
import random

import pytest
import torch

from interp.cmap import (
    CrossPatch,
    ModelMismatchError,
    check_compatible,
    cmap,
    cmap_accuracy,
    recovered_share,
)
from interp.dcm import dcm, masked_logits
from interp.models import Model
from interp.testing import TINY_WORDS, tiny_hf_model, tiny_model

PROMPTS = ["the cat saw a red box", "a dog was in the big", "she played with the blue key"]


@pytest.fixture(scope="module")
def base():
    return tiny_model("llama", seed=0)


def _planted(base: Model, layer: int, head: int, proj: str = "q_proj") -> Model:
    """A copy of `base` whose only difference is one head's (or kv group's) rows of `proj`."""
    hf = copy.deepcopy(base.hf)
    attn = hf.model.layers[layer].self_attn
    d = base.d_head
    with torch.no_grad():
        getattr(attn, proj).weight[head * d : (head + 1) * d].normal_(
            0, 0.5, generator=torch.Generator().manual_seed(3)
        )
    return Model(hf, base.tokenizer, name="planted")


def _last(model, prompts):
    with torch.no_grad():
        return model.forward(prompts)[:, -1].float()


def test_cmap_from_itself_changes_nothing(base):
    run = cmap(base, base, PROMPTS, base.all_heads())
    assert torch.allclose(run.logits, _last(base, PROMPTS), atol=1e-5)


def test_cmap_patching_the_changed_head_recovers_the_source_exactly(base):
    source = _planted(base, layer=1, head=5)
    target, original = _last(source, PROMPTS), _last(base, PROMPTS)
    assert (target - original).abs().max() > 1e-2  # the plant matters
    assert torch.allclose(cmap(base, source, PROMPTS, ["L1H5"]).logits, target, atol=1e-5)
    assert torch.allclose(cmap(base, source, PROMPTS, ["L1H4", "L0H5"]).logits, original, atol=1e-5)
    last = [len(base.to_tokens(PROMPTS).input_ids[0]) - 1] * len(PROMPTS)
    assert torch.allclose(
        cmap(base, source, PROMPTS, CrossPatch(["L1H5"], last)).logits, target, atol=1e-5
    )
    assert torch.allclose(
        cmap(base, source, PROMPTS, CrossPatch(["L1H5"], [1, 2, 3])).logits, original, atol=1e-5
    )


def test_cmap_q_and_kv_sites(base):
    q_src = _planted(base, layer=1, head=2, proj="q_proj")
    assert torch.allclose(
        cmap(base, q_src, PROMPTS, ["L1H2"], site="q").logits, _last(q_src, PROMPTS), atol=1e-5
    )
    k_src = _planted(base, layer=1, head=1, proj="k_proj")  # kv group 1 = query heads 2, 3
    assert torch.allclose(
        cmap(base, k_src, PROMPTS, ["L1H3"], site="k").logits, _last(k_src, PROMPTS), atol=1e-5
    )
    assert torch.allclose(
        cmap(base, k_src, PROMPTS, ["L1H0"], site="k").logits, _last(base, PROMPTS), atol=1e-5
    )
    v_src = _planted(base, layer=1, head=0, proj="v_proj")
    assert torch.allclose(
        cmap(base, v_src, PROMPTS, ["L1H1"], site="v").logits, _last(v_src, PROMPTS), atol=1e-5
    )


def test_cmap_accuracy_and_recovered_share(base):
    source = _planted(base, layer=1, head=5)
    answers = _last(source, PROMPTS).argmax(-1)
    assert cmap_accuracy(base, source, PROMPTS, answers, ["L1H5"]) == 1.0
    assert recovered_share(0.8, 0.6, 0.8) == pytest.approx(1.0)
    assert recovered_share(0.7, 0.6, 0.8) == pytest.approx(0.5)
    assert recovered_share(0.7, 0.6, 0.6) is None


def test_cmap_between_two_seeds_runs(base):
    other = tiny_model("llama", seed=1)
    run = cmap(base, other, PROMPTS, [CrossPatch(["L0H1", "L1H3"])])
    assert run.logits.shape == (3, base.vocab_size) and run.source_model == other.name


def _with_heads(n_heads: int, n_kv: int) -> Model:
    from transformers import LlamaConfig, LlamaForCausalLM

    hf_ref, tok = tiny_hf_model("llama")
    cfg = LlamaConfig(
        vocab_size=hf_ref.config.vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv,
        max_position_embeddings=128,
        architectures=["LlamaForCausalLM"],
    )
    return Model(LlamaForCausalLM(cfg).eval(), tok, name=f"llama-{n_heads}h")


def test_cmap_refuses_different_architectures_and_head_counts(base):
    with pytest.raises(ModelMismatchError, match="same architecture"):
        cmap(base, tiny_model("gpt2"), PROMPTS, ["L0H0"])
    with pytest.raises(ModelMismatchError, match="n_heads: 8 vs 4"):
        check_compatible(base, _with_heads(4, 4))
    with pytest.raises(ModelMismatchError, match="n_layers"):
        cmap(base, tiny_model("llama", n_layers=3), PROMPTS, ["L0H0"])
    assert base.active_interventions == ()
    with pytest.raises(ValueError, match="site"):
        cmap(base, base, PROMPTS, ["L0H0"], site="pattern")
    with pytest.raises(ValueError, match="one position per prompt"):
        cmap(base, base, PROMPTS, CrossPatch(["L0H0"], [1]))


# --- DCM -----------------------------------------------------------------------------------

PLANTED = ("L0H1", "L1H2", "L1H5")


@pytest.fixture(scope="module")
def planted_pairs(base):
    rng = random.Random(0)
    words = [w for w in TINY_WORDS if w.isalpha()]
    n = 160
    b = [" ".join(rng.choices(words, k=8)) for _ in range(n)]
    s = [" ".join(rng.choices(words, k=8)) for _ in range(n)]
    bt, st = base.to_tokens(b), base.to_tokens(s)
    last = torch.full((n,), bt.input_ids.shape[1] - 1)
    mask = torch.tensor([0.0 if str(h) in PLANTED else 1.0 for h in base.all_heads()])
    with torch.no_grad():
        target = masked_logits(base, bt, st, base.all_heads(), mask, last).argmax(-1)
    return b, s, target, last


def test_dcm_finds_the_planted_heads(base, planted_pairs):
    b, s, target, last = planted_pairs
    grad_mode = torch.is_grad_enabled()
    res = dcm(base, b, s, target, positions=last, desideratum="planted", seed=0)
    assert sorted(map(str, res.heads)) == sorted(PLANTED)
    assert res.test_accuracy == 1.0
    assert res.unpatched_accuracy < 0.6 and res.all_patched_accuracy < 0.6
    assert res.split == (80, 40, 40)
    assert torch.is_grad_enabled() == grad_mode
    assert all(p.grad is None for p in base.hf.parameters())
    assert base.active_interventions == ()


def test_dcm_penalty_large_lambda_selects_nothing(base, planted_pairs):
    b, s, target, last = planted_pairs
    res = dcm(base, b[:40], s[:40], target[:40], positions=last[:40], lam=100.0)
    assert res.heads == ()


def test_masked_logits_identity_and_grad(base):
    bt, st = (
        base.to_tokens(PROMPTS[:2]),
        base.to_tokens(["the dog saw a blue box", "a cat was in the small"]),
    )
    ones = torch.ones(base.n_layers * base.n_heads, requires_grad=True)
    with torch.enable_grad():
        logits = masked_logits(base, bt, st, base.all_heads(), ones)
        (grad,) = torch.autograd.grad(logits[:, 5].sum(), [ones])
    assert torch.allclose(logits.detach(), _last(base, PROMPTS[:2]), atol=1e-5)
    assert grad.abs().sum() > 0


def test_dcm_bad_input(base):
    with pytest.raises(ValueError, match="same shape"):
        dcm(base, ["the cat saw"] * 4, ["the cat"] * 4, [5] * 4)
    with pytest.raises(ValueError, match="one token id per pair"):
        dcm(base, ["the cat"] * 4, ["a dog"] * 4, [5] * 3)
    with pytest.raises(ValueError, match="at least 4 pairs"):
        dcm(base, ["the cat"] * 2, ["a dog"] * 2, [5] * 2)


@pytest.mark.parametrize("name", ["interp.cmap", "interp.data.boxes"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0 and result.attempted > 0
