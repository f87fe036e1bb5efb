"""Knowledge-conflict data and the PH3 analyzer, on tiny random models and planted cases."""

import json
import warnings

import pytest
import torch
from helpers import CONFLICT_ANSWERS, own_conflict_items, save_model_folder, write_items_jsonl

import interp
from circuits import knowledge_conflict as kc
from circuits import registry
from interp.analysis import AnalysisResult, run_with_cost
from interp.data.conflict import (
    ConflictDataError,
    ConflictItem,
    MultiTokenAnswerWarning,
    Template,
    answer_tokens,
    build_conflict_set,
    load_counts,
    load_items,
    load_templates,
)
from interp.report import write_result
from interp.testing import tiny_model

TEMPLATES = {
    "statement": Template(
        "statement", "the capital of {subject} is {answer} .", "the capital of {subject} is"
    ),
    # same query (so the same memorised answers on a random model), another context layout
    "qa": Template(
        "qa", "what is the capital of {subject} ? : {answer} .", "the capital of {subject} is"
    ),
}


def own_items(model, template=TEMPLATES["statement"], per_subject=3):
    """Items whose memory answer is what the model itself says on the clean prompt."""
    return own_conflict_items(model, template, per_subject)


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama", n_layers=2)


@pytest.fixture(scope="module")
def items(model):
    return own_items(model)


@pytest.fixture(scope="module")
def data(model, items):
    return build_conflict_set(model, items, TEMPLATES["statement"])


# --- data ----------------------------------------------------------------------------------------


def test_template_prompts_and_errors():
    t = TEMPLATES["statement"]
    assert t.conflict_prompt("cat", "two") == "the capital of cat is two . the capital of cat is"
    assert t.clean_prompt("cat") == "the capital of cat is"
    with pytest.raises(ConflictDataError, match="subject"):
        Template("bad", "{answer}", "no placeholder")
    with pytest.raises(ConflictDataError, match="unknown field"):
        Template.from_dict({"name": "x", "context": "{answer}", "query": "{subject}", "colour": 1})


def test_build_keeps_known_subjects_and_counts_exclusions(model, items):
    wrong = [ConflictItem("dog", "ten" if items[3].memory_answer != "ten" else "nine", "one")]
    same = [ConflictItem("cat", items[0].memory_answer, items[0].memory_answer)]
    data = build_conflict_set(model, items + wrong + same, TEMPLATES["statement"])
    assert len(data) == len(items)
    assert data.excluded == {
        "context_equals_memory": 1,
        "same_first_token": 0,
        "unknown_subject": 1,
    }
    assert data.n_candidates == len(items) + 2
    ids = model.tokenizer.convert_tokens_to_ids([i.memory_answer for i in data.items])
    assert list(data.memory_ids) == ids


def test_no_usable_items_is_a_clear_error(model):
    with pytest.raises(ConflictDataError, match="no usable conflict items"):
        build_conflict_set(model, [ConflictItem("cat", "one", "one")], TEMPLATES["statement"])


def test_multi_token_answers_use_first_token_with_a_warning(model):
    prompt = TEMPLATES["statement"].clean_prompt("cat")
    two = model.decode(model.generate(prompt, 2).new_tokens[0]).strip()
    assert len(two.split()) == 2
    item = ConflictItem("cat", two, "ten" if not two.startswith("ten") else "nine")
    with pytest.warns(MultiTokenAnswerWarning, match="1 of 1"):
        data = build_conflict_set(model, [item], TEMPLATES["statement"])
    first = model.tokenizer.convert_tokens_to_ids(two.split()[0])
    assert data.memory_ids == (first,) and data.n_multi_token == 1
    # answers sharing their first token cannot be told apart by a first-token metric
    clash = ConflictItem("cat", two, two.split()[0] + " ten")
    with pytest.raises(ConflictDataError):
        build_conflict_set(model, [clash], TEMPLATES["statement"])


