"""Induction heads: repeated-span data, head scores, planted heads, causal check, tracking, damage
study, CLI."""

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch

import interp
from circuits import induction as ind
from interp.backends.plan import Edit
from interp.data.repeats import (
    RepeatDataError,
    SequenceTooLongError,
    VocabularyTooSmallError,
    repeat_sequences,
    repeat_sequences_for,
)
from interp.errors import InterpError
from interp.interventions import Intervention
from interp.testing import tiny_hf_model, tiny_model

warnings.filterwarnings("ignore")
SMALL = dict(n=3, span_lengths=(4, 6, 9), offsets=(0, 5), n_boot=200, n_random=2)


@pytest.fixture(scope="module")
def llama():
    return tiny_model("llama")


# ----------------------------------------------------------------------------------- data


def test_repeats_layout_and_seed():
    s = repeat_sequences(
        60, n=5, span_lengths=(4, 7), offsets=(0, 3, 8), bos_id=0, exclude=(0, 1), seed=3
    )
    assert s.input_ids.shape == (30, 1 + 8 + 14) and s.lengths == [4, 7]
    for i in range(len(s)):
        row, a, b, L = s.input_ids[i], int(s.first[i]), int(s.second[i]), int(s.span_len[i])
        assert row[0] == 0 and b == a + L
        span = row[a : a + L]
        assert torch.equal(span, row[b : b + L]) and len(set(span.tolist())) == L
        others = torch.cat([row[1:a], row[b + L :]]).tolist()
        assert not set(others) & set(span.tolist()) and 1 not in row.tolist()
    again = repeat_sequences(
        60, n=5, span_lengths=(4, 7), offsets=(0, 3, 8), bos_id=0, exclude=(0, 1), seed=3
    )
    other = repeat_sequences(
        60, n=5, span_lengths=(4, 7), offsets=(0, 3, 8), bos_id=0, exclude=(0, 1), seed=4
    )
    assert torch.equal(s.input_ids, again.input_ids) and not torch.equal(
        s.input_ids, other.input_ids
    )
    assert s.hash() == again.hash() != other.hash()


def test_repeats_masks():
    s = repeat_sequences(30, n=1, span_lengths=(3,), offsets=(2,), bos_id=0, seed=0)
    # layout: BOS p p r0 r1 r2 r0 r1 r2 -> second copy at 6..8; targets predict 7, 8 from
    # logits 6, 7
    assert s.copy_mask("second")[0].nonzero().flatten().tolist() == [6, 7, 8]
    assert s.target_mask("second")[0].nonzero().flatten().tolist() == [6, 7]
    assert s.target_mask("first")[0].nonzero().flatten().tolist() == [3, 4]


def test_repeats_bad_input(llama):
    with pytest.raises(VocabularyTooSmallError, match="excluding special tokens"):
        repeat_sequences(10, span_lengths=(8, 12), offsets=(0,), exclude=(0, 1, 2))
    with pytest.raises(ValueError):  # typed errors are ValueErrors
        repeat_sequences(10, span_lengths=(8, 12), offsets=(0,), exclude=(0, 1, 2))
    with pytest.raises(SequenceTooLongError, match="context window of 40"):
        repeat_sequences(100, span_lengths=(10, 20), offsets=(0,), n_ctx=40)
    with pytest.raises(SequenceTooLongError):
        repeat_sequences_for(llama, span_lengths=(30, 40), offsets=(60,))
    with pytest.raises(RepeatDataError, match="positive int"):
        repeat_sequences(100, n=0)
    with pytest.raises(TypeError):
        repeat_sequences("gpt2")


def test_repeats_for_model_excludes_specials(llama):
    s = repeat_sequences_for(llama, n=4, span_lengths=(5, 8), offsets=(0, 2), seed=1)
    specials = set(llama.tokenizer.all_special_ids)
    assert (s.input_ids[:, 0] == llama.tokenizer.bos_token_id).all()
    assert not set(s.input_ids[:, 1:].flatten().tolist()) & specials


