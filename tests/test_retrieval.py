"""Retrieval heads (circuits.retrieval) and NIAH prompts (interp.data.niah)."""

import copy
import dataclasses
import json
import math

import pytest
import torch

import interp
import interp.testing
from circuits import retrieval as R
from interp.backends.attention import _configs
from interp.backends.plan import Edit
from interp.data import niah
from interp.zoo.world import World

HAY = (
    "the cat saw a dog . the boy played in the box . a girl named one saw the big red apple . "
    "it was time to play ."
)
NEEDLE = niah.Needle("the key is in the blue box .", "where is the key ?", "in the blue box")
TEMPLATE = "{context} {question}"


@pytest.fixture(scope="module")
def tiny():
    return interp.testing.tiny_model("llama")


@pytest.fixture(scope="module")
def tiny_gpt2():
    return interp.testing.tiny_model("gpt2")


def tiny_prompts(model, lengths=(30, 50), depths=(0.0, 0.5, 1.0)):
    cfg = R.Config(
        lengths=lengths, depths=depths, haystack=HAY, needles=(NEEDLE,), template=TEMPLATE
    )
    return cfg.prompts(model)


# --------------------------------------------------------------------------- NIAH prompts


def test_zoo_prompt_spans_and_sentence_boundary():
    tok = World(0).build_tokenizer()
    needle = niah.zoo_needles(1)[0]
    starts = []
    for depth in (0.0, 0.3, 0.6, 1.0):
        p = niah.build_prompt(
            tok,
            niah.zoo_haystack(500),
            needle,
            80,
            depth,
            template=TEMPLATE,
            bos_id=tok.bos_token_id,
        )
        assert p.n_tokens <= 80
        assert tok.decode(p.input_ids[slice(*p.needle_span)]) == needle.text
        assert tok.decode(p.input_ids[slice(*p.answer_span)]) == needle.answer
        assert list(p.answer_ids) == list(p.input_ids[slice(*p.answer_span)])
        before = tok.decode([p.input_ids[p.needle_span[0] - 1]])
        assert before in (".", "<bos>")  # moved back to a sentence boundary
        starts.append(p.needle_span[0])
    assert starts == sorted(starts) and starts[0] == 1 and starts[-1] > 50


def test_multi_token_needle_with_the_models_tokenizer(stories):
    needle = niah.Needle(
        "The best thing to do in the park is to eat a big red apple.",
        "What is the best thing to do in the park?",
        "eat a big red apple",
    )
    p = niah.build_prompt(
        stories.tokenizer,
        "Lily went to the park. She saw a dog! It was fun.",
        needle,
        120,
        0.5,
        bos_id=stories.tokenizer.bos_token_id,
    )
    span = p.input_ids[slice(*p.answer_span)]
    assert len(span) > 3  # several SentencePiece tokens
    assert list(p.answer_ids) == list(span)  # what the model emits == what it copies
    assert p.text.endswith("Answer:") and p.n_tokens <= 120
    assert stories.decode(span).strip() == needle.answer


def test_bad_niah_input(tiny):
    tok = World(0).build_tokenizer()
    with pytest.raises(niah.EmptyHaystackError, match="empty"):
        niah.build_prompt(tok, "   ", niah.zoo_needles(1)[0], 64, 0.5, template=TEMPLATE)
    with pytest.raises(niah.NiahError, match="verbatim"):
        niah.Needle("the code of X is 5 .", "the code of X is", "7")
    with pytest.raises(niah.NeedleNotFoundError, match="the key is in the blue box"):
        niah.locate(tiny.tokenizer, "the cat saw a dog .", NEEDLE)
    with pytest.raises(niah.ContextTooLongError, match="window of 128"):
        R.Config(lengths=(200,), haystack=HAY, needles=(NEEDLE,), template=TEMPLATE).prompts(tiny)
    with pytest.raises(niah.NiahError, match="too short"):
        niah.build_prompt(
            tok, niah.zoo_haystack(100), niah.zoo_needles(1)[0], 4, 0.5, template=TEMPLATE
        )
    with pytest.raises(ValueError, match="mode"):
        R.Config(mode="greedy")


