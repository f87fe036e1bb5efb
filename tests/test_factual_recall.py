"""Factual-recall analyzer: behaviour scoring, direct logit attribution, batched value scaling."""

import json
import math
import warnings

import pytest
import torch
from helpers import CONFLICT_SUBJECTS, own_conflict_items, save_model_folder, write_items_jsonl

import interp
from circuits import factual_recall as fr
from circuits import registry
from interp.analysis import AnalysisResult, run_with_cost
from interp.data.conflict import Template, build_conflict_set
from interp.report import write_result
from interp.testing import tiny_model

TEMPLATE = Template(
    "statement", "the capital of {subject} is {answer} .", "the capital of {subject} is"
)


def own_items(model, per_subject=2):
    return own_conflict_items(model, TEMPLATE, per_subject)


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama", n_layers=2)


@pytest.fixture(scope="module")
def items(model):
    return own_items(model)


@pytest.fixture(scope="module")
def data(model, items):
    return build_conflict_set(model, items, TEMPLATE)


# --- behaviour ---------------------------------------------------------------------------------


def test_classify_cuts_at_stop_and_prefers_memory():
    assert fr.classify(" Paris. Rome", "Paris", "Rome") == "memorised"
    assert fr.classify(" Rome and Paris", "Paris", "Rome") == "memorised"  # contains gt first
    assert fr.classify(" Rome. Paris", "Paris", "Rome") == "in_context"
    assert fr.classify(" Parisian", "Paris", "Rome") == "other"  # whole words only
    assert fr.classify("\nQ: Paris", "Paris", "Rome", stop=("Q:",)) == "other"
    assert fr.classify(" rusk .", "RUSK", "tor") == "memorised"


def test_wilson_interval():
    lo, hi = fr.wilson(0, 10)
    assert lo == 0 and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = fr.wilson(50, 100)
    assert (lo + hi) / 2 == pytest.approx(0.5) and hi - lo == pytest.approx(0.192, abs=2e-3)
    assert all(math.isnan(x) for x in fr.wilson(0, 0))


def test_behaviour_counts_other_and_never_drops(model, data):
    labels = fr.behaviour(model, data, max_new_tokens=2, batch_size=7)
    assert len(labels) == len(data) and set(labels) <= set(fr.LABELS)
    r = fr.rates(labels)
    assert r["n"] == len(data) and r["n_memorised"] + r["n_in_context"] + r["n_other"] == len(data)
    gen = model.generate(data.prompts(), 2)
    want = [
        fr.classify(" " + t, i.memory_answer, i.context_answer)
        for t, i in zip(gen.texts, data.items)
    ]
    assert labels == want


# --- direct logit attribution ---------------------------------------------------------------


def _non_head_terms(model, prompts, arch):
    """Embeddings + MLP outputs + attention output biases at the last position, by plain hooks."""
    parts, handles = [], []
    hf = model.hf
    if arch == "gpt2":
        handles.append(
            hf.transformer.drop.register_forward_hook(lambda m, a, o: parts.append(o[:, -1]))
        )
        layers = hf.transformer.h
        for layer in layers:
            handles.append(layer.mlp.register_forward_hook(lambda m, a, o: parts.append(o[:, -1])))
            parts_bias = layer.attn.c_proj.bias
            parts.append(parts_bias.detach()[None].expand(len(prompts), -1))
    else:
        handles.append(
            hf.model.embed_tokens.register_forward_hook(lambda m, a, o: parts.append(o[:, -1]))
        )
        for layer in hf.model.layers:
            handles.append(layer.mlp.register_forward_hook(lambda m, a, o: parts.append(o[:, -1])))
            if layer.self_attn.o_proj.bias is not None:
                parts.append(layer.self_attn.o_proj.bias.detach()[None].expand(len(prompts), -1))
    try:
        with torch.no_grad():
            hf(model.to_tokens(prompts).input_ids)
    finally:
        for h in handles:
            h.remove()
    return torch.stack(parts).sum(0)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_dla_sums_to_logit_difference_minus_non_head_terms(arch):
    model = tiny_model(arch, n_layers=2)
    prompts = ["the cat saw a red box", "a dog was in the big", "once upon a time there was"]
    tok = model.tokenizer
    target, foil = (
        tok.convert_tokens_to_ids(["box", "cat", "girl"]),
        tok.convert_tokens_to_ids(["dog", "red", "boy"]),
    )
    dla = fr.head_dla(model, prompts, target, foil)
    # the model's own logit difference, from a plain HF forward
    with torch.no_grad():
        logits = model.hf(model.to_tokens(prompts).input_ids).logits[:, -1]
    total = logits[range(3), target] - logits[range(3), foil]
    assert torch.allclose(dla["total"], total, atol=1e-5)
    # the non-head terms computed independently, passed through the norm as the model applies it
    rest_vec = _non_head_terms(model, prompts, arch)
    norm = model.final_norm
    resid = rest_vec.clone()
    z = fr.last_position_run(model, prompts)[0]
    w_out = torch.stack([model.w_out(l) for l in range(model.n_layers)])
    resid += torch.einsum("nlhd,lhdm->nm", z, w_out)
    if isinstance(norm, torch.nn.LayerNorm):
        scale = (resid.var(-1, unbiased=False) + norm.eps).sqrt()[:, None]
        mapped = (rest_vec - rest_vec.mean(-1, keepdim=True)) * norm.weight / scale + norm.bias
    else:
        scale = (resid.pow(2).mean(-1) + norm.variance_epsilon).sqrt()[:, None]
        mapped = rest_vec * norm.weight / scale
    w_u = model.unembed.weight
    direction = w_u[target] - w_u[foil]
    rest = (mapped * direction).sum(-1)
    assert torch.allclose(dla["heads"].sum((1, 2)), total - rest, atol=1e-4)
    assert torch.allclose(dla["rest"], rest, atol=1e-4)


