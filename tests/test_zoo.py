"""Tests of interp.zoo: corpus generator, miniature training, resume, bad input, shipped
checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import interp.zoo as zoo
from interp.zoo import CorruptCheckpointError, UnknownZooModel, World, shelf


@pytest.fixture(scope="module")
def world():
    return World(0)


# --------------------------------------------------------------------- world
def test_world_deterministic(world):
    w2 = World(0)
    assert w2.vocab == world.vocab
    assert w2.capital_of == world.capital_of
    assert World(1).countries != world.countries
    assert len(set(world.countries)) == world.n_countries
    assert set(world.seen_countries).isdisjoint(world.unseen_countries)


def test_tokenizer_single_token_entities(world):
    tok = world.build_tokenizer()
    assert tok.bos_token and tok.eos_token and tok.pad_token and tok.unk_token
    for w in (
        world.countries[:5]
        + world.capitals[:5]
        + world.people[:5]
        + world.numbers[:5]
        + world.objects[:5]
    ):
        ids = tok(w).input_ids
        assert ids[0] == tok.bos_token_id and len(ids) == 2 and ids[1] != tok.unk_token_id


def test_frequencies_zipf_like(world):
    ranks = np.array([world.freq_rank[c] for c in world.seen_countries])
    probs = np.array([world.fact_probs[c] for c in world.seen_countries])
    slope = np.polyfit(np.log(ranks + 1), np.log(probs), 1)[0]
    assert -1.4 < slope < -0.8
    # empirical counts of the generator follow the same law
    rng = np.random.default_rng(0)
    counts: dict[str, int] = {}
    for _ in range(40):
        _, c = world.make_row(rng, "facts", 256)
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
    top = sum(counts.get(c, 0) for c in world.seen_countries[:5])
    bottom = sum(counts.get(c, 0) for c in world.seen_countries[-5:])
    assert top > 5 * bottom
    assert all(counts.get(c, 0) == 0 for c in world.unseen_countries)


def test_needles_have_same_type_distractors(world):
    tok = world.build_tokenizer()
    ps = world.needle_prompts(n_per_depth=6, context_len=256)
    assert {p["depth"] for p in ps} == {0.0, 0.25, 0.5, 0.75, 1.0}
    for p in ps:
        words = p["prompt"].split()
        assert 1 <= len(p["distractor_answers"]) <= 5
        assert p["answer"] not in p["distractor_answers"]
        assert all(d in world.numbers for d in p["distractor_answers"])
        # every needle (target and distractors) has the same form "the code of PERSON is NUMBER ."
        n_needles = sum(
            1 for i in range(len(words) - 2) if words[i : i + 3] == ["the", "code", "of"]
        )
        assert n_needles == len(p["distractor_answers"]) + 2  # + the question
        ids = tok(p["prompt"]).input_ids
        assert len(ids) == p["n_tokens"] <= 256
        a, b = p["needle_span"]
        needle = tok.convert_ids_to_tokens(ids[a:b])
        assert needle[:3] == ["the", "code", "of"] and needle[5] == p["answer"]
        assert needle[3] == words[-2]  # the question's key
        # the answer occurs in the prompt exactly once; the key of the question twice
        assert words.count(p["answer"]) == 1 and words.count(words[-2]) == 2


def test_induction_spans_vary(world):
    rng = np.random.default_rng(0)
    layouts = [World.induction_layout(rng, 255) for _ in range(300)]
    assert len({L for L, _, _ in layouts}) > 30
    assert len({pre for _, pre, _ in layouts}) > 50
    seqs = world.repeated_span_sequences(lengths=(10, 20), offsets=(0, 30), n=2)
    for s in seqs:
        a, b = s["first"], s["second"]
        assert s["input_ids"][a[0] : a[1]] == s["input_ids"][b[0] : b[1]]
    assert {s["span_len"] for s in seqs} == {10, 20} and {s["offset"] for s in seqs} == {0, 30}


def test_boxq_asks_about_every_box_with_the_right_answer(world):
    rng = np.random.default_rng(0)
    for _ in range(20):
        words, _ = world.doc_boxq(rng)
        text = " ".join(words)
        passage, questions = text.split(" . ", 1)
        where = {}
        for clause in passage.split(" , "):
            w = clause.split()
            where[w[5]] = w[1]  # the X is in box L
        asked = [q.split() for q in questions.rstrip(" .").split(" . ")]
        assert sorted(q[1] for q in asked) == sorted(where)  # every box once
        assert all(q[4] == where[q[1]] for q in asked)  # box L contains the X


def test_echo_repeats_each_label_s_own_object_and_answers_the_question(world):
    rng = np.random.default_rng(1)
    for _ in range(20):
        words, _ = world.doc_echo(rng)
        passage, question = " ".join(words).split(" . ", 1)
        where = {}
        for clause in passage.split(" , "):
            w = clause.split()  # the X is in box L X
            assert w[6] == w[1]
            where[w[5]] = w[1]
        q = question.rstrip(" .").split()  # box L contains the X
        assert q[:1] == ["box"] and q[2:4] == ["contains", "the"] and q[4] == where[q[1]]


def test_box_and_conflict_prompts(world):
    for p in world.box_prompts(n_per_size=5):
        words = p["prompt"].split()
        assert words[-4:] == ["box", p["box"], "contains", "the"]
        assert words.count(p["answer"]) == 1 and p["n_boxes"] in (3, 4, 5)
        assert words.count("box") == p["n_boxes"] + 1
    for p in world.conflict_prompts(20):
        assert p["memory_answer"] == world.capital_of[p["country"]]
        assert p["context_answer"] != p["memory_answer"]
        assert (
            p["context_answer"] in p["prompt"].split()
            and p["memory_answer"] not in p["prompt"].split()
        )
    fp = world.fact_prompts()
    assert len(fp) == len(world.seen_countries) and all(p["seen"] for p in fp)


def test_training_rows_exact_length(world):
    rng = np.random.default_rng(1)
    x, _ = world.make_batch(rng, zoo.RECIPES["world-base"].mixture, 8, 128)
    assert x.shape == (8, 128) and (x[:, 0] == world.token_to_id["<bos>"]).all()


# ------------------------------------------------------------------ training
def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_mini_recipe_trains_and_writes_card(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = zoo.train("world-mini", out_dir=tmp_path / "run", progress=False, threads=1)
    card = json.loads((d / "metrics.json").read_text())
    assert (d / "card.md").read_text().startswith("# world-mini")
    losses = [l for _, l in card["loss_curve"]]
    assert np.mean(losses[-2:]) < losses[0] - 0.5
    assert card["wall_time_s"] < 60 and card["steps"] == 60
    for k in (
        "fact_recall",
        "conflict_context_rate",
        "needle_acc",
        "box_acc",
        "induction_ratio_max",
    ):
        assert k in card["metrics"]
    model = AutoModelForCausalLM.from_pretrained(d)
    tok = AutoTokenizer.from_pretrained(d)
    assert model.config.num_key_value_heads < model.config.num_attention_heads
    assert tok.pad_token_id is not None and tok.bos_token_id is not None
    assert (tmp_path / "run" / "train_state.pt").exists() and not (d / "train_state.pt").exists()


def test_resume_after_interruption(tmp_path):
    straight = zoo.train("world-mini", out_dir=tmp_path / "a", steps=30, progress=False, threads=1)

    class Stop(Exception):
        pass

    def interrupt(step, loss):
        if step == 25:
            raise Stop

    with pytest.raises(Stop):
        zoo.train(
            "world-mini",
            out_dir=tmp_path / "b",
            steps=30,
            progress=False,
            callback=interrupt,
            threads=1,
        )
    st = torch.load(tmp_path / "b" / "train_state.pt", weights_only=False)
    assert st["step"] == 20  # last checkpoint (ckpt_every=20)
    resumed = zoo.train("world-mini", out_dir=tmp_path / "b", steps=30, progress=False, threads=1)
    wa, wb = _weights(straight), _weights(resumed)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=1e-4)


def test_prefetching_workers_build_the_same_batches(tmp_path):
    inline = zoo.train("world-mini", out_dir=tmp_path / "a", steps=20, progress=False, threads=1)
    ahead = zoo.train(
        "world-mini", out_dir=tmp_path / "b", steps=20, progress=False, threads=1, workers=1
    )
    wa, wb = _weights(inline), _weights(ahead)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-6, rtol=1e-5)


def test_time_budget_fits_the_steps_in_the_warmup(tmp_path):
    d = zoo.train(
        "world-mini",
        out_dir=tmp_path / "run",
        steps=100_000,
        warmup=20,
        progress=False,
        threads=1,
        time_budget_s=3.0,
        eval_every=0,
    )
    card = json.loads((d / "metrics.json").read_text())
    assert 20 < card["steps"] < 100_000 and card["recipe"]["steps"] == card["steps"]
    assert card["wall_time_s"] < 10


def test_adopt_checks_the_recipe_and_renames(tmp_path, monkeypatch):
    from interp.zoo.train import adopt

    d = zoo.train("world-mini", out_dir=tmp_path / "run", steps=20, progress=False, threads=1)
    monkeypatch.setattr(shelf, "CHECKPOINT_DIR", tmp_path / "zoo")
    with pytest.raises(ValueError, match="steps"):  # trained for 20 steps, the recipe says 60
        adopt(d, "world-mini")
    d = zoo.train("world-mini", out_dir=tmp_path / "run2", progress=False, threads=1)
    dst = adopt(d, "world-mini", notes="adopted in a test")
    card = json.loads((dst / "metrics.json").read_text())
    assert dst == tmp_path / "zoo" / "world-mini" and card["notes"] == "adopted in a test"
    assert "adopted in a test" in (dst / "card.md").read_text()


def test_corrupted_training_state(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    bad = b"this is not a torch checkpoint"
    (run / "train_state.pt").write_bytes(bad)
    with pytest.raises(CorruptCheckpointError, match="corrupted"):
        zoo.train("world-mini", out_dir=run, progress=False)
    assert (run / "train_state.pt").read_bytes() == bad  # nothing overwritten
    assert not (run / "model").exists()


def test_unknown_name():
    with pytest.raises(UnknownZooModel) as e:
        zoo.path("no-such-model")
    assert isinstance(e.value, KeyError)
    for n in zoo.names():
        assert n in str(e.value)
    with pytest.raises(KeyError):
        zoo.card("no-such-model")
    with pytest.raises(UnknownZooModel):
        zoo.train("no-such-model", progress=False)


def test_cli_unknown_name_and_list():
    from typer.testing import CliRunner

    from interp.zoo.cli import app

    r = CliRunner().invoke(app, ["card", "no-such-model"])
    assert r.exit_code == 2
    r = CliRunner().invoke(app, ["list"])
    assert r.exit_code == 0
    for n in zoo.names():
        assert n in r.output


# ---------------------------------------------------------------- shipped zoo
SHIPPED = zoo.names()


def test_base_model_is_shipped():
    assert "world-base" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_loads(name):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = zoo.path(name)
    card = zoo.card(name)
    assert (p / "card.md").exists()
    assert card["name"] == name and "metrics" in card and card["wall_time_s"] > 0
    assert (p / "model.safetensors").stat().st_size <= 15 * 2**20
    zoo.verify(name)
    model = AutoModelForCausalLM.from_pretrained(p)
    tok = AutoTokenizer.from_pretrained(p)
    ids = tok("the capital of " + World(0).seen_countries[0] + " is", return_tensors="pt").input_ids
    with torch.no_grad():
        assert model(ids).logits.shape[-1] == model.config.vocab_size


def test_shipped_base_recalls_facts():
    model, tok = zoo.load("world-base")
    m = zoo.evaluate(model, tok, behaviours=("facts",))
    assert m["fact_recall"] >= 0.9


def test_corrupted_shipped_checkpoint(tmp_path, monkeypatch):
    src = zoo.path("world-base")
    dst = tmp_path / "world-base"
    shutil.copytree(src, dst)
    data = bytearray((dst / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (dst / "model.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(shelf, "CHECKPOINT_DIR", tmp_path)
    with pytest.raises(CorruptCheckpointError, match="sha256"):
        zoo.load("world-base")
    (dst / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CorruptCheckpointError):
        zoo.load("world-base", check=False)
    assert (src / "model.safetensors").stat().st_size > 1000  # original untouched


def test_zoo_size_budget():
    total = sum(f.stat().st_size for f in zoo.CHECKPOINT_DIR.rglob("*") if f.is_file())
    assert total <= 60 * 2**20


@pytest.mark.slow
def test_shipped_metrics_reproduce_evaluation():
    model, tok = zoo.load("world-base")
    m = zoo.evaluate(model, tok, n=300, seed=0)
    c = zoo.card("world-base")["metrics"]
    for k in (
        "fact_recall",
        "conflict_context_rate",
        "needle_acc",
        "box_acc",
        "induction_ratio_max",
    ):
        assert abs(m[k] - c[k]) < 1e-6
