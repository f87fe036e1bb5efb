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


def test_prompt_and_site_errors_are_interp_errors_and_keep_their_builtins(model):
    from interp.models import UnknownSiteError
    from interp.tokens import PromptError

    assert issubclass(PromptError, InterpError) and issubclass(PromptError, ValueError)
    assert issubclass(UnknownSiteError, InterpError)
    assert issubclass(UnknownSiteError, KeyError) and issubclass(UnknownSiteError, ValueError)
    with pytest.raises(InterpError, match="empty prompt"):
        model.to_tokens("", prepend_bos=False)
    with pytest.raises(InterpError, match="valid sites"):
        model.run_with_cache(SHORT, sites=["nope"])


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


def test_unknown_token_warning_names_the_words_once_per_batch(model):
    from interp.tokens import UnknownTokenWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.to_tokens(["once upon zzqxj", "a time qwvrk zzqxj", "once upon a time"])
    unknown = [w for w in caught if issubclass(w.category, UnknownTokenWarning)]
    assert len(unknown) == 1, [str(w.message) for w in unknown]
    message = str(unknown[0].message)
    assert "'zzqxj', 'qwvrk'" in message and "'once'" not in message
    assert unknown[0].filename == __file__  # points at the caller's line


def _byte_level_bpe():
    """A GPT-2-style tokenizer trained on the spot: byte-level BPE, unk token <|endoftext|>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([LONG], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<|endoftext|>")


def test_unknown_token_warning_stays_quiet_on_byte_level_bpe():
    from interp.tokens import UnknownTokenWarning, to_tokens

    texts = ["Zyzzyva qwvrk: naïve café ☃ 日本", "<|endoftext|> spelled out"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownTokenWarning)
        to_tokens(_byte_level_bpe(), texts, prepend_bos=False, pad_id=0, max_len=None)


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


def test_a_folder_without_tokenizer_files_loads_for_token_id_analyses(tmp_path):
    """Weights without a tokenizer: the load warns naming the files (it used to stop with
    transformers' note about sentencepiece or tiktoken, both installed); analyses on token ids
    run (interp induction, end to end through the CLI); text raises a typed error naming the
    files, at first use."""
    from helpers import save_model_folder
    from typer.testing import CliRunner

    from interp.cli import app
    from interp.loading import TokenizerMissingError, TokenizerMissingWarning
    from interp.testing import tiny_model

    folder = save_model_folder(tiny_model("llama"), tmp_path / "m")
    for path in folder.iterdir():
        if path.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")):
            path.unlink()
    with pytest.warns(TokenizerMissingWarning, match="no tokenizer files"):
        model = interp.load(str(folder))
    assert model.prepends_bos == (model.hf.config.bos_token_id is not None)
    for use_text in (lambda: model.to_tokens("hello"), lambda: model.to_str([1, 2])):
        with pytest.raises(TokenizerMissingError, match="tokenizer.json"):
            use_text()
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["induction", str(folder), "--out", str(out), "--n", "3", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "second-copy loss" in result.output and (out / "summary.json").is_file()
    retrieval = CliRunner().invoke(app, ["retrieval", str(folder), "--out", str(tmp_path / "r")])
    assert retrieval.exit_code == 2 and "has no tokenizer files" in retrieval.output


# --- silent wrong results: each test below names what happened before the fix -------------------


def test_scale_values_recipe_refuses_bool_overflowing_and_missing_alpha():
    """A recipe's alpha True was at risk of reading as 1.0 and 1e38 of zeroing every logit (both
    refused already); a recipe without alpha raised a bare KeyError('alpha')."""
    from interp.interventions import Intervention

    with pytest.raises(ArgumentTypeError, match="alpha must be a number, got bool"):
        Intervention.from_dict({"type": "ScaleValues", "head": "L1H0", "alpha": True})
    with pytest.raises(InterventionError, match=r"\|alpha\| <="):
        Intervention.from_json('{"type": "ScaleValues", "head": "L1H0", "alpha": 1e38}')
    with pytest.raises(InterventionError, match=r"missing the field\(s\) \['alpha'\]"):
        Intervention.from_dict({"type": "ScaleValues", "head": "L1H0"})


@pytest.mark.parametrize("alpha", [1e5, 1e6, 1e38, -1e38])
def test_scale_values_refuses_alpha_beyond_the_limit(alpha):
    assert MAX_ALPHA <= 1e6
    with pytest.raises(InterventionError, match="finite number with"):
        ScaleValues("L1H0", alpha)


def test_scale_values_that_overflow_float16_are_refused_in_the_forward():
    """Before: in a float16 model whose z reaches ~20, z * 1e4 became inf and the logits NaN,
    with no error."""
    half = tiny_model("llama")
    half.hf.to(torch.float16)
    v_proj = half.layer_modules()[1].self_attn.v_proj
    with torch.no_grad():
        v_proj.weight.mul_(20.0)  # |z| of layer 1 ~ 40: x 1e4 is past float16's 65504
    with pytest.raises(InterventionError, match="overflows float16 at L1H0"):
        half.forward(SHORT, interventions=ScaleValues("L1H0", MAX_ALPHA))
    assert _no_hooks(half)
    assert torch.isfinite(half.forward(SHORT, interventions=ScaleValues("L1H0", 2.0))).all()


def test_applying_nothing_is_a_typed_error(model):
    """Before: model.apply() and model.intervene() raised a bare ValueError, and a failed
    intervene() printed 'Exception ignored in _Intervening.__del__' (AttributeError)."""
    import sys

    from interp.interventions import Intervention

    with pytest.raises(InterventionError, match="at least one"):
        model.apply()
    with pytest.raises(InterventionError, match="at least one"):
        Intervention.from_dict({"type": "Compose", "items": []})
    unraisable = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with pytest.raises(InterventionError, match="at least one"):
            model.intervene()
        with pytest.raises(ArgumentTypeError, match=r"PruneHeads\(\['L1H0'\]\)"):
            model.intervene("L1H0")
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert unraisable == []
    assert _no_hooks(model)


def test_recipe_errors_are_interp_errors():
    """Before: a recipe of an unknown type, an unknown field or an empty head list raised a bare
    ValueError, which the CLI shows as a crash with a traceback."""
    from interp.interventions import Intervention

    for bad in (
        {"type": "Prune", "heads": ["L0H1"]},
        {"type": "PruneHeads", "heads": ["L0H1"], "mod": "mean"},
        {"type": "PruneHeads", "heads": []},
        {"type": "PruneHeads", "heads": ["L0H1"], "mode": "zeros"},
    ):
        with pytest.raises(InterventionError):
            Intervention.from_dict(bad)


def test_head_parse_takes_numpy_integers_as_ints():
    """Integer indices from NumPy (an argmax over a score grid) are ints, not truncations; before
    they were refused. Floats and bools of any library still are."""
    import numpy as np

    head = Head.parse((np.int64(1), np.int32(2)))
    assert head == Head(1, 2) and type(head.layer) is int and type(head.head) is int
    assert interp.heads.parse_heads((np.int64(1), 2)) == (Head(1, 2),)
    assert type(Head(np.int64(3), 0).layer) is int
    for spec in [(np.float64(1.0), 2), (np.bool_(True), 1), (1.5, 2), (True, 1)]:
        with pytest.raises(HeadSpecError, match="must be an int"):
            Head.parse(spec)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(max_new_tokens=True), ArgumentTypeError, "max_new_tokens must be an int"),
        (dict(max_new_tokens=-1), InvalidArgumentError, ">= 1"),
        (dict(top_k=0), InvalidArgumentError, "top_k must be in 1.."),
        (dict(interventions="L1H0"), ArgumentTypeError, r"PruneHeads\(\['L1H0'\]\)"),
        (dict(do_sample=True, temperature=float("nan")), InvalidArgumentError, "finite"),
        (dict(do_sample=True, temperature=True), ArgumentTypeError, "temperature must be a"),
        (dict(do_sample=True, temperature="0.5"), ArgumentTypeError, "temperature must be a"),
        (dict(do_sample="no"), ArgumentTypeError, "do_sample must be True or False"),
    ],
)
def test_generate_refuses_more_bad_options(model, kwargs, error, match):
    """Before: temperature NaN failed in torch.multinomial (RuntimeError), "0.5" in a comparison
    (TypeError), True sampled at temperature 1, and do_sample="no" sampled."""
    kwargs = {"max_new_tokens": 2, **kwargs}
    with pytest.raises(error, match=match):
        model.generate(SHORT, **kwargs)
    assert _no_hooks(model)


def test_sampling_option_warning_points_at_the_callers_line(model):
    """Before: the warning named interp/models.py, so Python's once-per-line filter showed it
    once for every call site together."""
    from interp.generation import SamplingOptionWarning

    with pytest.warns(SamplingOptionWarning, match="do_sample=True") as caught:
        model.generate(SHORT, max_new_tokens=1, temperature=0.7)
    assert caught[0].filename == __file__


def test_nested_intervene_of_the_same_object_keeps_the_outer_one(model):
    """The rule: an intervention is on at most once. The inner `with` is refused; the outer block
    keeps it on until its own exit (no reference count is needed)."""
    scale = ScaleValues("L1H0", 2.0)
    clean = model.forward(SHORT)
    with model.intervene(scale):
        outer = model.forward(SHORT)
        with pytest.raises(InterventionError, match=r"model\.remove\("):
            with model.intervene(scale):
                pass
        assert torch.equal(model.forward(SHORT), outer)
        assert model.active_interventions == (scale,)
    assert not torch.equal(outer, clean)
    assert torch.equal(model.forward(SHORT), clean)
    assert _no_hooks(model)


def _scale_of_l1h0(model, **kwargs) -> float:
    """The factor by which an intervention scaled L1H0's z (1.0: untouched)."""
    _, base = model.run_with_cache(SHORT, sites="z", layers=1, use_interventions=False)
    _, cache = model.run_with_cache(SHORT, sites="z", layers=1, **kwargs)
    return float((cache[1, "z"][..., 0, :] / base[1, "z"][..., 0, :]).mean())