def test_answer_tokens_read_the_answer_in_context(stories):
    ids = answer_tokens(stories, "Lily has a dog. Lily has a", "cat")
    full = stories.tokenizer("Lily has a dog. Lily has a cat", add_special_tokens=False)[
        "input_ids"
    ]
    assert ids == full[-len(ids) :]


def test_jsonl_items_counts_and_templates(tmp_path):
    good = tmp_path / "items.jsonl"
    good.write_text(
        '{"subject": "cat", "memory_answer": "one", "context_answer": "two", "frequency": 3}\n\n'
    )
    assert load_items(good) == [ConflictItem("cat", "one", "two", 3.0)]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"subject": "cat", "memory_answer": "one", "context_answer": "two"}\n{"subject": "x"}\n'
    )
    with pytest.raises(ConflictDataError, match=":2: .*missing keys"):
        load_items(bad)
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(ConflictDataError, match=":1: not valid JSON"):
        load_items(tmp_path / "broken.jsonl")
    (tmp_path / "c.csv").write_text("subject,count\ncat,3\ndog,5\n")
    assert load_counts(tmp_path / "c.csv") == {"cat": 3.0, "dog": 5.0}
    (tmp_path / "t.json").write_text(json.dumps([TEMPLATES["qa"].to_dict()]))
    assert load_templates(tmp_path / "t.json") == {"qa": TEMPLATES["qa"]}


def test_split_is_by_subject_and_seeded(data):
    a = data.split_subjects((0.5, 0.25, 0.25), seed=1)
    assert a == data.split_subjects((0.5, 0.25, 0.25), seed=1)
    assert sorted(sum(a, [])) == sorted({i.subject for i in data.items})
    assert not set(a[0]) & set(a[2])


def test_corrupted_prompts_carry_neither_answer(data):
    for item, prompt in zip(data.items, data.corrupted_prompts(0)):
        words = prompt.split()
        assert item.subject not in words
        assert item.memory_answer not in words and item.context_answer not in words


# --- path patching, checked against an unbatched brute-force reference --------------------------