# --------------------------------------------------------------------------- pure scoring


def test_copy_hits_on_a_planted_attention_tensor():
    """Synthetic argmax grid: only head (1, 2) attends to the answer span at every step."""
    n_layers, n_heads, steps = 3, 4, 5
    key_ids = torch.arange(100, 140)[None]  # token at key i is 100 + i
    span = torch.tensor([[20, 20 + steps]])
    emitted = key_ids[:, 20 : 20 + steps]
    pos = torch.zeros(1, n_layers, n_heads, steps, dtype=torch.long)  # everyone looks at BOS
    pos[0, 1, 2] = torch.arange(20, 20 + steps)  # the copy head
    pos[0, 0, 1] = torch.arange(21, 21 + steps)  # off by one: wrong token
    pos[0, 2, 3] = 20 + steps  # right after the span
    tok = key_ids.gather(1, pos.flatten(1)).view_as(pos)
    scores = R.per_test_scores(R.copy_hits(pos, tok, emitted, span), torch.tensor([steps]))[0]
    assert scores[1, 2] == 1.0
    scores[1, 2] = 0
    assert scores.abs().max() == 0
    valid = torch.tensor([[True, True, False, False, False]])
    assert R.copy_hits(pos, tok, emitted, span, valid)[0, 1, 2] == 2


def test_retrieval_scores_rouge_and_spearman():
    per_test = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[0.5, 0.0]]])
    assert R.retrieval_scores(per_test, torch.tensor([True, False, True])).tolist() == [[0.75, 0.0]]
    assert R.retrieval_scores(per_test, torch.zeros(3, dtype=torch.bool)) is None
    assert R.rouge1_recall("eat a sandwich", "Eat a SANDWICH!") == 1.0
    assert R.rouge1_recall("a a b", "a b") == pytest.approx(2 / 3)
    assert R.spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    assert R.spearman([1, 1, 1], [1, 2, 3]) is None


# --------------------------------------------------------------------------- planted heads


class PlantCopy(interp.Intervention):
    """Hand-set q and k of one head so that answer row j attends to key span_start + j."""

    def __init__(self, layer, head, span_start, first_query, n):
        self.layer, self.head, self.span_start, self.first_query, self.n = (
            layer,
            head,
            span_start,
            first_query,
            n,
        )

    def edits(self, model):
        def plant(offset_of, scale):
            def fn(t, ctx):
                t = t.clone()
                t[:, :, self.head] = 0
                for r in range(t.shape[1]):
                    j = ctx.q_offset + r - offset_of
                    if 0 <= j < self.n:
                        t[:, r, self.head, j] = scale
                return t

            return fn

        return [
            Edit(self.layer, "q", plant(self.first_query, 1.0)),
            Edit(self.layer, "k", plant(self.span_start, 200.0)),
        ]


@pytest.mark.parametrize("route", R.ROUTES)
def test_planted_copy_head_is_found(tiny_gpt2, route):
    model = tiny_gpt2
    prompts = tiny_prompts(model, lengths=(40,), depths=(0.5,))
    p = prompts[0]
    plant = PlantCopy(1, 3, p.answer_span[0], p.n_tokens - 1, len(p.answer_ids))
    with model.intervene(plant):
        per_test, records = R.score_prompts(model, prompts, "teacher_forced", route=route)
    assert per_test[0, 1, 3] == 1.0  # every answer token copied by L1H3
    others = per_test[0].clone()
    others[1, 3] = 0
    assert others.max() < 1.0
    assert model.active_interventions == ()