def test_the_same_intervention_given_twice_is_refused(model):
    """Before: model.apply(r, r), interventions=r + r and interventions=[r, r] all scaled L1H0
    by 4 instead of 2."""
    scale = ScaleValues("L1H0", 2.0)
    assert _scale_of_l1h0(model, interventions=scale) == pytest.approx(2.0)
    with pytest.raises(InterventionError, match="given twice"):
        model.apply(scale, scale)
    with pytest.raises(InterventionError, match="given twice"):
        model.apply(scale + ScaleValues("L1H0", 2.0))  # equal objects count as the same
    for given in (scale + scale, [scale, scale]):
        with pytest.raises(InterventionError, match="given twice"):
            model.forward(SHORT, interventions=given)
    assert _no_hooks(model)


def test_an_applied_intervention_given_again_to_a_run_is_refused(model):
    """Before: with r applied, forward(interventions=r) scaled by 4 (max logit change 1.37 from
    the applied-only run) and generate(interventions=r) decoded under x4."""
    scale = ScaleValues("L1H0", 2.0)
    applied = model.apply(scale)
    try:
        once = model.forward(SHORT)
        with pytest.raises(InterventionError, match="already applied.*use_interventions=False"):
            model.forward(SHORT, interventions=scale)
        with pytest.raises(InterventionError, match="already applied"):
            model.generate(SHORT, max_new_tokens=1, interventions=ScaleValues("L1H0", 2.0))
        assert torch.equal(model.forward(SHORT, interventions=scale, use_interventions=False), once)
        assert _scale_of_l1h0(model) == pytest.approx(2.0)
    finally:
        model.remove(applied)
    assert _no_hooks(model)


