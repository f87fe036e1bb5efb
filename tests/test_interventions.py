import pytest
import torch

import interp
from interp import PatchHeads, PruneHeads, ScaleValues
from interp.testing import tiny_model

PROMPT = "once upon a time there was a little girl named"


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def _no_tl_hooks(model) -> bool:
    return all(len(hp._forward_hooks) == 0 for hp in model.bridge.hook_dict.values())


@pytest.mark.parametrize("backend", interp.BACKENDS)
def test_zero_prune_equals_zeroed_output_weights(model, backend):
    """Zeroing z of a head == removing its columns of W_O (a reference outside interp)."""
    import copy

    head = interp.Head(1, 3)
    edited = model.forward(PROMPT, interventions=PruneHeads([head]), backend=backend)
    ref_hf = copy.deepcopy(model.hf)
    with torch.no_grad():
        o = ref_hf.model.layers[1].self_attn.o_proj.weight
        o[:, head.head * model.d_head : (head.head + 1) * model.d_head] = 0
        ref = ref_hf(model.to_tokens(PROMPT).input_ids).logits
    assert (edited - ref).abs().max() <= 1e-5


@pytest.mark.parametrize("backend", interp.BACKENDS)
def test_scale_values_equals_scaled_value_weights_without_gqa(backend):
    """On a model without GQA, scaling z_h == scaling head h's value projection."""
    import copy

    model = tiny_model("gpt_neox")
    alpha, head = 2.5, interp.Head(0, 1)
    edited = model.forward(PROMPT, interventions=ScaleValues(head, alpha), backend=backend)
    ref_hf = copy.deepcopy(model.hf)
    with torch.no_grad():
        qkv = ref_hf.gpt_neox.layers[0].attention.query_key_value
        d = model.d_head
        rows = slice(head.head * 3 * d + 2 * d, head.head * 3 * d + 3 * d)  # per-head [q, k, v]
        qkv.weight[rows] *= alpha
        qkv.bias[rows] *= alpha
        ref = ref_hf(model.to_tokens(PROMPT).input_ids).logits
    assert (edited - ref).abs().max() <= 1e-4


@pytest.mark.parametrize("backend", interp.BACKENDS)
def test_uniform_prune_makes_pattern_uniform(model, backend):
    _, cache = model.run_with_cache(
        ["the cat", PROMPT],
        sites=("pattern",),
        interventions=PruneHeads(["L0H2"], mode="uniform"),
        backend=backend,
    )
    pattern = cache[0, "pattern"][:, 2]  # [batch, q, k]
    mask = cache.tokens.attention_mask
    row = pattern[1, -1]  # last query of the unpadded prompt: 1/n over all keys
    assert torch.allclose(row, torch.full_like(row, 1 / row.shape[0]), atol=1e-6)
    padded = pattern[0, -1]
    n_real = int(mask[0].sum())
    assert torch.allclose(padded[mask[0].bool()], torch.full((n_real,), 1 / n_real), atol=1e-6)
    assert padded[~mask[0].bool()].abs().max() == 0


def test_mean_prune_uses_reference_means(model):
    texts = ["the cat saw a red box .", "a dog was in the box ."]
    means = model.head_means(texts)
    assert means.shape == (model.n_layers, model.n_heads, model.d_head)
    iv = PruneHeads.with_means(model, ["L1H1"], texts)
    _, cache = model.run_with_cache(PROMPT, sites=("z",), interventions=iv)
    assert torch.allclose(
        cache[1, "z"][0, :, 1], means[1, 1].expand(cache[1, "z"].shape[1], -1), atol=1e-6
    )
    with pytest.raises(ValueError, match="with_means"):
        model.forward(PROMPT, interventions=PruneHeads(["L1H1"], mode="mean"))