def test_scores_match_brute_force_full_patterns(tiny):
    """Teacher forced: the copy test on HF's full eager patterns gives the same per-test scores."""
    prompts = tiny_prompts(tiny)
    twin = copy.deepcopy(tiny.hf)
    twin.set_attn_implementation("eager")
    expected = []
    for p in prompts:
        seq = torch.tensor([list(p.input_ids) + list(p.answer_ids[:-1])])
        n = len(p.answer_ids)
        with torch.no_grad():
            att = twin(input_ids=seq, output_attentions=True).attentions
        pos = torch.stack([a[:, :, -n:].argmax(-1) for a in att], 1)
        tok = seq.gather(1, pos.flatten(1)).view_as(pos)
        hits = R.copy_hits(pos, tok, torch.tensor([p.answer_ids]), torch.tensor([p.answer_span]))
        expected.append(hits[0] / (p.answer_span[1] - p.answer_span[0]))
    expected = torch.stack(expected)
    assert expected.sum() > 0  # the check is not vacuous
    for route in R.ROUTES:
        got, _ = R.score_prompts(tiny, prompts, "teacher_forced", route=route, batch_size=4)
        assert torch.equal(got, expected)


def test_decode_mode_matches_stepwise_recompute(tiny):
    """Decode: hits equal a brute-force loop that recomputes full eager patterns at every step."""
    prompts = [dataclasses.replace(p, answer_span=(1, p.n_tokens)) for p in tiny_prompts(tiny)]
    twin = copy.deepcopy(tiny.hf)
    twin.set_attn_implementation("eager")
    expected = []
    for p in prompts:
        seq = torch.tensor([list(p.input_ids)])
        hits = torch.zeros(tiny.n_layers, tiny.n_heads)
        for _ in range(len(p.answer_ids)):
            with torch.no_grad():
                out = twin(input_ids=seq, output_attentions=True)
            word = out.logits[0, -1].argmax()
            pos = torch.stack([a[0, :, -1].argmax(-1) for a in out.attentions])  # [L, H]
            inside = (pos >= 1) & (pos < p.n_tokens)
            hits += (inside & (seq[0, pos] == word)).float()
            if R.is_stop(tiny, int(word)):
                break
            seq = torch.cat([seq, word.view(1, 1)], 1)
        expected.append(hits / (p.n_tokens - 1))
    expected = torch.stack(expected)
    assert expected.sum() > 0
    for route in R.ROUTES:
        got, _ = R.score_prompts(tiny, prompts, "decode", route=route, batch_size=3)
        assert torch.allclose(got, expected)


def test_batching_and_backends_agree(tiny):
    prompts = tiny_prompts(tiny)
    ref, ref_records = R.score_prompts(tiny, prompts, "teacher_forced", batch_size=1)
    for kwargs in (
        dict(batch_size=6),
        dict(route="pattern", backend="transformer_lens", batch_size=4),
    ):
        got, records = R.score_prompts(tiny, prompts, "teacher_forced", **kwargs)
        assert torch.equal(got, ref) and records == ref_records


# --------------------------------------------------------------------------- results and purity


def test_model_that_never_retrieves_is_reported_not_nan(tiny):
    cfg = R.Config(
        lengths=(30,), depths=(0.0, 1.0), haystack=HAY, needles=(NEEDLE,), template=TEMPLATE
    )
    implementations = {id(c): c._attn_implementation for c in _configs(tiny.hf)}
    with pytest.warns(R.NoRetrievalWarning, match="no NIAH test was solved"):
        res = R.run(tiny, cfg)
    assert res.n_kept == 0 and not res.retrieves and res.share_above is None
    assert res.scores.n_scored == 0 and res.scores.threshold == 0.1
    numbers = res.numbers()
    assert "undefined" in numbers["note"] and numbers["niah_accuracy"] == 0.0
    assert "NaN" not in json.dumps(numbers)
    assert res.plot_accuracy().data and res.plot().layout.title.text.endswith("no scores")
    with pytest.raises(ValueError, match="solved 0 of 2 tests"):
        R.prune_experiment(tiny, 2, result=res)
    # nothing left behind: no interventions, attention implementation restored, no hooks
    assert tiny.active_interventions == ()
    assert {id(c): c._attn_implementation for c in _configs(tiny.hf)} == implementations
    assert not any(m._forward_hooks for m in tiny.hf.modules())