def test_intervene_without_with_warns_a_runtime_warning(model):
    """Before: InterventionNotEnteredWarning was a UserWarning."""
    assert issubclass(InterventionNotEnteredWarning, RuntimeWarning)
    with pytest.warns(InterventionNotEnteredWarning, match="not used in a `with` block"):
        model.intervene(ScaleValues("L1H0", 2.0))
        gc.collect()
    assert not model.active_interventions


def test_remove_names_what_it_takes(model):
    """Before: model.remove('L0H1') said only "'L0H1' is not applied to this model"."""
    with pytest.raises(ArgumentTypeError, match="the intervention model.apply returned"):
        model.remove("L0H1")
    with pytest.raises(InterventionError, match="model.active_interventions lists"):
        model.remove(PruneHeads(["L0H1"]))


@pytest.mark.parametrize("reference", ["", "   \n\t", ["once upon a time", " "]])
def test_head_means_refuses_blank_reference_texts(model, reference):
    """Already refused before this change (the mean would be over BOS alone)."""
    with pytest.raises(InvalidArgumentError, match="BOS token alone"):
        PruneHeads.with_means(model, ["L1H0"], reference)


def test_circuit_from_json_refuses_another_version_and_unknown_fields():
    """Before: Circuit.from_json / from_dict (unlike load_circuit) read schema_version "9.9" with
    an extra top-level key, and node or edge keys they do not know, and wrote them back out as
    version 1.0 without those fields."""
    from interp.circuit import Circuit, CircuitError

    assert issubclass(CircuitError, InterpError)
    with pytest.raises(CircuitError, match=r"'9.9' is not the version this interp reads \('1.0'\)"):
        Circuit.from_json(CIRCUIT.replace('"1.0"', '"9.9"'))
    with pytest.raises(CircuitError, match=r"unknown field\(s\) \['extra'\]; allowed: \['schema"):
        Circuit.from_json(CIRCUIT[:-1] + ', "extra": 1}')
    node = {"model": "m", "method": "x", "nodes": [{"name": "L0H1", "rol": "mover"}]}
    with pytest.raises(CircuitError, match=r"nodes\[0\]\.rol: unknown"):
        Circuit.from_dict(node)
    edge = {
        "model": "m",
        "method": "x",
        "nodes": [{"name": "L0H1"}],
        "edges": [{"source": "L0H1", "target": "logits", "wieght": 1.0}],
    }
    with pytest.raises(CircuitError, match=r"edges\[0\]\.wieght: unknown"):
        Circuit.from_dict(edge)
    plain = Circuit.from_dict({"model": "m", "method": "x", "nodes": [{"name": "L0H1"}]})
    assert Circuit.from_json(plain.to_json()) == plain


