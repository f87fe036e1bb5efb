"""Bad input is refused with a typed error that names the fix, and leaves the model clean.

Each test states the failure it guards against: silent truncation of float head indices,
stacked interventions, an alpha that overflows fp32, padding that shifts a patch by a token,
and hooks left attached after an error.
"""

import gc
import warnings

import pytest
import torch

import interp
from interp import Compose, Head, PatchHeads, PruneHeads, ScaleValues
from interp.errors import ArgumentTypeError, InterpError, InvalidArgumentError
from interp.heads import HeadIndexError, HeadSpecError
from interp.interventions import MAX_ALPHA, InterventionError
from interp.models import InterventionNotEnteredWarning
from interp.testing import tiny_model

SHORT = "once upon a time"
LONG = "once upon a time there was a little girl named"


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def _no_hooks(model) -> bool:
    """No TransformerLens hook and no torch hook on any HF module."""
    tl_clean = all(len(hp._forward_hooks) == 0 for hp in model.bridge.hook_dict.values())
    torch_clean = all(not m._forward_hooks and not m._forward_pre_hooks for m in model.hf.modules())
    return tl_clean and torch_clean and not model.active_interventions


# --- heads --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [(1.7, 2), (1, 2.0), (True, 1), ("L1", 2)])
def test_head_parse_refuses_non_integer_pairs(spec):
    with pytest.raises(HeadSpecError, match="must be an int"):
        Head.parse(spec)


def test_head_parse_keeps_integral_strings_and_ints():
    assert Head.parse(("1", "2")) == Head(1, 2) == Head.parse((1, 2)) == Head.parse("L1H2")


def test_head_errors_are_interp_errors():
    assert issubclass(HeadSpecError, InvalidArgumentError)
    assert issubclass(HeadIndexError, InterpError)
    with pytest.raises(ArgumentTypeError):
        Head(1.0, 2)


# --- interventions: construction -----------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1e38, -1e38, MAX_ALPHA * 1.01, float("nan"), float("inf")])
def test_scale_values_refuses_alpha_that_overflows(alpha):
    with pytest.raises(InterventionError, match="alpha"):
        ScaleValues("L1H0", alpha)


@pytest.mark.parametrize("alpha", [True, "2.0", None])
def test_scale_values_refuses_non_numbers(alpha):
    with pytest.raises(ArgumentTypeError, match="alpha must be a number"):
        ScaleValues("L1H0", alpha)


def test_scale_values_at_the_limit_is_finite(model):
    logits = model.forward(SHORT, interventions=ScaleValues("L1H0", MAX_ALPHA))
    assert torch.isfinite(logits).all()


def test_scale_values_refuses_a_list_of_heads_and_shows_how():
    with pytest.raises(InterventionError, match=r"ScaleValues\('L1H0', 2.0\) \+"):
        ScaleValues(["L1H0", "L2H3"], 2.0)


def test_empty_compose_refused():
    with pytest.raises(InterventionError, match="at least one"):
        Compose([])


# --- interventions: applying ---------------------------------------------------------------------


def test_applying_the_same_intervention_twice_is_refused(model):
    scale = ScaleValues("L1H0", 2.0)
    model.apply(scale)
    try:
        with pytest.raises(InterventionError, match="already applied"):
            model.apply(ScaleValues("L1H0", 2.0))  # equal, not the same object
        with pytest.raises(InterventionError, match="already applied"):
            with model.intervene(scale + PruneHeads(["L0H1"])):
                pass
        assert len(model.active_interventions) == 1
    finally:
        model.remove()
    assert _no_hooks(model)


def test_removing_part_of_an_applied_combination_names_the_fix(model):
    prune, scale = PruneHeads(["L0H1"]), ScaleValues("L1H0", 2.0)
    applied = model.apply(prune, scale)
    try:
        with pytest.raises(InterventionError, match="one part of"):
            model.remove(prune)
        model.remove(applied)
    finally:
        model.remove()
    with pytest.raises(InterventionError, match="not applied"):
        model.remove(prune)


def test_intervene_without_with_warns_and_applies_nothing(model):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.intervene(PruneHeads(["L0H1"]))
        gc.collect()
    assert any(issubclass(w.category, InterventionNotEnteredWarning) for w in caught)
    assert not model.active_interventions


def test_intervene_removes_on_error_and_leaves_no_hook(model):
    clean = model.forward(SHORT)
    with pytest.raises(RuntimeError, match="boom"):
        with model.intervene(PruneHeads(["L0H1"])):
            model.forward(SHORT)
            raise RuntimeError("boom")
    assert _no_hooks(model)
    assert torch.equal(model.forward(SHORT), clean)