def test_result_object_with_kept_tests(stories):
    """stories260K answers a name needle ('Max'): scores, share, per-test scores, figures."""
    cfg = R.Config(
        lengths=(64, 128),
        depths=(0.0, 0.5, 1.0),
        haystack=STORY,
        needles=(MAX_NEEDLE,),
        template=TEMPLATE,
    )
    res = R.run(stories, cfg)
    assert res.n_tests == 6 and res.retrieves
    assert res.per_test.shape == (6, 5, 8)
    expected = res.per_test[res.kept].mean(0)
    assert torch.allclose(res.scores.scores, expected)
    assert res.share_above == pytest.approx(float((expected > 0.1).float().mean()))
    assert len(res.scores.meta["per_test"]) == 6
    grid = res.accuracy()
    assert len(grid) == 3 and len(grid[0]) == 2
    assert interp.results.HeadScores.from_json(res.scores.to_json()) == res.scores
    p = res.prompts[1]
    cut = R.without_needle(stories, p)
    assert "named Max" not in stories.decode(cut.input_ids)
    assert cut.n_tokens == p.n_tokens - (p.needle_span[1] - p.needle_span[0])


STORY = (
    "Lily went to the park with her mom. She saw a big dog. The dog was happy and ran fast. "
    "Tom had a red ball. They played all day. Then they went home and ate cake."
)
MAX_NEEDLE = niah.Needle("Lily had a pet cat named Max.", "Lily had a pet cat named", "Max")


def test_prune_experiment_runs_draws(stories):
    cfg = R.Config(
        lengths=(64, 128),
        depths=(0.0, 0.5, 1.0),
        haystack=STORY,
        needles=(MAX_NEEDLE,),
        template=TEMPLATE,
    )
    res = R.run(stories, cfg)
    pr = R.prune_experiment(stories, 2, "uniform", result=res, n_draws=3, seed=1)
    assert len(pr.random_draws) == 3 and pr.top_heads == tuple(res.top(2))
    top = set(res.top(max(2, len(res.heads))))
    assert all(len(h) == 2 and not set(h) & top for h, _ in pr.random_draws)
    assert 0 <= pr.top <= 1 and pr.baseline == pytest.approx(res.n_kept / res.n_tests, abs=0.34)
    assert pr.figure().data[0].y[0] == pr.baseline
    assert math.isfinite(pr.mean_random_drop)


def test_prune_curve_on_the_zoo_model():
    m = interp.load("world-base")
    res = R.run(m, R.Config(lengths=(56,), depths=(0.0, 1.0), n_needles=2))
    assert res.retrieves
    curve = R.prune_curve(m, [2, 1, 2], result=res, n_draws=2, seed=0)
    assert [c.k for c in curve] == [1, 2]
    for c in curve:
        assert c.top_heads == tuple(res.top(c.k)) and len(c.random_draws) == 2
        assert c.baseline == 1.0 and c.drop_top >= 50  # the zoo model needs its top head(s)
    rows = R.curve_numbers(curve)
    assert [r["k"] for r in rows] == [1, 2] and len(rows[0]["random_drop_points"]) == 2
    assert len(R.prune_curve_figure(curve).data) == 3
    with pytest.raises(ValueError, match="at least one k"):
        R.prune_curve(m, [], result=res)