# ------------------------------------------------------------------------------- planted heads


class PlantPattern(Intervention):
    """Test-only: overwrite heads' attention with a fixed pattern builder
    fn(q_len, k_len, batch) -> [b, q, k]."""

    def __init__(self, layer, head, build):
        self.layer, self.head, self.build = layer, head, build

    def edits(self, model):
        def edit(pattern, ctx):
            out = pattern.clone()
            out[:, self.head] = self.build(
                pattern.shape[0], pattern.shape[-2], pattern.shape[-1]
            ).to(pattern.dtype)
            return out

        return [Edit(self.layer, "pattern", edit)]


def fixed_offset(d):
    def build(b, q, k):
        a = torch.zeros(b, q, k)
        for i in range(q):
            a[:, i, i - d if i >= d else 0] = 1.0
        return a

    return build


def induction_pattern(seqs):
    def build(b, q, k):
        a = torch.zeros(b, q, k)
        a[:, :, 0] = 1.0
        for row in range(b):
            f, s, L = int(seqs.first[row]), int(seqs.second[row]), int(seqs.span_len[row])
            for i in range(L):
                a[row, s + i] = 0
                a[row, s + i, f + i + 1] = 1.0
        return a

    return build


def test_planted_positional_head_is_not_induction(llama):
    cfg = ind.InductionConfig(**SMALL, causal=False, batch_size=64)
    seqs = ind.make_sequences(llama, cfg)
    planted = (
        PlantPattern(1, 0, fixed_offset(5))
        + PlantPattern(1, 1, induction_pattern(seqs))
        + PlantPattern(1, 2, fixed_offset(1))
    )
    res = ind.run(llama, cfg, seqs=seqs, interventions=planted)
    by_len = {L: float(v["prefix_matching"][1, 0]) for L, v in res.by_length.items()}
    # an offset-5 head matches the prefix target only when span length - 1 == 5
    assert (
        by_len[6] == pytest.approx(1.0)
        and by_len[4] == pytest.approx(0.0)
        and by_len[9] == pytest.approx(0.0)
    )
    assert res.head_roles["L1H0"] == "positional" and res.positional_heads["L1H0"] == 5
    assert float(res.scores["induction"].scores[1, 0]) == pytest.approx(0.0)
    assert "L1H0" not in res.induction_heads
    # the planted induction pattern matches at every length
    assert float(res.scores["induction"].scores[1, 1]) == pytest.approx(1.0)
    assert res.head_roles["L1H1"] in ("induction", "prefix-matching (no copying)")
    assert res.scores["induction"].top(1)[0][:2] == (1, 1)
    assert (
        res.head_roles["L1H2"] == "previous-token"
        and float(res.scores["previous_token"].scores[1, 2]) > 0.99
    )
    assert float(res.scores["duplicate_token"].scores[1, 1]) == pytest.approx(0.0, abs=1e-6)


def test_roles_need_copying_at_every_length():
    prefix = torch.tensor([[[0.9, 0.9, 0.9]], [[0.8, 0.8, 0.1]]])  # [lengths=2, layers=1, heads=3]
    copy_lo = torch.tensor([[[0.5, -0.1, 0.5]], [[0.4, 0.3, 0.4]]])
    z = torch.zeros(1, 3)
    roles = ind.head_roles(prefix, copy_lo, z, z, torch.zeros(1, 3, dtype=torch.long), z, 0.4)
    assert roles == {
        "L0H0": "induction",
        "L0H1": "prefix-matching (no copying)",
        "L0H2": "positional",
    }


# ----------------------------------------------------------------------------------- scores