def test_a_forward_that_fails_inside_a_hook_leaves_no_hook(model):
    bad = PatchHeads(
        ["L1H0"], source={(1, "z"): torch.zeros(1, 3, model.n_heads + 1, model.d_head)}
    )
    with pytest.raises(InterventionError, match="expected"):
        model.forward(SHORT, interventions=bad)
    assert _no_hooks(model)


def test_patch_source_in_head_major_layout_is_refused(model):
    _, cache = model.run_with_cache(SHORT, sites=("z",))
    z = torch.as_tensor(cache[1, "z"]).transpose(1, 2)  # [b, head, pos, d]
    with pytest.raises(InterventionError, match="transpose"):
        model.forward(SHORT, interventions=PatchHeads(["L1H0"], source={(1, "z"): z}))


def test_patch_source_keyed_by_layer_alone_names_the_key(model):
    z = torch.zeros(1, 3, model.n_heads, model.d_head)
    with pytest.raises(InterventionError, match=r"keyed by \(layer, 'z'\)"):
        model.forward(SHORT, interventions=PatchHeads(["L1H0"], source={1: z}))
    with pytest.raises(InterventionError, match="needs a source"):
        PatchHeads(["L1H0"], source=[])


# --- padding -------------------------------------------------------------------------------------


def test_padded_self_patch_changes_nothing(model):
    """A batch of a short and a long prompt is left-padded; patching every head of a layer with
    the batch's own z must give the same logits. Aligning by position (not real token) would move
    the short row's activations by its padding and change them."""
    prompts = [SHORT, LONG]
    clean = model.forward(prompts)
    heads = [Head(1, h) for h in range(model.n_heads)]
    patched = model.forward(prompts, interventions=PatchHeads(heads, source=prompts))
    tokens = model.to_tokens(prompts)
    real = tokens.attention_mask.bool()
    assert (patched - clean)[real].abs().max() <= 1e-5


def test_patch_from_a_short_source_into_a_padded_batch_matches_one_row_runs(model):
    """Each row of a padded batch patched from its own source row == that row run alone."""
    sources, targets = [SHORT, LONG], [LONG, SHORT]
    heads = [Head(1, 0), Head(1, 2)]
    batch = model.forward(targets, interventions=PatchHeads(heads, source=sources))
    mask = model.to_tokens(targets).attention_mask.bool()
    for row, (source, target) in enumerate(zip(sources, targets)):
        alone = model.forward(target, interventions=PatchHeads(heads, source=source))
        assert (batch[row][mask[row]] - alone[0]).abs().max() <= 1e-4


def test_right_padded_source_is_refused(model):
    _, cache = model.run_with_cache([SHORT, LONG], sites=("z",))
    z = torch.as_tensor(cache[1, "z"])
    mask = model.to_tokens([SHORT, LONG]).attention_mask.flip(1)  # padding moved to the right

    class RightPadded(dict):
        tokens = type("Tokens", (), {"attention_mask": mask})()

    source = RightPadded({(1, "z"): z})
    with pytest.raises(InterventionError, match="right"):
        model.forward([LONG, SHORT], interventions=PatchHeads(["L1H0"], source=source))
    assert _no_hooks(model)


# --- caches, sites, layers ------------------------------------------------------------------------


def test_cache_head_names_what_was_captured_and_how_to_capture_more(model):
    from interp.models import CacheKeyError

    _, cache = model.run_with_cache(SHORT, sites="z", layers=1)  # one site, one layer
    assert set(cache) == {(1, "z")}
    with pytest.raises(CacheKeyError, match=r"sites=\('pattern',\), layers=\[1\]"):
        cache.head("pattern", "L1H0")
    with pytest.raises(CacheKeyError, match="no 'z' for layer 0"):
        cache.head("z", "L0H0")
    with pytest.raises(HeadIndexError, match="heads 0..7"):
        cache.head("z", "L1H9")


def test_run_with_cache_refuses_layers_that_are_not_ints(model):
    with pytest.raises(ArgumentTypeError, match="layers must be ints"):
        model.run_with_cache(SHORT, layers=[1.0])
    with pytest.raises(InvalidArgumentError, match="outside"):
        model.run_with_cache(SHORT, layers=[model.n_layers])