def test_dla_attributes_the_plain_model(model):
    """Interventions applied to the model (here: all heads but one pruned) do not leak into DLA."""
    prompts = ["the cat saw a red box"]
    tok = model.tokenizer
    target, foil = tok.convert_tokens_to_ids(["box"]), tok.convert_tokens_to_ids(["dog"])
    keep = interp.Head(1, 3)
    others = [h for h in model.all_heads() if h != keep]
    with model.intervene(interp.PruneHeads(others)):
        dla_pruned = fr.head_dla(model, prompts, target, foil)
    # head_dla ignores applied interventions: it always attributes the plain model
    plain = fr.head_dla(model, prompts, target, foil)
    assert torch.allclose(dla_pruned["heads"], plain["heads"])
    assert model.active_interventions == ()


def test_head_attribution_groups(model, data):
    labels = ["memorised"] * len(data)
    attr = fr.head_attribution(model, data, labels, min_group=1)
    assert set(attr) == {"all", "memorised"}
    assert torch.allclose(attr["all"].scores, attr["memorised"].scores)
    dla = fr.head_dla(model, data.prompts(), data.context_ids, data.memory_ids)
    assert torch.allclose(attr["all"].scores, dla["heads"].mean(0), atol=1e-6)
    with pytest.raises(ValueError, match="one behaviour label per prompt"):
        fr.head_attribution(model, data, labels[:-1])


# --- value scaling -------------------------------------------------------------------------------


def test_row_scaling_equals_separate_scale_values_runs(model, data):
    prompts = data.prompts()[:3]
    head, alphas = interp.Head(1, 2), (-2.0, 0.5, 3.0)
    rows = prompts * len(alphas)
    scales = fr.head_scales(
        model.n_layers, model.n_heads, len(rows), head, [a for a in alphas for _ in prompts]
    )
    batched = model.forward(rows, interventions=fr.RowScaleValues(scales))
    gen = model.generate(rows, 3, interventions=fr.RowScaleValues(scales))
    for i, alpha in enumerate(alphas):
        single = model.forward(prompts, interventions=interp.ScaleValues(head, alpha))
        assert torch.allclose(batched[i * 3 : (i + 1) * 3], single, atol=1e-5)
        assert (
            gen.texts[i * 3 : (i + 1) * 3]
            == model.generate(prompts, 3, interventions=interp.ScaleValues(head, alpha)).texts
        )


def test_sweep_matches_naive_loop(model, data):
    small = data.subset(range(5))
    sweep = fr.scale_sweep(model, small, "L1H2", (0.0, 1.0, 4.0), max_new_tokens=2, batch_size=4)
    for alpha, r in zip(sweep["alphas"], sweep["rates"]):
        labels = fr.behaviour(
            model, small, interventions=interp.ScaleValues("L1H2", alpha), max_new_tokens=2
        )
        assert r == fr.rates(labels)
    assert sweep["n_rows"] == 15


def test_bad_sweep_input(model, data):
    with pytest.raises(ValueError, match="finite"):
        fr.scale_sweep(model, data, "L1H2", (1.0, float("nan")))
    with pytest.raises(ValueError, match="finite"):
        fr.Config(memory_alphas=(float("inf"),))
    with pytest.raises(interp.HeadIndexError, match="valid"):
        fr.scale_sweep(model, data, "L9H0", (1.0,))
    with pytest.raises(ValueError):
        fr.RowScaleValues(torch.full((2, 2, 8), float("nan")))


def test_sign_agreement_matches_explicit_ablation(model, data):
    small = data.subset(range(6))
    attr = fr.head_attribution(model, small, ["memorised"] * len(small), min_group=1)["all"]
    heads = [interp.Head(1, 0), interp.Head(0, 4)]
    out = fr.sign_agreement(model, small, heads, attr)
    ct, gt = torch.tensor(small.context_ids), torch.tensor(small.memory_ids)
    ld = lambda logits: float((logits[range(len(ct)), ct] - logits[range(len(ct)), gt]).mean())  # noqa: E731
    base = ld(model.forward(small.prompts())[:, -1])
    for head in heads:
        ablated = ld(model.forward(small.prompts(), interventions=interp.PruneHeads([head]))[:, -1])
        assert out["heads"][str(head)]["causal_effect_of_scaling_0_to_1"] == pytest.approx(
            base - ablated, abs=1e-4
        )