def test_scores_batched_equal_unbatched_and_pure(llama):
    seqs = ind.make_sequences(llama, ind.InductionConfig(**SMALL))
    before = seqs.input_ids.clone()
    grad = torch.is_grad_enabled()
    a = ind.score_heads(llama, seqs, batch_size=64)
    b = ind.score_heads(llama, seqs, batch_size=5)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    assert torch.equal(seqs.input_ids, before) and torch.is_grad_enabled() == grad
    assert not llama.final_norm._forward_pre_hooks and not llama.active_interventions
    # a batch of one row equals that row of the batch
    one = ind.score_heads(llama, seqs.select([7]))
    torch.testing.assert_close(one["prefix"][0], a["prefix"][7], atol=1e-5, rtol=1e-4)


def test_run_is_seeded_with_intervals(llama):
    cfg = ind.InductionConfig(**SMALL)
    r1, r2 = ind.run(llama, cfg), ind.run(llama, cfg)
    for name, hs in r1.scores.items():
        assert torch.equal(hs.scores, r2.scores[name].scores)
    pm = r1.scores["prefix_matching"]
    lo, hi = torch.tensor(pm.meta["ci_low"]), torch.tensor(pm.meta["ci_high"])
    assert (lo <= pm.scores + 1e-6).all() and (pm.scores <= hi + 1e-6).all() and (hi > lo).any()
    assert r1.causal == r2.causal
    lo, hi = r1.loss["ratio_ci"]
    assert lo <= r1.loss["ratio"] <= hi
    assert set(r1.loss["by_length"]) == {4, 6, 9}
    c = r1.causal
    assert len(c["random"]) == 2 and all(not set(d["heads"]) & set(c["heads"]) for d in c["random"])


def test_copying_matches_full_vocabulary_reference(llama):
    """Copying score == attention-weighted, vocab-centred direct logit effect computed with full
    logits."""
    seqs = ind.make_sequences(llama, ind.InductionConfig(n=2, span_lengths=(4, 6), offsets=(0,)))
    stats = ind.score_heads(llama, seqs)
    captured = {}
    h = llama.final_norm.register_forward_pre_hook(lambda m, a: captured.__setitem__("x", a[0]))
    try:
        _, cache = llama.run_with_cache(seqs.input_ids, sites=("pattern", "result"))
    finally:
        h.remove()
    x = captured["x"]
    scale = (x.pow(2).mean(-1) + llama.final_norm.variance_epsilon).sqrt()
    w_u = llama.unembed.weight * llama.final_norm.weight
    layer, head = 1, 3
    logits = (cache[layer, "result"][:, :, head] / scale[..., None]) @ w_u.T  # [b, pos, vocab]
    logits = logits - logits.mean(-1, keepdim=True)
    pattern = cache[layer, "pattern"][:, head]
    for row in range(len(seqs)):
        s, L = int(seqs.second[row]), int(seqs.span_len[row])
        vals = [
            (pattern[row, q] * logits[row, q, seqs.input_ids[row]]).sum() for q in range(s, s + L)
        ]
        assert float(torch.stack(vals).mean().detach()) == pytest.approx(
            float(stats["copy"][row, layer, head]), rel=1e-3, abs=1e-5
        )


def _plant_ov(model, head, sign):
    """Tie W_U to W_E and set head's W_V W_O = sign * Q Q^T: OV eigenvalues all of one sign."""
    hf = model.hf
    torch.manual_seed(1)
    q = torch.randn(model.d_model, model.d_head)
    group = model.n_heads // model.n_kv_heads
    kv = head // group
    with torch.no_grad():
        hf.lm_head.weight.copy_(hf.get_input_embeddings().weight)
        attn = hf.model.layers[1].self_attn
        attn.v_proj.weight[kv * model.d_head : (kv + 1) * model.d_head] = q.T
        attn.o_proj.weight[:, head * model.d_head : (head + 1) * model.d_head] = sign * q