def test_interventions_given_as_text_are_refused(model):
    with pytest.raises(ArgumentTypeError, match=r"PruneHeads\(\['L1H0'\]\)"):
        model.forward(SHORT, interventions="L1H0")
    with pytest.raises(ArgumentTypeError, match="Intervention objects"):
        model.forward(SHORT, interventions=[PruneHeads(["L1H0"]), "L2H3"])
    assert _no_hooks(model)


# --- generation options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(max_new_tokens=2.5), ArgumentTypeError, "max_new_tokens must be an int"),
        (dict(max_new_tokens="3"), ArgumentTypeError, "max_new_tokens must be an int"),
        (dict(max_new_tokens=0), InvalidArgumentError, ">= 1"),
        (dict(do_sample=True, top_k=0), InvalidArgumentError, "top_k must be in 1.."),
        (dict(do_sample=True, top_k=10**6), InvalidArgumentError, "the vocabulary"),
        (dict(do_sample=True, temperature=0.0), InvalidArgumentError, "temperature must be > 0"),
    ],
)
def test_generate_refuses_bad_options(model, kwargs, error, match):
    kwargs = {"max_new_tokens": 2, **kwargs}
    with pytest.raises(error, match=match):
        model.generate(SHORT, **kwargs)


def test_sampling_options_without_sampling_warn(model):
    from interp.generation import SamplingOptionWarning

    with pytest.warns(SamplingOptionWarning, match="do_sample=True"):
        out = model.generate(SHORT, max_new_tokens=2, top_k=5)
    assert out.new_tokens.shape[1] == 2


# --- reference means and prompts ----------------------------------------------------------------


def test_head_means_refuses_empty_reference_text(model):
    with pytest.raises(InvalidArgumentError, match="BOS token alone"):
        PruneHeads.with_means(model, ["L1H0"], "")


def test_means_of_the_wrong_width_are_refused_before_the_forward(model):
    bad = PruneHeads(["L1H0"], mode="mean", means=[[0.0] * (model.d_head + 1)])
    with pytest.raises(InterventionError, match=f"d_head {model.d_head}"):
        model.forward(SHORT, interventions=bad)
    assert _no_hooks(model)


def test_unknown_words_warn_once_with_the_unknown_token(model):
    from interp.tokens import UnknownTokenWarning

    with pytest.warns(UnknownTokenWarning, match="<unk>"):
        model.to_tokens("once upon a time zzqxj")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownTokenWarning)
        model.to_tokens("once upon a time")  # known words: no warning


# --- circuit files ------------------------------------------------------------------------------

CIRCUIT = '{"schema_version": "1.0", "model": "m", "method": "x", "nodes": [], "edges": []}'


def test_circuit_of_an_unknown_schema_version_is_refused():
    from interp.circuit import CircuitError
    from interp.export import load_circuit

    with pytest.raises(CircuitError, match="upgrade interp"):
        load_circuit(CIRCUIT.replace('"1.0"', '"1.7"'))
    with pytest.raises(CircuitError, match="extra"):
        load_circuit(CIRCUIT[:-1] + ', "extra": 1}')


def test_circuit_file_with_a_bom_loads_and_bad_sources_are_named(tmp_path):
    from interp.circuit import CircuitError
    from interp.export import from_graphml, load_circuit

    path = tmp_path / "c.json"
    path.write_text("\ufeff" + CIRCUIT, encoding="utf-8")
    assert load_circuit(path).model == "m"
    assert load_circuit("\ufeff" + CIRCUIT).model == "m"
    with pytest.raises(ArgumentTypeError, match="a path, JSON text or a dict"):
        load_circuit([str(path)])
    with pytest.raises(CircuitError, match="is a folder"):
        load_circuit(tmp_path)
    bad = tmp_path / "bad.graphml"
    bad.write_text("<graphml><graph><node id='a'></graph>")
    with pytest.raises(CircuitError, match="not GraphML"):
        from_graphml(bad)


def test_a_folder_without_tokenizer_files_names_them(tmp_path):
    """Weights without a tokenizer: a typed error naming the files, not transformers' note
    about sentencepiece or tiktoken (both of which are installed)."""
    from helpers import save_model_folder

    from interp.loading import TokenizerMissingError
    from interp.testing import tiny_model

    folder = save_model_folder(tiny_model("llama"), tmp_path / "m")
    for path in folder.iterdir():
        if path.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")):
            path.unlink()
    with pytest.raises(TokenizerMissingError, match="no tokenizer"):
        interp.load(str(folder))