def test_frequency_bins_planted(data):
    counts = {s: float(i) for i, s in enumerate(CONFLICT_SUBJECTS)}
    labels = ["in_context" if counts[i.subject] < 8 else "memorised" for i in data.items]
    bins = fr.frequency_bins(data, labels, counts, n_bins=2)
    assert [b["context_rate"] for b in bins] == [1.0, 0.0]
    assert sum(b["n_prompts"] for b in bins) == len(data)


def test_run_writes_recipe_that_generate_applies(model, items, tmp_path):
    cfg = fr.Config(
        format="statement",
        memory_alphas=(-1.0, 0.0, 1.0),
        context_alphas=(0.0, 2.0),
        n_random=2,
        max_new_tokens=2,
        min_group=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result, cost = run_with_cost(
            registry.get("factual_recall").run,
            model,
            cfg,
            items=items,
            templates={"statement": TEMPLATE},
        )
    assert model.active_interventions == () and not model.final_norm._forward_pre_hooks
    assert isinstance(result, AnalysisResult) and result.analyzer == "factual_recall"
    floor, how = result.floor()  # a lower bound: the run itself needs at least that many forwards
    assert 0 < floor <= cost.forward_passes and "sweeps" in how
    assert [r.role for r in result.roles()] == ["recall: memory", "recall: in-context"]
    assert result.report().startswith("memory heads:")
    checks = result.roles()[0].checks  # the atlas sentences: one per goal with a chosen head
    must = result.must_show()
    goals = [g for g in ("in_context", "memorised") if "rate_after" in must.get(g, {})]
    assert len(checks) == len(goals)
    for check, goal in zip(checks, goals):
        assert check.effect.startswith(f"held out: scaling {must[goal]['head']}'s values x")
        assert ("control <= 5", must[goal]["random_le_5"]) in check.bars
    path = write_result(result, tmp_path)
    result.write_files(tmp_path)
    summary = json.loads(path.read_text())
    assert summary["data"]["config"]["memory_alphas"] == [-1.0, 1.0, 3]
    assert summary["numbers"]["frequency_bins"] and summary["numbers"]["best"]
    located = {f"L{l}H{h}" for l, h in result.attribution["all"].strongest(0.1)}
    for goal, control in result.controls.items():  # specificity control avoids located heads
        for draw in control.get("outside_located", {}).get("draws", []):
            assert draw["head"] not in located and draw["head"] != result.best[goal]["head"]
    recipe = interp.Intervention.from_json(str(tmp_path / "recipe_in_context.json"))
    assert isinstance(recipe, interp.ScaleValues)
    assert recipe.alpha == result.best["in_context"]["alpha"]


def _app():
    from interp.cli import app

    return app


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, model):
    return save_model_folder(model, tmp_path_factory.mktemp("tiny-llama-recall"))


def test_cli_recall_and_generate_recipe(model_folder, items, tmp_path):
    from typer.testing import CliRunner

    app = _app()

    path = write_items_jsonl(items, tmp_path / "items.jsonl", frequency=True)
    templates = tmp_path / "t.json"
    templates.write_text(json.dumps([TEMPLATE.to_dict()]))
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "recall",
            str(model_folder),
            "--items",
            str(path),
            "--templates",
            str(templates),
            "--format",
            "statement",
            "--alpha-step",
            "2.5",
            "--max-new-tokens",
            "2",
            "--n-random",
            "2",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["numbers"]["sweeps"]["memory_head"]["alphas"]) == 5
    recipe = out / "recipe_in_context.json"
    gen = CliRunner().invoke(
        app,
        [
            "generate",
            str(model_folder),
            "the capital of cat is one . the capital of cat is",
            "--recipe",
            str(recipe),
            "-n",
            "2",
        ],
    )
    assert gen.exit_code == 0 and "recipe:" in gen.output and "ScaleValues" in gen.output
    bad = CliRunner().invoke(
        app,
        [
            "recall",
            str(model_folder),
            "--items",
            str(path),
            "--templates",
            str(templates),
            "--format",
            "nope",
            "--out",
            str(out),
        ],
    )
    assert bad.exit_code == 2 and "unknown format" in bad.output


def test_best_alpha_is_the_mildest_setting_near_the_best_rate():
    rates = [{"in_context": r, "memorised": 1 - r} for r in (0.1, 0.2, 0.88, 0.9, 0.97)]
    sweep = {"alphas": [0.0, 1.0, 3.0, 5.0, 8.0], "rates": rates}
    assert fr.best_alpha(sweep, "in_context")[0] == 3.0  # 0.88 is within 0.10 of 0.97
    assert fr.best_alpha(sweep, "in_context", within=0.0)[0] == 8.0
    assert fr.best_alpha(sweep, "memorised")[0] == 0.0