def test_load_circuit_names_the_expected_version_and_fields():
    """Before: version "2.0" got "does not match '^1\\.[0-9]+$'" and an extra key did not say
    which keys are allowed."""
    from interp.circuit import CircuitError
    from interp.export import load_circuit

    with pytest.raises(CircuitError, match=r"'2.0' is not the version this interp reads \('1.0'"):
        load_circuit(CIRCUIT.replace('"1.0"', '"2.0"'))
    with pytest.raises(
        CircuitError, match=r"'extra' was unexpected\); allowed: \['schema_version'"
    ):
        load_circuit(CIRCUIT[:-1] + ', "extra": 1}')


def test_garbage_weights_warn_at_load_naming_the_tensors(tmp_path):
    """A folder whose weights hold NaN loads (the user may want to inspect it) but says so."""
    from helpers import save_model_folder

    import interp
    from interp.loading.weights_check import NonFiniteWeightsWarning
    from interp.testing import tiny_model

    model = tiny_model("llama")
    folder = save_model_folder(model, tmp_path / "clean")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteWeightsWarning)
        interp.load(str(folder))  # clean weights: no warning
    with torch.no_grad():
        model.hf.model.layers[1].mlp.up_proj.weight[0, 0] = float("nan")
    folder = save_model_folder(model, tmp_path / "nan")
    with pytest.warns(
        NonFiniteWeightsWarning, match=r"layers\.1\.mlp\.up_proj\.weight \(1 values\)"
    ):
        interp.load(str(folder))


@pytest.mark.parametrize("spec", [None, 123, "", ["world-base"]])
def test_load_refuses_a_spec_that_is_not_text_at_once(spec):
    """Before: load(None) / load(123) spent 23 s in hub retries, then 'not on this machine'."""
    import interp

    with pytest.raises(InterpError, match="interp.load takes a model as text"):
        interp.load(spec)