def test_patch_heads_from_another_run(model):
    source = "the cat saw a red box . the dog"
    _, src = model.run_with_cache(source, sites=("z",))
    for patch in (PatchHeads(["L0H1"], source=source), PatchHeads(["L0H1"], source=src)):
        _, cache = model.run_with_cache(
            "a big dog was in the small box .", sites=("z",), interventions=patch
        )
        n = min(cache[0, "z"].shape[1], src[0, "z"].shape[1])
        assert torch.allclose(cache[0, "z"][0, :n, 1], src[0, "z"][0, :n, 1])


def test_composition_and_json_round_trip(model, tmp_path):
    recipe = (
        PruneHeads(["L1H0", (0, 3)])
        + ScaleValues("L1H5", -2.0)
        + PruneHeads(["L0H1"], mode="uniform")
    )
    assert len(recipe.parts()) == 3
    path = tmp_path / "recipe.json"
    recipe.to_json(path)
    loaded = interp.Intervention.from_json(str(path))
    assert loaded == recipe
    a = model.forward(PROMPT, interventions=recipe)
    b = model.forward(PROMPT, interventions=loaded)
    assert torch.equal(a, b)
    patch = PatchHeads(["L0H1"], source="the cat")
    assert interp.Intervention.from_json(patch.to_json()) == patch


def test_bad_json_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown intervention type"):
        interp.Intervention.from_dict({"type": "Nope"})
    with pytest.raises(ValueError, match="unknown field"):
        interp.Intervention.from_dict(
            {"type": "ScaleValues", "head": "L0H0", "alpha": 1, "beta": 2}
        )
    with pytest.raises(ValueError, match="not valid JSON"):
        interp.Intervention.from_json("{not json")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_scale_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="finite"):
        ScaleValues("L0H0", bad)


def test_prune_rejects_unknown_mode():
    with pytest.raises(ValueError, match="zero"):
        PruneHeads(["L0H0"], mode="delete")


def test_out_of_range_head_is_refused_before_running(model):
    with pytest.raises(interp.HeadIndexError, match="layers are 0..1"):
        model.apply(PruneHeads(["L5H0"]))
    assert model.active_interventions == ()


@pytest.mark.parametrize("backend", interp.BACKENDS)
def test_context_manager_removes_on_error(model, backend):
    clean = model.forward(PROMPT, backend=backend)
    with pytest.raises(RuntimeError, match="user code"):
        with model.intervene(PruneHeads(["L1H0", "L1H1"])):
            assert not torch.allclose(model.forward(PROMPT, backend=backend), clean)
            raise RuntimeError("user code failed")
    assert model.active_interventions == ()
    assert torch.equal(model.forward(PROMPT, backend=backend), clean)
    if backend == "transformer_lens":
        assert _no_tl_hooks(model)


@pytest.mark.parametrize("backend", interp.BACKENDS)
def test_error_inside_an_edit_leaves_nothing_attached(model, backend):
    from interp.backends.plan import Edit, RunPlan

    clean = model.forward(PROMPT, backend=backend)

    def broken(t, ctx):
        raise ArithmeticError("edit failed")

    with pytest.raises(Exception):
        model.run_plan(
            model.to_tokens(PROMPT), RunPlan([Edit(0, "pattern", broken)]), backend=backend
        )
    assert model.hf.config._attn_implementation != "interp_eager"
    assert torch.equal(model.forward(PROMPT, backend=backend), clean)
    if backend == "transformer_lens":
        assert _no_tl_hooks(model)


def test_apply_and_remove_persistently(model):
    clean = model.forward(PROMPT)
    handle = model.apply(PruneHeads(["L1H0"]), ScaleValues("L0H0", 3.0))
    edited = model.forward(PROMPT)
    assert not torch.allclose(edited, clean)
    assert torch.equal(model.forward(PROMPT, use_interventions=False), clean)
    model.remove(handle)
    assert torch.equal(model.forward(PROMPT), clean)
    with pytest.raises(ValueError, match="not applied"):
        model.remove(handle)