def test_teacher_forced_pruning_accuracy_matches_decode_on_the_zoo_model():
    """The pruning check reads accuracy by teacher forcing (one forward per prompt and head set):
    unpruned it equals the scoring run's kept share, and under pruning it agrees prompt by prompt
    with greedy decoding wherever the answer is a single token (the same argmax either way)."""
    m = interp.load("world-base")
    res = R.run(m, R.Config(lengths=(56,), depths=(0.0, 0.5, 1.0), n_needles=2))
    tf, _ = R.niah_accuracy(m, res.prompts)
    assert tf == res.n_kept / res.n_tests
    prune = interp.PruneHeads(list(res.top(2)), mode="uniform")
    tf_acc, tf_solved = R.niah_accuracy(m, res.prompts, prune)
    de_acc, de_solved = R.niah_accuracy(m, res.prompts, prune, metric="decode")
    assert tf_acc < 1.0  # the pruning bites
    for p, a, b in zip(res.prompts, tf_solved, de_solved):
        if len(p.answer_ids) == 1:
            assert a == b
    with pytest.raises(ValueError, match="metric must be one of"):
        R.niah_accuracy(m, res.prompts, metric="greedy")
    pr = R.prune_experiment(m, 2, result=res, n_draws=1)
    assert (
        pr.metric == "teacher_forced"
        and pr.top == tf_acc
        and pr.to_dict()["metric"] == "teacher_forced"
    )


def test_uniform_prune_of_several_heads_in_one_layer_equals_one_by_one(tiny):
    """PruneHeads(uniform) edits each layer's pattern once for all its heads: the same logits
    as composing one PruneHeads per head."""
    heads, ids = ["L1H0", "L1H1", "L0H1"], torch.tensor([[1, 2, 3, 4, 5, 6]])
    together = tiny.forward(ids, interventions=interp.PruneHeads(heads, mode="uniform"))
    apart = tiny.forward(ids, interventions=[interp.PruneHeads([h], mode="uniform") for h in heads])
    plain = tiny.forward(ids)
    assert torch.allclose(together, apart, atol=1e-6) and not torch.allclose(
        together, plain, atol=1e-3
    )


# --------------------------------------------------------------------------- CLI


def test_cli_writes_summary_and_figures(stories_path, tmp_path):
    from typer.testing import CliRunner

    from interp.cli import app

    hay = tmp_path / "story.txt"
    hay.write_text(STORY)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "retrieval",
            str(stories_path),
            "--haystack",
            str(hay),
            "--lengths",
            "64,128",
            "--depths",
            "0,1",
            "--needle",
            MAX_NEEDLE.text,
            "--question",
            MAX_NEEDLE.question,
            "--answer",
            MAX_NEEDLE.answer,
            "--template",
            TEMPLATE,
            "--k",
            "2",
            "--draws",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    numbers = summary["numbers"]
    assert {"teacher_forced", "decode", "mode_agreement", "prune"} <= set(numbers)
    assert 0.0 <= numbers["control_no_needle_accuracy"] <= 1.0
    assert len(numbers["prune"]["random_draws"]) == 2
    assert [c["k"] for c in numbers["prune_curve"]] == list(
        range(1, len(numbers["prune_curve"]) + 1)
    )
    assert (out / "niah_accuracy.html").exists() and (out / "retrieval_scores.html").exists()
    assert "retrieval" in summary["command"] or summary["command"]

    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    bad = CliRunner().invoke(
        app,
        ["retrieval", str(stories_path), "--haystack", str(empty), "--out", str(tmp_path / "bad")],
    )
    assert bad.exit_code == 2 and "empty" in bad.output


# -------------------------------------------------------------------------- package, protocol, cost


def test_rows_route_state_belongs_to_the_call(tiny, tiny_gpt2):
    """The rows route records only the model it was opened on, and leaves nothing behind."""
    from circuits.retrieval import scoring

    ids = torch.tensor([[1, 5, 7, 9, 11, 13]])
    recorder = R.ArgmaxRecorder(tiny.n_layers)
    recorder.key_ids = ids
    implementations = {id(c): c._attn_implementation for c in _configs(tiny.hf)}
    with R.rows_route(tiny, recorder, 2):
        with torch.no_grad():
            tiny.hf(input_ids=ids)
            tiny_gpt2.hf(input_ids=ids)  # another model in the block: not recorded
    positions, _ = recorder.stacked()
    assert positions.shape == (1, tiny.n_layers, tiny.n_heads, 2)
    assert all(scoring._ROUTE_ATTR not in m.__dict__ for m in tiny.attention_modules())
    assert {id(c): c._attn_implementation for c in _configs(tiny.hf)} == implementations
    # the implementation used outside any route is plain SDPA: nothing reaches the old recorder
    from interp.backends.attention import attention_implementation

    recorder.positions.clear()
    with attention_implementation(tiny.hf, R.ROWS_IMPLEMENTATION), torch.no_grad():
        routed = tiny.hf(input_ids=ids).logits
    assert recorder.positions == {} and torch.allclose(
        routed, tiny.hf(input_ids=ids).logits, atol=1e-5
    )