def _z_and_metric(model, text, z_override=None, mem=None, ctx=None):
    """Run one unpadded prompt with plain torch hooks; return {layer: z} and LD at the end."""
    zs, handles = {}, []
    for layer in range(model.n_layers):
        o_proj = model.hf.model.layers[layer].self_attn.o_proj

        def hook(module, args, layer=layer):
            if z_override is not None:
                return (z_override[layer],)
            zs[layer] = args[0].detach().clone()

        handles.append(o_proj.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            logits = model.hf(model.to_tokens(text).input_ids).logits[0, -1]
    finally:
        for h in handles:
            h.remove()
    return zs, (None if mem is None else float(logits[mem] - logits[ctx]))


def _brute_force_scores(model, data, references):
    scores = torch.zeros(model.n_layers, model.n_heads)
    d = model.d_head
    for i, (prompt, ref) in enumerate(zip(data.prompts(), references)):
        mem, ctx = data.memory_ids[i], data.context_ids[i]
        zb, base = _z_and_metric(model, prompt, mem=mem, ctx=ctx)
        zr, _ = _z_and_metric(model, ref)
        for head in model.all_heads():
            frozen = {l: z.clone() for l, z in zb.items()}
            cols = slice(head.head * d, (head.head + 1) * d)
            frozen[head.layer][:, -1, cols] = zr[head.layer][:, -1, cols]  # last tokens aligned
            _, patched = _z_and_metric(model, prompt, frozen, mem, ctx)
            scores[head.layer, head.head] += (base - patched) / len(data)
    return scores


def test_locate_heads_matches_brute_force_corrupted_reference(model, data):
    small = data.subset(range(6))
    got = kc.locate_heads(model, small, source="corrupted", batch_size=16, seed=3)
    want = _brute_force_scores(model, small, small.corrupted_prompts(3, model))
    assert torch.allclose(got.scores, want, atol=1e-5)
    assert "positive = memory head" in got.meta["sign"]


def test_prompts_of_several_lengths_are_patched_in_padding_free_groups(model):
    subjects = ["cat", "big dog", "red box", "girl", "small city", "key"]
    items = []
    for i, s in enumerate(subjects):
        mem = model.decode(
            model.generate(TEMPLATES["statement"].clean_prompt(s), 1).new_tokens[0]
        ).strip()
        items.append(ConflictItem(s, mem, [a for a in CONFLICT_ANSWERS if a != mem][i]))
    data = build_conflict_set(model, items, TEMPLATES["statement"])
    got = kc.locate_heads(model, data, batch_size=16, seed=1)
    assert len(got.meta["groups"]) == 2 and not any(g["padded"] for g in got.meta["groups"])
    want = _brute_force_scores(model, data, data.corrupted_prompts(1, model))
    assert torch.allclose(got.scores, want, atol=1e-5)


def test_locate_heads_aligns_clean_reference_of_another_length(model, data):
    small = data.subset(range(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            got = kc.locate_heads(model, small, source="clean", batch_size=16)
        except ConflictDataError as err:
            if "needed padding" in str(err):
                pytest.skip("interp.patching cannot take padded Tokens yet (see the report's diff)")
            raise
    assert got.meta["groups"][0]["padded"]
    want = _brute_force_scores(model, small, small.clean_prompts())
    assert torch.allclose(got.scores, want, atol=1e-5)


def test_probability_metric_and_attribution_agreement(model, data):
    probs = kc.locate_heads(model, data, metric="prob_diff")
    assert probs.scores.abs().max() <= 2
    exact = kc.locate_heads(model, data)
    approx = kc.attribution_scores(model, data)
    assert kc.spearman(exact.scores, approx.scores) > 0.5


def test_spearman_planted():
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert kc.spearman(a, a**3) == pytest.approx(1.0)
    assert kc.spearman(a, -a) == pytest.approx(-1.0)
    assert kc.spearman(
        torch.tensor([1.0, 1.0, 2.0, float("nan")]), torch.tensor([0.0, 0.0, 5.0, 1.0])
    ) == pytest.approx(1.0)


def test_ranked_groups_by_sign():
    scores = interp.results.HeadScores(
        torch.tensor([[0.5, -2.0], [1.5, -0.1]]), model="toy", method="t"
    )
    assert kc.ranked(scores, "memory") == [interp.Head(1, 0), interp.Head(0, 0)]
    assert kc.ranked(scores, "context") == [interp.Head(0, 1), interp.Head(1, 1)]


def test_located_heads_are_those_with_a_tenth_of_the_largest_effect():
    scores = interp.results.HeadScores(
        torch.tensor([[5.0, -2.0], [0.4, -0.6]]), model="toy", method="t"
    )
    assert kc.located(scores) == [interp.Head(0, 0), interp.Head(0, 1), interp.Head(1, 1)]
    assert kc.located(scores, frac=0.5) == [interp.Head(0, 0)]
    zero = interp.results.HeadScores(torch.zeros(2, 2), model="toy", method="t")
    assert kc.located(zero) == []


# --- behaviour, pruning, controls ------------------------------------------------------------


def test_usage_rates_count_every_prompt(model, data):
    r = kc.usage_rates(model, data, batch_size=5)
    assert r["n"] == len(data)
    assert r["memory"] + r["context"] + r["other"] == pytest.approx(1.0)
    logits = model.forward(data.prompts())[:, -1].argmax(-1)
    assert r["memory"] == pytest.approx(
        float((logits == torch.tensor(data.memory_ids)).float().mean())
    )


def test_prune_eval_matches_manual_pruning(model, data):
    heads = [interp.Head(1, 2), interp.Head(0, 5)]
    out = kc.prune_eval(model, data, heads)
    with model.intervene(interp.PruneHeads(heads)):
        pruned = model.forward(data.prompts())[:, -1].argmax(-1)
    assert out["after"]["memory"] == pytest.approx(
        float((pruned == torch.tensor(data.memory_ids)).float().mean())
    )
    assert model.active_interventions == ()


def test_k_checks(model, data):
    heads = model.all_heads()[:4]
    k, curve = kc.choose_k(model, data, heads, "memory", k_grid=(1, 3, 5, 7))
    assert sorted(curve) == [1, 3] and k in (1, 3)  # capped by the 4 located heads
    assert curve[k] >= max(curve.values()) - 0.10 and (
        k == 1 or curve[1] < max(curve.values()) - 0.10
    )
    k_strict, _ = kc.choose_k(model, data, heads, "memory", k_grid=(1, 3), within=0.0)
    assert curve[k_strict] == max(curve.values())
    with pytest.raises(kc.KTooLargeError, match="larger than the model's 16 heads"):
        kc.choose_k(model, data, heads, "memory", k_grid=(1, 99))
    with pytest.raises(kc.KTooLargeError, match="no k"):
        kc.choose_k(model, data, heads, "memory", k_grid=(5,))
    with pytest.raises(kc.KTooLargeError):
        kc.random_control(model, data, 16, model.all_heads()[:1], 1, 0)


def test_random_control_avoids_pruned_heads_and_is_seeded(model, data):
    pruned = model.all_heads()[:3]
    a = kc.random_control(model, data, 3, pruned, n_draws=3, seed=0)
    b = kc.random_control(model, data, 3, pruned, n_draws=3, seed=0)
    assert a == b
    for draw in a["draws"]:
        assert not set(draw["heads"]) & {str(h) for h in pruned}


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="source"):
        kc.Config(source="noise")
    with pytest.raises(ValueError, match="k_grid"):
        kc.Config(k_grid=(0,))
    with pytest.raises(ValueError, match="order"):
        kc.Config(order="random")
    for formats in (("qa",), ("qa", "qa"), ("a", "b", "c")):  # --formats qa was an IndexError
        with pytest.raises(ValueError, match="two different formats"):
            kc.Config(formats=formats)


def test_validation_order_ranks_located_heads_by_their_own_pruning_effect(model, data):
    scores = kc.locate_heads(model, data)
    for role, target in (("memory", "context"), ("context", "memory")):
        order = kc.validation_order(model, data, scores, role, target, frac=0.1)
        located = set(kc.located(scores, 0.1))
        assert set(order) == {h for h in kc.ranked(scores, role) if h in located}
        gains = [kc.usage_rates(model, data, interp.PruneHeads([h]))[target] for h in order]
        assert gains == sorted(gains, reverse=True)


def test_run_end_to_end_and_leaves_model_clean(model, items, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result, cost = run_with_cost(
            registry.get("knowledge_conflict").run,
            model,
            kc.Config(k_grid=(1, 3), n_random=2, n_per_subject=3),
            items=items,
            templates=TEMPLATES,
        )
    numbers = result.numbers()
    assert isinstance(result, AnalysisResult) and result.analyzer == "knowledge_conflict"
    floor, how = result.floor()  # a lower bound: the run itself needs at least that many forwards
    assert 0 < floor <= cost.forward_passes and "path patching" in how
    assert [r.role for r in result.roles()] == ["memory", "context"] and result.circuits() == []
    assert set(result.roles()[0].heads) == {str(h) for h in result.memory_heads}
    assert "pruned memory heads" in result.report()
    checks = result.roles()[0].checks  # the atlas sentences: one per direction and split
    shown = result.must_show()
    rows = [
        (d, p)
        for d in ("toward_memory", "toward_context")
        for p in ("held_out", "other_format")
        if "before" in shown[d].get(p, {})
    ]
    assert len(checks) == len(rows) and rows
    for check, (direction, part) in zip(checks, rows):
        row = shown[direction][part]
        assert ("rise >= 20", row["rise_ge_20"]) in check.bars
        assert ("control <= 5", row["random_le_5"]) in check.bars
        assert f"{100 * row['before']:.0f}% -> {100 * row['after']:.0f}%" in check.effect
    assert set(numbers["ph3"]) == {"toward_memory", "toward_context"}
    for direction in numbers["ph3"].values():
        if "error" in direction:
            continue
        assert direction["k"] in (1, 3)
        assert {
            "held_out",
            "other_format",
            "random_heads_held_out",
            "random_heads_other_format",
        } <= set(direction)
        for part in ("held_out", "other_format"):  # specificity control avoids every located head
            for draw in direction.get(f"random_outside_located_{part}", {}).get("draws", []):
                assert not set(draw["heads"]) & set(direction["located_heads"])
    assert -1 <= numbers["attribution_spearman_vs_path_patching"] <= 1
    assert model.active_interventions == ()
    assert not model.final_norm._forward_pre_hooks
    path = write_result(result, tmp_path)
    summary = json.loads(path.read_text())
    assert summary["analyzer"] == "knowledge_conflict" and summary["numbers"]["ph3"]
    assert summary["data"]["config"]["seed"] == 0 and summary["seeds"] == {"seed": 0}
    assert (tmp_path / "conflict_heads.html").exists()
    assert result.write_files(tmp_path) == [tmp_path / "conflict_scores.json"]


def _app():
    from interp.cli import app

    return app


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, model):
    return save_model_folder(model, tmp_path_factory.mktemp("tiny-llama"))


def test_cli_conflict(model_folder, items, tmp_path):
    from typer.testing import CliRunner

    app = _app()

    path = write_items_jsonl(items, tmp_path / "items.jsonl")
    templates = tmp_path / "templates.json"
    templates.write_text(json.dumps([t.to_dict() for t in TEMPLATES.values()]))
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "conflict",
            str(model_folder),
            "--items",
            str(path),
            "--templates",
            str(templates),
            "--k",
            "1",
            "--k",
            "3",
            "--n-random",
            "2",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((out / "summary.json").read_text())["numbers"]["ph3"]
    bad = CliRunner().invoke(
        app,
        [
            "conflict",
            str(model_folder),
            "--items",
            str(path),
            "--templates",
            str(templates),
            "--k",
            "99",
            "--out",
            str(out),
        ],
    )
    assert bad.exit_code == 2 and "larger than the model" in bad.output
    none = CliRunner().invoke(app, ["conflict", str(model_folder), "--out", str(out)])
    # no --items on a non-zoo model: the built-in English facts, none of which a random model knows
    assert (
        none.exit_code == 2
        and "no usable conflict items" in none.output
        and "--items" in none.output
    )


def test_default_k_grid_is_capped_by_the_model_heads():
    small = tiny_model("gpt2", n_layers=2)  # 2 x 4 = 8 heads: default grid -> 1, 3, 5, 7
    data = build_conflict_set(small, own_items(small, per_subject=1), TEMPLATES["statement"])
    split = {"val": data, "test": data, "test_other_format": data}
    scores = interp.results.HeadScores(
        -torch.arange(1.0, 9.0).reshape(2, 4), model="tiny", method="t"
    )
    out = kc.ph3_direction(small, scores, split, "context", "memory", kc.Config(n_random=1))
    assert sorted(out["k_validation_curve"]) == [1, 3, 5, 7]
    with pytest.raises(kc.KTooLargeError, match="larger than the model's 8 heads"):
        kc.ph3_direction(small, scores, split, "context", "memory", kc.Config(k_grid=(1, 9)))


def test_zoo_unseen_countries_are_excluded_as_unknown():
    from interp import zoo
    from interp.data.conflict import ZOO_TEMPLATES, zoo_items

    if "world-base" not in zoo.names():
        pytest.skip("world-base is not shipped in this checkout")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = interp.load("world-base")
    world = zoo.World(0)
    data = build_conflict_set(model, zoo_items(1), ZOO_TEMPLATES["statement"])
    kept = {i.subject for i in data.items}
    assert not kept & set(world.unseen_countries)  # never in training: the model cannot know them
    assert data.excluded["unknown_subject"] >= len(world.unseen_countries)
    assert len(kept) + data.excluded["unknown_subject"] == len(world.countries)


def test_default_formats_are_the_first_two_templates():
    from interp.data.conflict import EN_TEMPLATES, ZOO_TEMPLATES

    assert kc.resolve_formats(kc.Config(), ZOO_TEMPLATES).formats == ("statement", "spaced")
    assert kc.resolve_formats(kc.Config(), EN_TEMPLATES).formats == ("statement", "qa")
    assert kc.resolve_formats(kc.Config(formats=("qa", "statement")), ZOO_TEMPLATES).formats == (
        "qa",
        "statement",
    )
    with pytest.raises(ConflictDataError, match="two prompt formats"):
        kc.resolve_formats(kc.Config(), {"statement": ZOO_TEMPLATES["statement"]})
    # zoo formats set the context in filler text, as the zoo's training passages do
    for name in ("statement", "spaced"):
        assert len(ZOO_TEMPLATES[name].conflict_prompt("x", "y").split()) > 14


def test_relations_a_model_barely_knows_are_dropped_with_a_warning():
    """A relation with one known subject cannot give a corrupted reference prompt: it is dropped
    (named in the warning), the others are kept; with none left the error says what to give."""
    from types import SimpleNamespace as NS

    from circuits.knowledge_conflict.pipeline import RelationDroppedWarning, _patchable_relations
    from interp.data.conflict import ConflictDataError

    def item(rel, subj, m, c):
        return NS(relation=rel, subject=subj, memory_answer=m, context_answer=c)

    good = [
        item("capital", "France", "Paris", "Rome"),
        item("capital", "Italy", "Rome", "Paris"),
        item("capital", "Spain", "Madrid", "Bern"),
    ]
    lonely = [item("city_country", "Lyon", "France", "Peru")]
    parts = {"locate": NS(items=good + lonely), "val": NS(items=good)}
    with pytest.warns(RelationDroppedWarning, match="city_country"):
        assert _patchable_relations(parts) == {"capital"}
    with pytest.raises(ConflictDataError, match="more items"):
        _patchable_relations({"locate": NS(items=lonely)})


def test_shortlist_patches_only_the_attribution_top_heads_exactly(model, data):
    estimate = kc.attribution_scores(model, data, seed=2)
    heads = kc.shortlisted(estimate, 3)
    mags = sorted(((abs(float(estimate.scores[h.layer, h.head])), h) for h in heads))
    others = [
        abs(float(estimate.scores[h.layer, h.head])) for h in model.all_heads() if h not in heads
    ]
    assert len(heads) == 3 and min(m for m, _ in mags) >= max(others)
    assert kc.shortlisted(estimate, 0) is None and kc.shortlisted(estimate, 10_000) is None
    full = kc.locate_heads(model, data, seed=2)
    part = kc.locate_heads(model, data, seed=2, senders=heads)
    assert part.n_scored == 3 and "3 shortlisted heads" in part.method
    for h in heads:  # the shortlist's scores are exact: the same as patching every head
        assert float(part.scores[h.layer, h.head]) == pytest.approx(
            float(full.scores[h.layer, h.head]), abs=1e-5
        )


def test_shortlist_size_follows_model_size_and_config(model, monkeypatch):
    assert kc.shortlist_size(kc.Config(), model) == 0  # the zoo's small models: every head
    assert kc.shortlist_size(kc.Config(shortlist=5), model) == 5
    monkeypatch.setattr(kc.config, "is_large", lambda m: True)
    assert kc.shortlist_size(kc.Config(), model) == kc.LARGE_SHORTLIST
    with pytest.raises(ValueError, match="shortlist"):
        kc.Config(shortlist=-1)


def test_run_with_a_shortlist_counts_its_floor(model, items):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result, cost = run_with_cost(
            registry.get("knowledge_conflict").run,
            model,
            kc.Config(k_grid=(1,), n_random=1, shortlist=2),
            items=items,
            templates=TEMPLATES,
        )
    numbers = result.numbers()
    assert (
        numbers["path_patched_heads"] == 2
        and numbers["path_patched_of"] == model.n_layers * model.n_heads
    )
    floor, how = result.floor()
    assert f"path patching {result.data['n_locate'] * 4}" in how
    assert 0 < floor <= cost.forward_passes