@pytest.mark.parametrize(
    "device, match",
    [("gpu", "unknown device 'gpu': use 'cpu', 'cuda'"), ("cuda:0", "CUDA GPU|numbered from 0")],
)
def test_load_refuses_a_device_before_reading_weights(device, match, monkeypatch):
    """Before: 'gpu' ended in torch's list of 20 device types; 'cuda' on a CPU build in an
    AssertionError after the weights were read."""
    import interp
    from interp.loading import spec_checks

    if device.startswith("cuda") and torch.cuda.is_available():
        monkeypatch.setattr(spec_checks.torch.cuda, "is_available", lambda: False)
    read = []
    monkeypatch.setattr("interp.loading._load_any", lambda *a: read.append(a))
    with pytest.raises(spec_checks.DeviceUnavailableError, match=match):
        interp.load("world-base", device=device)
    assert read == []  # refused before anything was loaded


def test_a_zoo_name_typo_says_did_you_mean_without_the_hub(monkeypatch):
    """Before: 23 s of hub retries, then 'not on this machine'."""
    import interp

    monkeypatch.setattr("interp.loading._load_hub", lambda *a: pytest.fail("went to the hub"))
    with pytest.raises(InterpError, match="did you mean 'world-base'"):
        interp.load("world-bsae")


def test_a_folder_named_like_a_zoo_model_does_not_shadow_it(tmp_path, monkeypatch):
    """Before: an empty folder 'world-base' in the working directory was loaded instead of the
    zoo model (and failed: no config.json)."""
    import interp
    from interp.loading import ShadowedNameWarning

    (tmp_path / "world-base").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.warns(ShadowedNameWarning, match="pass './world-base'"):
        model = interp.load("world-base")
    assert model.name == "world-base" and model.n_layers > 0
    with pytest.raises(InterpError, match="no config.json"):
        interp.load("./world-base")


def test_a_folder_of_an_unsupported_architecture_is_refused_before_its_weights(tmp_path):
    """Before: a BERT folder loaded as BertLMHeadModel (random new weights), then failed on the
    tokenizer or on the head sites."""
    from helpers import save_bert_folder

    import interp
    from interp.arch import UnsupportedArchitectureError

    save_bert_folder(tmp_path / "bert")
    with pytest.raises(UnsupportedArchitectureError, match="BertModel.*LlamaForCausalLM"):
        interp.load(str(tmp_path / "bert"))


def test_truncated_weights_name_the_folder(tmp_path):
    """Before: a raw SafetensorError without the path."""
    from helpers import save_model_folder

    import interp
    from interp.loading import ModelNotAvailableError
    from interp.testing import tiny_model

    folder = save_model_folder(tiny_model("llama"), tmp_path / "m")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelNotAvailableError, match=f"{folder}.*damaged or truncated"):
        interp.load(str(folder))


def test_load_circuit_points_graphml_to_its_reader(tmp_path):
    from interp.circuit import CircuitError
    from interp.export import load_circuit

    path = tmp_path / "c.graphml"
    path.write_text("<graphml><node id='L0H1'></graphml")
    with pytest.raises(CircuitError, match="from_graphml"):
        load_circuit(path)


def test_a_recipe_path_that_is_a_folder_or_missing_is_a_typed_error(tmp_path):
    """Before: IsADirectoryError / FileNotFoundError tracebacks from `interp generate --recipe`."""
    from interp.interventions import Intervention, InterventionError

    with pytest.raises(InterventionError, match="is a folder; give the file inside it"):
        Intervention.from_json(str(tmp_path))
    with pytest.raises(InterventionError, match="no file .*check the path"):
        Intervention.from_json(str(tmp_path / "nope.json"))


def test_every_error_class_interp_defines_is_an_interp_error():
    """Walk interp/ and circuits/: each `*Error` class defined there subclasses InterpError, so
    `except InterpError` (the CLI's rule) catches every error raised on purpose."""
    import importlib
    import inspect
    import pkgutil

    import circuits
    import interp

    stray = []
    for package in (interp, circuits):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".notebook" in info.name or info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            for name, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module.__name__ or not name.endswith("Error"):
                    continue
                if not issubclass(cls, InterpError):
                    stray.append(f"{info.name}.{name}")
    assert not stray, f"error classes outside InterpError: {stray}"