def test_run_plan_keeps_the_last_logits(tiny):
    from interp.backends.plan import RunPlan

    tokens = tiny.to_tokens(["the cat saw a dog"])
    with torch.no_grad():
        full = tiny.run_plan(tokens, RunPlan([])).logits
        last = tiny.run_plan(tokens, RunPlan([]), logits_to_keep=1).logits
    assert last.shape[1] == 1 and torch.allclose(last[:, 0], full[:, -1], atol=1e-5)


def test_analyze_result_on_the_protocol(stories):
    """One Result for the whole run: numbers keep the CLI's keys, --no-curve keeps the check at
    k (issue 20), figures, roles, provenance and a floor derived from the config."""
    import circuits
    from interp.analysis import AnalysisResult, run_with_cost

    cfg = R.Config(
        lengths=(64, 128),
        depths=(0.0, 1.0),
        haystack=STORY,
        needles=(MAX_NEEDLE,),
        template=TEMPLATE,
        k=2,
        n_draws=2,
        curve=False,
    )
    entry = circuits.registry.get("retrieval")
    res, cost = run_with_cost(entry.run, stories, cfg)
    assert isinstance(res, AnalysisResult) and res.primary.retrieves
    numbers = res.numbers()
    assert set(numbers) == {
        "model",
        "heads_total",
        "teacher_forced",
        "decode",
        "mode_agreement",
        "control_no_needle_accuracy",
        "prune",
    }
    assert numbers["prune"]["k"] == 2 and not numbers["prune"].get("skipped")
    assert len(numbers["prune"]["random_draws"]) == 2 and res.prune_curve is None
    assert set(res.figures()) == {
        "retrieval_scores",
        "niah_accuracy",
        "retrieval_scores_decode",
        "prune",
    }
    assert res.roles()[0].heads and res.provenance()["seeds"] == {"data": 0, "random_heads": 0}
    assert "prune top-2" in res.report()
    (check,) = res.roles()[0].checks  # the atlas sentence: masking vs random heads
    prune = numbers["prune"]
    assert check.effect.startswith("masking ") and "drops NIAH accuracy" in check.effect
    assert check.control == (
        f"2 random 2-head sets drop it {prune['mean_random_drop_points']:.1f} points on average"
    )
    assert check.passed == (
        prune["drop_top_points"] > prune["mean_random_drop_points"]
        and prune["mean_random_drop_points"] <= 5
    )
    floor, how = res.floor()
    n = res.primary.n_tests
    assert 7 * n <= floor < 8 * n  # scoring, decode, control (n each, + decode shares), pruning 4n
    assert "pruning" in how and cost.floor_forward_passes == floor
    assert cost.forward_passes >= floor * 0.99  # the floor is a floor
    skipped = R.analyze(stories, dataclasses.replace(cfg, prune=False))
    assert (
        skipped.numbers()["prune"] == {"skipped": True, "reason": "--no-prune"}
        and skipped.prune is None
    )


def test_pruning_curve_runs_on_small_models_and_not_on_large_ones_by_default(monkeypatch):
    """`curve=None` resolves per model size (a cost rule); an explicit choice always wins."""
    import interp.cost
    from circuits.retrieval import Config
    from interp.testing import tiny_model

    model = tiny_model("llama")
    assert Config().for_model(model).curve is True
    monkeypatch.setattr(interp.cost, "LARGE_MODEL_PARAMS", 1)
    assert Config().for_model(model).curve is False
    assert Config(curve=True).for_model(model).curve is True