def test_ov_eigen_score_planted_copying_under_gqa():
    model = tiny_model("llama")  # 8 query heads, 4 kv heads
    _plant_ov(model, head=5, sign=1.0)
    assert float(ind.ov_eigen_scores(model).scores[1, 5]) == pytest.approx(1.0, abs=1e-6)
    _plant_ov(model, head=5, sign=-1.0)
    scores = ind.ov_eigen_scores(model).scores
    assert float(scores[1, 5]) == pytest.approx(-1.0, abs=1e-6)
    assert ((scores >= -1 - 1e-6) & (scores <= 1 + 1e-6)).all()


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "qwen2"])
def test_other_architectures(arch):
    model = tiny_model(arch)
    res = ind.run(
        model, ind.InductionConfig(n=2, span_lengths=(4, 6), offsets=(0,), causal=False, n_boot=50)
    )
    for name in ("prefix_matching", "copying", "ov_eigen"):
        assert torch.isfinite(res.scores[name].scores).all()


# ------------------------------------------------------------------------------ tracking


def _state(tmp_path, name, seed, step, **over):
    from interp.zoo.recipes import get_recipe, with_overrides
    from interp.zoo.train import build_model
    from interp.zoo.world import World

    r = with_overrides(get_recipe("world-mini"), seed=seed, **over)
    world = World(r.world_seed)
    torch.manual_seed(seed)
    hf = build_model(r, len(world.vocab), world.build_tokenizer())
    path = tmp_path / name
    torch.save({"recipe": r.to_dict(), "step": step, "model": hf.state_dict()}, path)
    return str(path)


def test_track_checkpoints_and_mismatch(tmp_path):
    cfg = ind.InductionConfig(n=2, span_lengths=(4, 6), offsets=(0,), n_boot=50)
    a, b = _state(tmp_path, "a.pt", 0, 20), _state(tmp_path, "b.pt", 1, 40)
    traj = ind.track([a, b], cfg)
    assert traj.steps == [20, 40] and traj.labels == ["world-mini@step20", "world-mini@step40"]
    d = traj.to_dict()
    assert len(d["loss_ratio"]) == 2 and all(len(v) == 2 for v in d["induction"].values())
    assert set(traj.figures()) == {"trajectory_heads", "trajectory_loss"}
    wide = _state(tmp_path, "c.pt", 0, 60, d_model=48)
    with pytest.raises(ind.CheckpointMismatchError, match="d_model 32 vs 48"):
        ind.track([a, wide], cfg)
    with pytest.raises(ind.CheckpointMismatchError, match="architecture"):
        ind.track([tiny_model("llama"), tiny_model("gpt2")], cfg)
    with pytest.raises(ValueError, match="list"):
        ind.track(a, cfg)


# ------------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    hf, tok = tiny_hf_model("llama")
    hf.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_cli_induction(tmp_path, tiny_folder):
    from typer.testing import CliRunner

    from interp.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "induction",
            str(tiny_folder),
            "--out",
            str(out),
            "--n",
            "2",
            "--lengths",
            "4,6",
            "--offsets",
            "0",
            "--n-random",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    numbers = summary["numbers"]
    for key in (
        "max_prefix_matching",
        "ablation_top_second_loss_ratio",
        "ablation_random_second_loss_ratios",
        "induction_behaviour",
        "verdict",
        "transformer_lens_agreement",
    ):
        assert key in numbers
    assert numbers["transformer_lens_agreement"]["n_seqs"] > 0
    assert (out / "heads_induction.html").exists() and summary["data"]["seed"] == 0
    bad = CliRunner().invoke(
        app, ["induction", str(tiny_folder), "--out", str(out), "--lengths", "4,x"]
    )
    assert bad.exit_code == 2 and "comma-separated" in bad.output


def test_stories_negative_case(stories):
    res = ind.run(stories, ind.InductionConfig(n=4, n_boot=200, n_random=2))
    assert not res.has_induction_behaviour and "negative case" in res.verdict
    assert (
        res.loss["ratio"] > 0.9
    )  # measured 0.97: the continuation of the first copy is not copied


