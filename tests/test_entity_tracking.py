"""Box data, counterfactuals, circuit bookkeeping, faithfulness and the `interp entity` command."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

import circuits.entity_tracking as et
from circuits.entity_tracking import ablation, greedy, pipeline
from interp.circuit import Circuit
from interp.data.boxes import (
    DESIDERATA,
    BoxDataError,
    BoxTemplate,
    box_dataset,
    corrupt,
    desiderata,
    single_token_id,
)
from interp.heads import Head
from interp.results import HeadScores
from interp.testing import tiny_model
from interp.zoo.world import BOX_LABELS, OBJECTS, World

TINY_TEMPLATE = BoxTemplate(query="box {label} is the")
TINY_OBJECTS = ("key", "apple", "cat", "dog", "girl", "boy", "time")
TINY_LABELS = ("one", "two", "three", "four", "five", "six", "seven", "eight")


@pytest.fixture(scope="module")
def world_tok():
    return World(0).build_tokenizer()


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("llama", n_layers=3)


def _tiny_data(model, n=12, k=3, seed=0):
    return box_dataset(
        model, n, k, objects=TINY_OBJECTS, labels=TINY_LABELS, seed=seed, template=TINY_TEMPLATE
    )


# --- data ----------------------------------------------------------------------------------


def test_zoo_prompts_have_the_world_format_and_positions(world_tok):
    data = box_dataset(world_tok, n=20, n_boxes=7, seed=0)
    s = data.samples[0]
    assert set(s.objects) <= set(OBJECTS) and set(s.labels) <= set(BOX_LABELS)
    words = []
    for i, (o, l) in enumerate(zip(s.objects, s.labels)):
        words += ["the", o, "is", "in", "box", l, "," if i < 6 else "."]
    assert data.prompts[0] == " ".join(words + ["box", s.query_label, "contains", "the"])
    ids = world_tok(list(data.prompts), add_special_tokens=True)["input_ids"]  # the world adds BOS
    for i, row in enumerate(ids):
        s = data.samples[i]
        label_id = world_tok.convert_tokens_to_ids(s.query_label)
        assert len(row) == data.seq_len and data.last_pos[i] == data.seq_len - 1
        assert row[data.query_pos[i]] == label_id == row[data.label_pos[i]]
        assert data.label_pos[i] < data.query_pos[i] == data.seq_len - 3
        assert (
            row[data.object_pos[i]]
            == data.answer_ids[i]
            == world_tok.convert_tokens_to_ids(s.answer)
        )
        assert data.label_pos[i] - data.object_pos[i] == 4


def test_box_counts_and_tokens_are_checked(world_tok, tiny):
    with pytest.raises(BoxDataError, match="at least 27 distinct box labels"):
        box_dataset(world_tok, n=2, n_boxes=27)
    with pytest.raises(BoxDataError, match="distinct objects"):
        box_dataset(world_tok, n=2, n_boxes=5, objects=OBJECTS[:4], labels=BOX_LABELS)
    with pytest.raises(BoxDataError, match="one token"):
        box_dataset(
            tiny,
            n=2,
            n_boxes=2,
            objects=["key", "apple", "zebra"],
            labels=["one", "two"],
            template=TINY_TEMPLATE,
        )
    with pytest.raises(BoxDataError, match="does not know"):
        box_dataset(
            tiny, n=2, n_boxes=2, objects=TINY_OBJECTS, labels=TINY_LABELS
        )  # 'contains' unknown
    with pytest.raises(BoxDataError, match="more labels|box labels"):  # corrupt needs a spare label
        corrupt(
            tiny,
            box_dataset(
                tiny, 3, 3, objects=TINY_OBJECTS, labels=TINY_LABELS[:3], template=TINY_TEMPLATE
            ),
        )
    assert single_token_id(world_tok, "apple") == world_tok.convert_tokens_to_ids("apple")
    assert single_token_id(world_tok, "zebra") is None


def test_corrupt_moves_the_correct_segment_and_hides_the_label(world_tok):
    data = box_dataset(world_tok, n=30, n_boxes=5, seed=1)
    bad = corrupt(world_tok, data, seed=2)
    assert bad.seq_len == data.seq_len and len(bad) == len(data)
    for s, c in zip(data.samples, bad.samples):
        assert c.query != s.query
        assert c.query_label not in c.labels
    assert bool((bad.query_pos == data.query_pos).all())


def test_desiderata_targets(world_tok):
    data = box_dataset(world_tok, n=30, n_boxes=5, seed=3)
    for kind in DESIDERATA:
        pairs = desiderata(world_tok, data, kind)
        assert pairs.source.seq_len == data.seq_len and len(pairs) == 30
        for b, s, t in zip(pairs.base.samples, pairs.source.samples, pairs.target_ids.tolist()):
            target = world_tok.convert_ids_to_tokens(t)
            if kind == "positional":  # the base object at the source's query position
                assert s.query != b.query and target == b.objects[s.query]
                assert not set(s.objects) & set(b.objects) and not set(s.labels) & set(b.labels)
            elif kind == "object":  # same everything but the correct object
                assert (
                    target == s.answer not in b.objects
                    and s.labels == b.labels
                    and s.query == b.query
                )
            else:  # same position, another label: the object that label names in the base
                assert (
                    s.query == b.query and s.objects == b.objects and s.query_label != b.query_label
                )
                assert target == b.objects[b.labels.index(s.query_label)] != b.answer
    with pytest.raises(BoxDataError, match="unknown desideratum"):
        desiderata(world_tok, data, "colour")


# --- circuit logic -------------------------------------------------------------------------


def test_select_group_takes_the_most_negative_heads():
    scores = torch.tensor([[0.0, -0.30, 0.2], [-0.01, -0.5, -0.06]])
    hs = HeadScores(scores, model="toy", method="planted")
    assert et.select_group(hs, 0.05, 5) == [Head(1, 1), Head(0, 1), Head(1, 2)]
    assert et.select_group(hs, 0.05, 2) == [Head(1, 1), Head(0, 1)]
    assert et.select_group(hs, 0.05, 5, exclude=[Head(1, 1)]) == [Head(0, 1), Head(1, 2)]


def test_prune_minimal_keeps_only_heads_that_cost_accuracy(monkeypatch):
    needed = {Head(2, 0): 0.3, Head(1, 1): 0.2, Head(0, 3): 0.004}  # accuracy each head is worth

    def fake_accuracy(model, heads, data, reference, **kw):
        return 0.4 + sum(needed.get(h, 0.0) for h in heads)

    monkeypatch.setattr(ablation, "circuit_accuracy", fake_accuracy)
    groups = {
        "A": [Head(2, 0), Head(2, 1)],
        "B": [Head(1, 1), Head(1, 2)],
        "C": [Head(0, 3)],
        "D": [],
    }
    scores = {k: HeadScores(torch.full((3, 4), -0.1), model="toy", method="planted") for k in "ABC"}
    kept, removed = et.prune_minimal(None, groups, None, None, 0.01, scores, full=0.9)
    assert kept == {"A": [Head(2, 0)], "B": [Head(1, 1)], "C": [], "D": []}
    assert set(removed) == {Head(2, 1), Head(1, 2), Head(0, 3)}


def test_circuit_object_figure_and_json(tiny):
    groups = {"A": [Head(2, 1), Head(2, 4)], "B": [Head(1, 0)], "C": [Head(0, 2)], "D": []}
    scores = {k: HeadScores(torch.full((3, 8), -0.2), model="toy", method="planted") for k in "ABC"}
    circuit = et.build_circuit(tiny, groups, scores, {"n_prompts": 3})
    assert [str(h) for h in circuit.heads("value fetcher")] == ["L2H1", "L2H4"]
    kinds = {(e.source, e.target): e.kind for e in circuit.edges}
    assert (
        kinds[("L2H1", "logits")] == "out"
        and kinds[("L1H0", "L2H4")] == "q"
        and kinds[("L0H2", "L1H0")] == "v"
    )
    assert Circuit.from_json(circuit.to_json()) == circuit
    fig = et.circuit_figure(circuit, n_layers=tiny.n_layers, n_heads=tiny.n_heads)
    names = {t.name for t in fig.data}
    assert {"value fetcher", "position transmitter", "position detector", "logits"} <= names


def test_faithfulness_is_one_for_all_heads_and_matches_manual_ablation(tiny):
    data, ref = _tiny_data(tiny, n=16), _tiny_data(tiny, n=8, seed=5)
    full = et.accuracy(tiny, data)
    assert et.circuit_accuracy(tiny, tiny.all_heads(), data, ref) == full
    others = [h for h in tiny.all_heads() if h != Head(0, 0)]
    means = tiny.head_means(list(ref.prompts))
    with torch.no_grad():
        handles = []
        for layer in range(tiny.n_layers):
            attn = tiny.hf.model.layers[layer].self_attn

            def pre(m, args, layer=layer):
                z = args[0].clone().view(*args[0].shape[:2], tiny.n_heads, tiny.d_head)
                for h in others:
                    if h.layer == layer:
                        z[:, :, h.head] = means[layer, h.head]
                return (z.view(*args[0].shape),)

            handles.append(attn.o_proj.register_forward_pre_hook(pre))
        try:
            logits = tiny.hf(tiny.to_tokens(list(data.prompts)).input_ids).logits[:, -1]
        finally:
            for h in handles:
                h.remove()
    planted = dataclasses.replace(data, answer_ids=logits.argmax(-1))  # what the ablated model says
    assert et.circuit_accuracy(tiny, [Head(0, 0)], planted, ref) == 1.0
    assert et.accuracy(tiny, planted) < 1.0  # ... and the full model does not
    assert tiny.active_interventions == ()


def test_path_patching_groups_use_the_right_receivers(tiny):
    data = _tiny_data(tiny, n=6)
    corr = corrupt(tiny, data, objects=TINY_OBJECTS, labels=TINY_LABELS)
    a = et.group_scores(tiny, data, corr, "A")
    assert a.n_scored == tiny.n_layers * tiny.n_heads
    c = et.group_scores(tiny, data, corr, "C", [Head(2, 0)])
    assert c.n_scored == 2 * tiny.n_heads and "v" in c.method  # only layers below the receivers
    rec = et.receivers("D", [Head(1, 0)], data)
    assert rec.site == "v" and list(rec.positions) == data.label_pos.tolist()
    assert list(et.receivers("C", [Head(1, 0)], data).positions) == data.query_pos.tolist()


def test_logit_diff_metric_is_correct_minus_the_other_objects_and_scores_use_it(tiny):
    data = _tiny_data(tiny, n=5, k=3)
    logits = torch.randn(5, tiny.vocab_size)
    got = et.logit_diff_metric(tiny, data)(logits)
    for i, s in enumerate(data.samples):
        other = [
            tiny.tokenizer(" " + o if not o.startswith(" ") else o).input_ids[-1]
            for j, o in enumerate(s.objects)
            if j != s.query
        ]
        want = logits[i, data.answer_ids[i]] - logits[i, other].mean()
        assert abs(float(got[i] - want)) < 1e-5
    corr = corrupt(tiny, data, objects=TINY_OBJECTS, labels=TINY_LABELS)
    a = et.group_scores(tiny, data, corr, "A", metric="logit_diff")
    assert "logit diff" in a.method and a.meta["metric"] == "logit_diff"
    with pytest.raises(ValueError, match="metric"):
        et.Config(metric="accuracy")


def test_position_detectors_read_into_the_value_fetchers_when_there_are_no_transmitters():
    assert et.receiver_group("A", {}) is None
    assert et.receiver_group("B", {"A": [Head(2, 0)]}) == "A"
    assert et.receiver_group("C", {"A": [Head(2, 0)], "B": []}) == "A"
    assert et.receiver_group("C", {"A": [Head(2, 0)], "B": [Head(1, 0)]}) == "B"
    assert et.receiver_group("D", {"C": [Head(1, 1)]}) == "C"
    circuit = et.build_circuit(
        tiny_model("llama", n_layers=3),
        {"A": [Head(2, 0)], "B": [], "C": [Head(1, 1)]},
        {k: HeadScores(-torch.ones(3, 4), "m", "pp") for k in "AC"},
        {},
    )
    assert ("L1H1", "L2H0") in {(e.source, e.target) for e in circuit.edges}


def test_default_box_count_follows_the_model_s_world(world_tok):
    from types import SimpleNamespace

    from interp.data.boxes import PAPER_N_BOXES, ZOO_N_BOXES, default_n_boxes

    assert default_n_boxes(SimpleNamespace(tokenizer=world_tok)) == ZOO_N_BOXES == 4
    assert default_n_boxes(tiny_model("llama")) == PAPER_N_BOXES == 7


def test_a_model_at_chance_gets_no_circuit(tiny):
    cfg = et.Config(
        n_prompts=12,
        n_eval=30,
        n_reference=6,
        n_boxes=3,
        objects=TINY_OBJECTS,
        labels=TINY_LABELS,
        template=TINY_TEMPLATE,
        dcm_pairs=0,
    )
    res = et.run(tiny, cfg)
    assert res.at_chance and res.circuit is None and "chance" in res.note
    assert res.numbers()["at_chance"] is True and "circuit" not in res.numbers()


# --- the command ---------------------------------------------------------------------------


def _world_tiny_folder(tmp_path: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = World(0).build_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def _write(result, out: Path) -> Path:
    """What ``interp entity`` writes: the one writer's figures and summary.json, and
    circuit.json."""
    from interp.report import write_result

    return write_result(result, out)


def test_cli_reports_chance_and_writes_summary(tmp_path):
    from typer.testing import CliRunner

    from interp.cli import app

    folder = _world_tiny_folder(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "entity",
            str(folder),
            "--out",
            str(out),
            "--n-prompts",
            "8",
            "--n-eval",
            "40",
            "--n-boxes",
            "3",
            "--dcm-pairs",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["analyzer"] == "entity_tracking" and summary["numbers"]["at_chance"] is True
    assert summary["data"]["n_eval"] == 40 and "chance" in result.output


def test_cli_bad_input_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from interp.cli import app

    folder = _world_tiny_folder(tmp_path)
    result = CliRunner().invoke(
        app, ["entity", str(folder), "--out", str(tmp_path / "o"), "--n-boxes", "30"]
    )
    assert result.exit_code == 2 and "box labels" in result.output


def test_position_mean_ablation_sets_each_position_to_its_reference_mean(tiny):
    data, ref = _tiny_data(tiny, n=5), _tiny_data(tiny, n=7, seed=9)
    iv = et.ablate_others(tiny, [Head(1, 2)], ref, "position-mean")
    _, cache = tiny.run_with_cache(list(data.prompts), sites=("z",), interventions=iv)
    _, ref_cache = tiny.run_with_cache(list(ref.prompts), sites=("z",))
    assert torch.allclose(
        cache.head("z", "L2H5"), ref_cache.head("z", "L2H5").mean(0).expand(5, -1, -1), atol=1e-5
    )
    assert not torch.allclose(
        cache.head("z", "L1H2")[0], cache.head("z", "L1H2")[1]
    )  # kept head varies
    assert et.circuit_accuracy(
        tiny, tiny.all_heads(), data, ref, ablation="position-mean"
    ) == et.accuracy(tiny, data)
    with pytest.raises(ValueError, match="ablation must be one of"):
        et.circuit_accuracy(tiny, [Head(0, 0)], data, ref, ablation="zero")
    assert tiny.active_interventions == ()


@pytest.mark.slow
def test_world_base_circuit_or_chance_verdict():
    """On the shipped zoo model: either an honest 'at chance' or a circuit that beats random
    ones."""
    import interp
    import interp.zoo

    if "world-base" not in interp.zoo.names():
        pytest.skip("world-base is not shipped in this checkout")
    model = interp.load("world-base")
    res = et.run(
        model,
        et.Config(n_prompts=100, n_eval=200, n_reference=100, n_boxes=5, dcm_pairs=0, n_random=3),
    )
    if res.at_chance:
        assert res.circuit is None and "chance" in res.note
    elif "pruning skipped" in res.note:  # the groups alone do not work: reported whole, not pruned
        assert res.circuit is not None and res.pruned == () and res.faithfulness < 0.5
    else:
        assert res.circuit is not None and res.faithfulness > max(res.random_faithfulness)


def test_end_to_end_on_a_planted_task(tiny, tmp_path, monkeypatch):
    """Planted task: each prompt's 'answer' is the tiny model's own prediction (accuracy 1 by
    construction), so every stage runs: discovery, pruning, faithfulness, random circuits, DCM,
    CMAP from a second model, figures and summary."""
    other = tiny_model("llama", n_layers=3, seed=1)
    build = et.datasets

    def own_answers(model, cfg):
        def relabel(d):
            with torch.no_grad():
                return dataclasses.replace(
                    d, answer_ids=tiny.forward(list(d.prompts))[:, -1].argmax(-1)
                )

        return tuple(relabel(d) for d in build(model, cfg))

    monkeypatch.setattr(pipeline, "datasets", own_answers)
    cfg = et.Config(
        n_prompts=16,
        n_eval=16,
        n_reference=8,
        n_boxes=3,
        objects=TINY_OBJECTS,
        labels=TINY_LABELS,
        template=TINY_TEMPLATE,
        dcm_pairs=16,
        n_random=3,
        threshold=0.01,
    )
    res = et.run(tiny, cfg, finetuned=other)
    assert not res.at_chance and res.full_accuracy == 1.0 and res.circuit is not None
    assert (
        res.faithfulness == pytest.approx(res.circuit_accuracy)
        and len(res.random_faithfulness) == 3
    )
    assert set(res.dcm) == set(DESIDERATA) and all(r.split == (8, 4, 4) for r in res.dcm.values())
    groups = [row["group"] for row in res.cmap["rows"]]
    assert groups[-1] == "circuit" and "A" in groups and res.cmap["base_accuracy"] == 1.0
    summary = json.loads(_write(res, tmp_path).read_text())
    assert summary["numbers"]["faithfulness"] == pytest.approx(res.faithfulness)
    (check,) = res.checks()  # the atlas sentence: faithfulness against the random circuits
    n = len(res.circuit.heads())
    assert check.effect.startswith(f"the {n}-head circuit alone keeps faithfulness")
    assert check.control.startswith(f"3 random {n}-head circuits")
    assert check.passed == (res.faithfulness > max(res.random_faithfulness))
    assert all(r.checks == [check] for r in res.roles())
    with_mask = et.run(
        tiny,
        dataclasses.replace(
            cfg, learned=True, learned_lambdas=(0.0,), learned_epochs=1, dcm_pairs=0
        ),
    )
    learned = json.loads(_write(with_mask, tmp_path / "learned").read_text())["numbers"]
    assert [r["lambda"] for r in learned["learned_circuit"]["runs"]] == [0.0]
    assert "learned_smallest_at_target" in learned and "learned gates" in with_mask.report()
    assert summary["numbers"]["n_circuit_heads"] == len(res.circuit.heads())
    # groups that answer nothing on their own are reported whole: pruning them would empty the
    # circuit
    monkeypatch.setattr(pipeline, "circuit_accuracy", lambda *a, **k: 0.0)
    broken = et.run(tiny, cfg)
    assert broken.pruned == () and "pruning skipped" in broken.note and broken.circuit.heads()
    assert Circuit.from_json(str(tmp_path / "circuit.json")) == res.circuit
    assert (tmp_path / "circuit.html").exists() and (tmp_path / "group_A.html").exists()
    assert tiny.active_interventions == () and other.active_interventions == ()


def test_greedy_circuit_selects_on_one_split_and_measures_on_another(tiny):
    def own(d):  # planted: the answer is the model's own prediction (full accuracy 1)
        with torch.no_grad():
            return dataclasses.replace(
                d, answer_ids=tiny.forward(list(d.prompts))[:, -1].argmax(-1)
            )

    select, held_out, ref = (
        own(_tiny_data(tiny, n=6, seed=0)),
        own(_tiny_data(tiny, n=6, seed=1)),
        _tiny_data(tiny, n=4, seed=2),
    )
    g = et.greedy_circuit(tiny, select, held_out, ref, target=0.9, stop_below=0.6)
    sizes = [s["n_heads"] for s in g["trajectory"]]
    assert sizes == list(range(tiny.n_layers * tiny.n_heads - 1, sizes[-1] - 1, -1))
    at_best = [s for s in g["trajectory"] if s["n_heads"] == g["n_heads"]]
    assert (
        not at_best or at_best[0]["faithfulness_select"] >= 0.9
    )  # the reported set kept the target
    assert all(
        s["faithfulness_select"] < 0.9 for s in g["trajectory"] if s["n_heads"] < g["n_heads"]
    )
    expected = et.circuit_accuracy(tiny, list(tiny.heads(g["smallest_at_target"])), held_out, ref)
    assert (
        g["faithfulness_held_out"] == pytest.approx(expected)
        and len(g["smallest_at_target"]) == g["n_heads"]
    )
    assert tiny.active_interventions == ()


def test_greedy_circuit_drops_a_share_of_the_heads_per_round(tiny):
    def own(d):
        with torch.no_grad():
            return dataclasses.replace(
                d, answer_ids=tiny.forward(list(d.prompts))[:, -1].argmax(-1)
            )

    select, held_out, ref = (
        own(_tiny_data(tiny, n=6, seed=0)),
        own(_tiny_data(tiny, n=6, seed=1)),
        _tiny_data(tiny, n=4, seed=2),
    )
    g = et.greedy_circuit(
        tiny, select, held_out, ref, target=0.9, stop_below=0.0, drop_fraction=0.25
    )
    sizes = [s["n_heads"] for s in g["trajectory"]]
    total = tiny.n_layers * tiny.n_heads
    expect, n = [], total
    while n > 1:
        n -= min(max(1, int(n * 0.25)), n - 1)
        expect.append(n)
    assert sizes == expect and sizes[0] == total - int(total * 0.25)
    first = g["trajectory"][0]
    kept = [h for h in tiny.all_heads() if str(h) not in first["dropped"].split()]
    assert first["faithfulness_select"] == pytest.approx(
        et.circuit_accuracy(tiny, kept, select, ref)
    )


class EightHeads:
    """Stands in for a model of one layer of 8 heads where only head bookkeeping is needed."""

    n_layers, n_heads = 1, 8

    def all_heads(self):
        return [Head(0, h) for h in range(8)]

    def heads(self, names):
        return [h if isinstance(h, Head) else Head.parse(h) for h in names]


def test_greedy_batches_back_off_when_redundant_heads_are_dropped_together(monkeypatch):
    def works(kept):  # H0 and H1 are copies of each other; H7 is needed
        kept = set(kept)
        return float((Head(0, 0) in kept or Head(0, 1) in kept) and Head(0, 7) in kept)

    monkeypatch.setattr(greedy, "accuracy", lambda model, data, **kw: 1.0)
    monkeypatch.setattr(
        greedy, "circuit_accuracy", lambda model, kept, data, ref, **kw: works(kept)
    )
    g = et.greedy_circuit(EightHeads(), [], [], None, target=0.9, drop_fraction=0.5)
    assert g["n_heads"] == 2 and Head(0, 7) in {Head.parse(h) for h in g["smallest_at_target"]}
    assert (
        g["trajectory"][0]["dropped"] == "L0H0"
    )  # the batch of 4 (then 2) broke it: backed off to 1


def test_learned_circuit_trades_heads_for_faithfulness_and_measures_held_out(tiny):
    def own(d):
        with torch.no_grad():
            return dataclasses.replace(
                d, answer_ids=tiny.forward(list(d.prompts))[:, -1].argmax(-1)
            )

    select, held_out, ref = (
        own(_tiny_data(tiny, n=8, seed=0)),
        own(_tiny_data(tiny, n=6, seed=1)),
        _tiny_data(tiny, n=4, seed=2),
    )
    val = own(_tiny_data(tiny, n=6, seed=3))
    out = et.learned_circuit(
        tiny,
        select,
        held_out,
        ref,
        validation=val,
        lambdas=(0.0, 1000.0),
        epochs=4,
        batch_size=4,
        refine=False,
        lr=1.0,
    )  # 8 steps of ~lr each: log-odds 3 -> below 0
    free, sparse = out["runs"]
    assert sparse["n_heads"] == 0, "a huge sparsity weight closes every gate"
    assert free["n_heads"] > sparse["n_heads"] and free["heads"] == free["heads_learned"]
    kept = list(tiny.heads(free["heads"])) if free["heads"] else []
    assert free["faithfulness_held_out"] == pytest.approx(
        et.circuit_accuracy(tiny, kept, held_out, ref)
    )
    assert free["faithfulness_validation"] == pytest.approx(
        et.circuit_accuracy(tiny, kept, val, ref)
    )
    best = out["best"]
    assert best is None or (
        best["faithfulness_validation"] >= 0.9 and len(best["random_faithfulness"]) == 10
    )
    assert out["n_validation"] == 6 and tiny.active_interventions == ()
    # refining prunes the learned set while the validation prompts keep the target
    refined = et.learned_circuit(
        tiny,
        select,
        held_out,
        ref,
        validation=val,
        lambdas=(0.0,),
        epochs=2,
        batch_size=4,
        target=0.5,
        n_random=0,
    )["runs"][0]
    assert set(refined["heads"]) <= set(refined["heads_learned"])
    if refined["faithfulness_validation_learned"] >= 0.5:
        assert "refine_trajectory" in refined and refined["faithfulness_validation"] >= 0.5
        kept = list(tiny.heads(refined["heads"]))
        assert refined["faithfulness_held_out"] == pytest.approx(
            et.circuit_accuracy(tiny, kept, held_out, ref)
        )
        assert refined["faithfulness_validation"] == pytest.approx(
            et.circuit_accuracy(tiny, kept, val, ref)
        )
    with pytest.raises(ValueError, match="ablation"):
        et.learned_circuit(tiny, select, held_out, ref, ablation="zero")
    with pytest.raises(ValueError, match="loss must be one of"):
        et.learned_circuit(tiny, select, held_out, ref, loss="mse")


def test_hard_concrete_gates_are_exactly_open_or_closed_at_the_extremes():
    log_alpha = torch.tensor([-20.0, 0.0, 20.0])
    assert et.hard_concrete_gate(log_alpha).tolist() == [0.0, pytest.approx(0.5), 1.0]
    samples = torch.stack(
        [
            et.hard_concrete_sample(torch.zeros(64), torch.Generator().manual_seed(i))
            for i in range(20)
        ]
    )
    assert samples.min() == 0.0 and samples.max() == 1.0  # the stretch puts mass on exact 0 and 1
    assert ((samples > 0) & (samples < 1)).any()
    l0 = et.hard_concrete_l0(log_alpha)
    assert 0.9 < float(l0) < 2.1  # ~0 + P(open | 0) + ~1
    x = torch.zeros(3, requires_grad=True)
    (g,) = torch.autograd.grad(et.hard_concrete_l0(x), [x])
    assert (g > 0).all()


def test_greedy_from_a_start_set_stops_on_the_validation_prompts(monkeypatch):
    heads = EightHeads().all_heads()
    select, validation = ["select"], ["validation"]

    def acc(
        model, kept, data, ref, **kw
    ):  # select: any 2 heads do; validation needs H7 and 3 heads
        kept = set(kept)
        if data is validation:
            return float(len(kept) >= 3 and Head(0, 7) in kept)
        return float(len(kept) >= 2)

    monkeypatch.setattr(greedy, "accuracy", lambda model, data, **kw: 1.0)
    monkeypatch.setattr(greedy, "circuit_accuracy", acc)
    start = heads[3:]
    g = et.greedy_circuit(
        EightHeads(), select, [], None, target=0.9, start=start, validation=validation
    )
    assert g["n_start"] == 5 and g["trajectory"][0]["n_heads"] == 4
    assert all(set(s["dropped"].split()) <= {str(h) for h in start} for s in g["trajectory"])
    assert g["smallest_at_target"] == [
        "L0H5",
        "L0H6",
        "L0H7",
    ]  # 2 heads keep select, not validation
    assert g["faithfulness_validation"] == 1.0
    assert [s.get("faithfulness_validation") for s in g["trajectory"]] == [
        1.0,
        1.0,
        0.0,
        None,
    ]  # select broke last
    no_val = et.greedy_circuit(EightHeads(), select, [], None, target=0.9, start=start)
    assert no_val["smallest_at_target"] == ["L0H6", "L0H7"] and no_val["n_validation"] is None
    assert no_val["faithfulness_validation"] is None


def test_cmap_model_loads_with_the_default_backend():
    """The demo's entity step (Config.backend None) loads its CMAP model; it used to stop with
    "unknown backend None", which the demo recorded as an error and went on."""
    model = et.load_finetuned(et.Config(finetuned="world-base"))
    assert model.name == "world-base" and model.backend == "nnsight"
    assert et.load_finetuned(et.Config()) is None