def train_copying_model(steps=400, seed=0):
    """A 2-layer llama trained on rows of a short random span repeated to the end (positive
    control)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from interp.testing import word_tokenizer

    tok = word_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
        architectures=["LlamaForCausalLM"],
    )
    torch.manual_seed(seed)
    hf = LlamaForCausalLM(cfg)
    opt = torch.optim.AdamW(hf.parameters(), lr=1e-3, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    content = np.arange(4, len(tok))
    for _ in range(steps):
        rows = []
        for _ in range(64):
            L, o = int(rng.integers(2, 9)), int(rng.integers(0, 4))
            span = rng.permutation(content)[:L]
            rows.append(
                np.concatenate([[0], rng.choice(content, size=o)] + [span] * (32 // L + 1))[:32]
            )
        x = torch.tensor(np.stack(rows))
        loss = hf(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return interp.Model(hf.eval(), tok, name="copying-2l")


@pytest.mark.slow
def test_trained_copying_model_has_induction_heads():
    model = train_copying_model()
    res = ind.run(
        model, ind.InductionConfig(n=8, span_lengths=(5, 8, 11), offsets=(0, 7), n_random=3)
    )
    assert res.has_induction_behaviour and res.loss["ratio"] < 0.2
    assert res.induction_heads and all(h.startswith("L1") for h in res.induction_heads)
    assert any(res.head_roles[f"L0H{h}"] == "previous-token" for h in range(4))
    assert float(res.scores["prefix_matching"].scores.max()) >= 0.5
    assert res.causal["top_ratio"] >= 2.0


def test_cli_induction_with_checkpoints(tmp_path):
    from typer.testing import CliRunner

    from interp.cli import app

    a, b = _state(tmp_path, "a.pt", 0, 20), _state(tmp_path, "b.pt", 1, 40)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "induction",
            b,
            "--checkpoints",
            a,
            "--out",
            str(out),
            "--n",
            "2",
            "--lengths",
            "4,6",
            "--offsets",
            "0",
            "--n-random",
            "1",
            "--no-compare-tl",
        ],
    )
    assert result.exit_code == 0, result.output
    numbers = json.loads((out / "summary.json").read_text())["numbers"]
    assert numbers["trajectory"]["steps"] == [20, 40] and (out / "trajectory_heads.html").exists()
    wide = _state(tmp_path, "c.pt", 0, 60, d_model=48)
    bad = CliRunner().invoke(
        app,
        [
            "induction",
            b,
            "--checkpoints",
            wide,
            "--out",
            str(out),
            "--n",
            "2",
            "--lengths",
            "4,6",
            "--offsets",
            "0",
            "--no-compare-tl",
        ],
    )
    assert bad.exit_code == 2 and "does not match" in bad.output


def test_config_validation(llama):
    with pytest.raises(ValueError, match="two different span lengths"):
        ind.InductionConfig(span_lengths=(8, 8))
    with pytest.raises(ValueError, match="unknown InductionConfig key"):
        ind.InductionConfig.from_dict({"n": 4, "spans": (4, 6)})
    with pytest.raises(ValueError, match="ablation must be one of"):
        ind.InductionConfig(ablation="median")
    with pytest.raises(ValueError, match="rank_by must be one of"):
        ind.InductionConfig(rank_by="score")
    assert ind.InductionConfig.from_dict(ind.InductionConfig(n=3).to_dict()) == ind.InductionConfig(
        n=3
    )
    with pytest.raises(interp.HeadIndexError):
        ind.ablation_check(llama, ind.make_sequences(llama, ind.InductionConfig(**SMALL)), ["L5H0"])


def test_random_control_outside_the_circuit_avoids_every_circuit_head(llama):
    seqs = ind.make_sequences(llama, ind.InductionConfig(**SMALL))
    circuit = ["L0H1", "L1H0", "L1H1"]
    c = ind.ablation_check(llama, seqs, ["L1H0"], n_random=4, circuit=circuit)
    assert sorted(c["circuit"]) == sorted(circuit)
    assert len(c["random_outside_circuit"]) == 4 and len(c["random"]) == 4
    for d in c["random_outside_circuit"]:
        assert not set(d["heads"]) & set(circuit)
    assert c["random_outside_circuit_ratio_max"] == max(
        d["ratio"] for d in c["random_outside_circuit"]
    )
    assert "random_outside_circuit" not in ind.ablation_check(llama, seqs, ["L1H0"], n_random=2)


def test_single_head_ratios_match_one_head_ablations_and_join_the_located_circuit(llama):
    seqs = ind.make_sequences(llama, ind.InductionConfig(**SMALL))
    ratios = ind.single_head_ratios(llama, seqs, mode="zero")
    assert set(ratios) == {h.name for h in llama.all_heads()}
    clean = ind.sequence_losses(llama, seqs)[1].mean()
    one = ind.sequence_losses(llama, seqs, interp.PruneHeads(["L1H0"]))[1].mean()
    assert ratios["L1H0"] == pytest.approx(float(one / clean), rel=1e-5)
    res = ind.run(
        llama, ind.InductionConfig(**SMALL, located_ratio=0.0, ablation="zero"), seqs=seqs
    )
    assert res.causal["located_by_effect"] == sorted(ratios)  # ratio >= 0: every head
    assert res.causal["random_outside_circuit"] == []  # nothing left outside
    assert res.causal["random_outside_circuit_ratio_max"] is None


def test_mean_ablation_uses_each_heads_mean_over_every_position(llama):
    seqs = ind.make_sequences(llama, ind.InductionConfig(**SMALL))
    means = llama.head_means(seqs.input_ids, batch_size=4)
    assert llama.head_means(seqs.input_ids) is means  # cached by the ids
    _, cache = llama.run_with_cache(seqs.input_ids, sites=("z",))
    torch.testing.assert_close(
        means[1, 3], cache[1, "z"][:, :, 3].float().mean((0, 1)), atol=1e-5, rtol=1e-4
    )
    ratios = ind.single_head_ratios(llama, seqs, heads=["L1H3", "L0H0"])
    assert list(ratios) == ["L1H3", "L0H0"]
    clean = ind.sequence_losses(llama, seqs)[1].mean()
    mean_ablated = interp.PruneHeads(["L1H3"], mode="mean", means=[means[1, 3].tolist()])
    one = ind.sequence_losses(llama, seqs, mean_ablated)[1].mean()
    assert ratios["L1H3"] == pytest.approx(float(one / clean), rel=1e-5)
    zero = ind.single_head_ratios(llama, seqs, heads=["L1H3"], mode="zero")["L1H3"]
    assert zero != pytest.approx(
        ratios["L1H3"], rel=1e-6
    )  # a different ablation, a different number
    assert not llama.active_interventions


def test_effect_ranking_picks_the_prefix_matching_heads_the_copy_needs_on_other_sequences(llama):
    # threshold ~0: every head "prefix-matches" at every length, so every head is a candidate
    cfg = ind.InductionConfig(**{**SMALL, "n_random": 3}, threshold=1e-6, top_k=2)
    res = ind.run(llama, cfg)
    sel = res.causal["selection"]
    assert res.causal["rank_by"] == "effect" and sel["selection_seed"] == cfg.seed + 1
    other = ind.make_sequences(llama, dataclasses.replace(cfg, seed=cfg.seed + 1))
    assert sel["candidate_ratios"] == pytest.approx(
        ind.single_head_ratios(llama, other, heads=list(sel["candidate_ratios"]))
    )
    best = sorted(sel["candidate_ratios"], key=lambda n: -sel["candidate_ratios"][n])[:2]
    assert res.causal["heads"] == best
    pattern = res.ranked_induction(2)
    if set(pattern) != set(best):  # the pattern ranking is measured beside it
        assert res.causal["top_by_pattern"]["heads"] == pattern
    c = res.causal
    assert c["random_ratio_median"] == pytest.approx(
        float(np.median([d["ratio"] for d in c["random"]]))
    )
    assert c["random_share_within_control"] == pytest.approx(
        np.mean([d["ratio"] <= 1.2 for d in c["random"]])
    )
    by_pattern = ind.run(llama, dataclasses.replace(cfg, rank_by="pattern"))
    assert by_pattern.causal["heads"] == pattern and by_pattern.causal["selection"] is None


# ------------------------------------------------------------------------------ the protocol


def test_result_follows_the_analyzer_protocol(llama):
    from interp.analysis import AnalysisResult

    res = ind.run(llama, ind.InductionConfig(**SMALL))
    assert isinstance(res, AnalysisResult) and res.analyzer == "induction"
    numbers = res.numbers()
    assert numbers["ablation_top_heads"] == res.causal["heads"]
    assert numbers["ablation_random_second_loss_ratios"] == [
        d["ratio"] for d in res.causal["random"]
    ]
    assert "transformer_lens_agreement" not in numbers and "trajectory" not in numbers
    assert set(res.figures()) == {
        "heads_induction",
        "heads_prefix_matching",
        "heads_copying",
        "heads_previous_token",
        "heads_duplicate_token",
        "heads_ov_eigen",
        "copy_loss",
    }
    role, prefix = res.roles()
    assert (
        role.role == "induction"
        and set(role.heads) == set(res.induction_heads)
        and role.note == res.verdict
    )
    assert prefix.role == "prefix-matching (no copying)" and set(prefix.heads) == set(
        res.heads_with_role("prefix-matching (no copying)")
    )
    assert not set(prefix.heads) & set(role.heads) and not prefix.checks
    (check,) = role.checks  # the atlas sentence: the ablation against random head sets
    c = res.causal
    assert check.effect.endswith(
        f"multiplies the second-copy loss x{c['top_ratio']:.2f} "
        f"(CI {c['top_ratio_ci'][0]:.2f}-{c['top_ratio_ci'][1]:.2f})"
    )
    assert check.control.startswith(f"{len(c['random'])} random {len(c['heads'])}-head sets")
    assert check.bars[0] == ("control median <= x1.2", c["random_ratio_median"] <= 1.2)
    prov = res.provenance()
    assert prov["seeds"] == {"sequences": 0, "random_heads": 0} and prov["data"]["config"]["n"] == 3
    assert res.verdict in res.report() and "random head sets (2)" in res.report()


def test_floor_counts_the_forwards_a_zero_ablation_run_makes(llama):
    """Zero-ablation needs no head means, so the measured forwards equal the floor exactly;
    mean-ablation adds one pass per ablated sequence set for the means (the floor takes them
    from the clean pass)."""
    from interp.analysis import run_with_cost

    cfg = ind.InductionConfig(**SMALL, ablation="zero")
    res, cost = run_with_cost(ind.run, llama, cfg)
    floor, how = res.floor()
    n = cfg.n_seqs
    draws = len(res.causal["random"]) + len(res.causal.get("random_outside_circuit", []))
    candidates = len(res.causal["selection"]["candidate_ratios"])
    top = 2 if "top_by_pattern" in res.causal else 1
    assert floor == n * (1 + llama.n_layers * llama.n_heads + 1 + candidates + top + draws)
    assert cost.forward_passes == pytest.approx(floor) and cost.ratio == pytest.approx(1.0)
    assert f"N = {n} sequences" in how
    fresh = tiny_model("llama")  # the module's model may hold cached head means already
    res, cost = run_with_cost(ind.run, fresh, dataclasses.replace(cfg, ablation="mean"))
    extra = cost.forward_passes - res.floor()[0]
    assert extra in (n, 2 * n)  # one means pass per sequence set that is ablated


def test_random_controls_come_from_interp_controls(llama):
    from interp.controls import draw_head_sets

    seqs = ind.make_sequences(llama, ind.InductionConfig(**SMALL))
    c = ind.ablation_check(llama, seqs, ["L1H0", "L1H1"], n_random=3, seed=5, mode="zero")
    pool = [h for h in llama.all_heads() if h.name not in ("L1H0", "L1H1")]
    assert [d["heads"] for d in c["random"]] == [
        [h.name for h in s] for s in draw_head_sets(pool, 2, 3, seed=5, tag="induction/top")
    ]
    assert c["random_ratio_max"] == max(d["ratio"] for d in c["random"])


@pytest.mark.parametrize(
    "module",
    [
        "circuits.induction",
        "circuits.induction.config",
        "circuits.induction.copying",
        "circuits.induction.scoring",
        "circuits.induction.summary",
    ],
)
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------ the single-head sweep


def test_attribution_estimate_is_the_first_order_change_of_the_loss(llama):
    """The estimate for zero-ablating a head is -sum dL/dz . z: scaling the head's z by
    (1 - eps) must move the mean second-copy loss by eps times that, to first order."""
    from circuits.induction.sweep import estimated_single_head_ratios

    seqs = ind.make_sequences(llama, ind.InductionConfig(**SMALL))
    est = estimated_single_head_ratios(llama, seqs, mode="zero", batch_size=4)
    assert set(est) == {h.name for h in llama.all_heads()}
    clean = float(ind.sequence_losses(llama, seqs)[1].double().mean())
    eps = 1e-3
    for head in ("L0H2", "L1H5"):
        moved = float(
            ind.sequence_losses(llama, seqs, interp.ScaleValues(head, 1 - eps))[1].double().mean()
        )
        assert (moved - clean) / eps == pytest.approx((est[head] - 1) * clean, rel=0.05, abs=1e-4)
    assert not llama.active_interventions
    assert all(p.grad is None for p in llama.hf.parameters())  # no gradient left on the weights
    with pytest.raises(InterpError, match="sweep='exact'"):
        estimated_single_head_ratios(llama, seqs, mode="uniform")


def test_attribution_sweep_ablates_its_shortlist_exactly(llama):
    from circuits.induction.sweep import single_head_sweep

    seqs = ind.make_sequences(llama, ind.InductionConfig(**SMALL))
    second = ind.sequence_losses(llama, seqs)[1]
    sweep = single_head_sweep(
        llama, seqs, mode="mean", batch_size=8, second=second, sweep="attribution", shortlist=3
    )
    assert (
        sweep["method"] == "attribution"
        and len(sweep["estimates"]) == llama.n_layers * llama.n_heads
    )
    assert list(sweep["ratios"]) == sweep["shortlist"] and len(sweep["shortlist"]) == 3
    change = sorted(abs(v - 1) for v in sweep["estimates"].values())
    assert (
        min(abs(sweep["estimates"][n] - 1) for n in sweep["shortlist"]) == change[-3]
    )  # largest |change|
    exact = ind.single_head_ratios(llama, seqs, heads=sweep["shortlist"])
    assert sweep["ratios"] == pytest.approx(exact, rel=1e-6)
    assert (
        single_head_sweep(
            llama, seqs, mode="uniform", batch_size=8, second=second, sweep="attribution"
        )["method"]
        == "exact"
    )  # uniform has no estimate


def test_large_models_get_the_attribution_sweep_and_fewer_sequences(llama, monkeypatch):
    import interp.cost

    small = ind.InductionConfig().for_model(llama)
    assert small.n == 16 and ind.InductionConfig(n=5).for_model(llama).n == 5
    monkeypatch.setattr(interp.cost, "LARGE_MODEL_PARAMS", 1)  # every model is "large"
    assert ind.InductionConfig().for_model(llama).n == 4
    cfg = ind.InductionConfig(**{**SMALL, "n": None}, shortlist=4, top_k=1)
    res = ind.run(llama, cfg)
    assert res.data["n_seqs"] == 4 * 3 * 2
    sweep = res.causal["single_head_sweep"]
    assert sweep["method"] == "attribution" and len(res.causal["single_head_ratios"]) == 4
    floor, how = res.floor()
    n = res.data["n_seqs"]
    assert "single-head ablations" in how and floor < llama.n_layers * llama.n_heads * n
    assert res.numbers()["single_head_sweep"] == "attribution"
    with pytest.raises(InterpError, match="sweep must be one of"):
        ind.InductionConfig(sweep="all")
