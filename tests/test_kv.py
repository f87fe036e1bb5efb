"""Head-aware KV compression: the kept cache is smaller and reads exactly what the policy says."""

import json
import warnings
from pathlib import Path

import pytest
import torch
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

from circuits import kv_compression as K
from circuits import retrieval as R
from interp import PruneHeads
from interp.backends.attention import attention_implementation
from interp.cost import measure_cost
from interp.errors import InterpError
from interp.kv import (
    HeadKVPolicy,
    KVPolicyError,
    PolicyLayoutError,
    full_policy,
    kv_head_scores,
    layer_order_policy,
    policy_from,
    random_policy,
    streaming_policy,
)
from interp.testing import tiny_model

PROMPT = "a b c d e f g h i j k l m n o p q r"


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")  # 2 layers, 8 query heads, 4 kv heads (GQA)


def small_config(**changes) -> K.Config:
    """One 64-token prompt, one budget, an 8-position window: the experiment in seconds."""
    return K.Config(lengths=(64,), depths=(0.5,), budgets=(0.5,), window=8, **changes)


def test_budget_one_gives_the_full_cache_tokens(model):
    full = model.generate([PROMPT, "a b c d e f g h i j k"], max_new_tokens=10)
    kept = model.generate(
        [PROMPT, "a b c d e f g h i j k"], max_new_tokens=10, kv_policy=full_policy(model)
    )
    assert torch.equal(full.tokens, kept.tokens)
    assert torch.equal(
        full.tokens,
        model.generate(
            [PROMPT, "a b c d e f g h i j k"],
            max_new_tokens=10,
            kv_policy=policy_from(torch.rand(2, 8), model, budget=1.0),
        ).tokens,
    )


def _reference_attention(policy):
    """Eager reference: full keys, one boolean mask per query head (causal for full kv heads,
    sink + window for the rest), no cache tricks."""

    def attend(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        b, n_heads, q_len, _ = query.shape
        n_kv, total = key.shape[1], key.shape[2]
        groups = n_heads // n_kv
        q_pos = torch.arange(total - q_len, total)[:, None]
        k_pos = torch.arange(total)[None, :]
        causal = k_pos <= q_pos
        layer = module.layer_idx
        if policy.span(layer):  # a local layer sees its own window only
            causal = causal & (q_pos - k_pos < policy.span(layer))
        near = causal & ((k_pos < policy.sink) | (q_pos - k_pos <= policy.window))
        mask = torch.stack(
            [causal if policy.is_full(layer, h // groups) else near for h in range(n_heads)]
        )
        mask = mask[None] & (
            attention_mask[..., -q_len:, :total] if attention_mask is not None else True
        )
        out = torch.nn.functional.scaled_dot_product_attention(
            query,
            key.repeat_interleave(groups, 1),
            value.repeat_interleave(groups, 1),
            attn_mask=mask,
            scale=scaling,
        )
        return out.transpose(1, 2).contiguous(), None

    return attend


def _reference_greedy(model, policy, prompt, n):
    AttentionInterface.register("test_kv_reference", _reference_attention(policy))
    AttentionMaskInterface.register("test_kv_reference", ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
    ids = model.to_tokens(prompt).input_ids
    with attention_implementation(model.hf, "test_kv_reference"), torch.no_grad():
        for _ in range(n):
            logits = model.hf(input_ids=ids, use_cache=False).logits
            ids = torch.cat([ids, logits[:, -1:].argmax(-1)], 1)
    return ids


@pytest.mark.parametrize("full", [(), ((0, 1), (1, 3)), ((0, 0), (0, 1), (0, 2), (1, 2))])
def test_compressed_cache_reads_exactly_sink_and_window(model, full):
    policy = HeadKVPolicy(full, model.n_layers, model.n_kv_heads, sink=2, window=5)
    got = model.generate(PROMPT, max_new_tokens=8, kv_policy=policy)
    assert torch.equal(got.tokens, _reference_greedy(model, policy, PROMPT, 8))


def test_the_kept_cache_is_smaller_and_matches_the_theory(model):
    policy = HeadKVPolicy(((0, 1),), model.n_layers, model.n_kv_heads, sink=2, window=4)
    out = model.generate(PROMPT, max_new_tokens=6, kv_policy=policy)
    cached = out.tokens.shape[1] - 1  # the last token is never fed back
    assert out.kv_cache_bytes == policy.kv_bytes(cached, model.d_head)
    assert (
        out.kv_cache_bytes < full_policy(model).kv_bytes(cached, model.d_head) / 2
    )  # 24 + 7 x 6 of 8 x 24


def test_policy_composes_with_interventions(model):
    prune = PruneHeads(["L1H0", "L0H3"])
    base = model.generate(PROMPT, max_new_tokens=6, interventions=prune)
    both = model.generate(
        PROMPT, max_new_tokens=6, interventions=prune, kv_policy=full_policy(model)
    )
    assert torch.equal(base.tokens, both.tokens)


def test_group_scores_map_query_heads_to_kv_heads(model):
    scores = torch.tensor([[0.1, 0.9, 0.0, 0.0, 0.2, 0.2, 0.5, float("nan")]] * 2)
    assert kv_head_scores(scores, 4, "max")[0].tolist() == pytest.approx([0.9, 0.0, 0.2, 0.5])
    assert kv_head_scores(scores, 4, "mean")[0].tolist() == pytest.approx([0.5, 0.0, 0.2, 0.5])
    policy = policy_from(scores, model, budget=0.25, group="max")  # 2 of 8 kv heads
    assert policy.full == ((0, 0), (1, 0)) and policy.kind == "retrieval/max"
    assert policy_from(scores, model, threshold=0.4).full == ((0, 0), (0, 3), (1, 0), (1, 3))


def test_random_policy_is_seeded_and_sized(model):
    a, b = random_policy(model, 0.5, seed=1), random_policy(model, 0.5, seed=1)
    assert a == b and len(a.full) == 4 and random_policy(model, 0.5, seed=2) != a


def test_ties_by_position_or_at_random_and_the_layer_order_control(model):
    """One scored kv head (L1 kv 2); a budget of 3 of 8 fills 2 from the tied zeros."""
    scores = torch.zeros(2, 8)
    scores[1, 4] = 0.7  # query head 4 shares kv head 2
    by_position = policy_from(scores, model, budget=3 / 8)
    assert by_position.full == ((0, 0), (0, 1), (1, 2))  # the scored head, then layer order
    assert layer_order_policy(model, 3 / 8).full == ((0, 0), (0, 1), (0, 2))
    draws = [policy_from(scores, model, budget=3 / 8, ties="random", seed=s) for s in range(6)]
    assert all((1, 2) in d.full and len(d.full) == 3 for d in draws)  # scores still first
    assert len({d.full for d in draws}) > 1 and draws[0].kind == "retrieval/max/random-ties"
    again = policy_from(scores, model, budget=3 / 8, ties="random", seed=0)
    assert again == draws[0]
    with pytest.raises(InterpError, match="ties must be one of"):
        policy_from(scores, model, budget=0.5, ties="layer")


def test_controls_run_beside_the_retrieval_policy(model):
    cfg = small_config(n_random=2, controls=("layer_order", "random_ties"))
    with warnings.catch_warnings(record=True):
        result = K.run(model, cfg, scores=torch.rand(2, 8))
    runs = sorted({(p["policy"], p["draw"] or 0) for p in result.points})
    assert ("layer_order", 0) in runs and ("random_ties", 1) in runs
    assert set(result.headline().get("controls", {})) <= {"layer_order", "random_ties"}
    assert "layer_order" in result.report()
    with pytest.raises(InterpError, match="Config.controls"):
        K.Config(controls=("layer",))
    with pytest.raises(InterpError, match="Config.controls"):
        K.Config(controls="layer_order")


def test_json_round_trip_and_unknown_keys(model, tmp_path):
    policy = policy_from(torch.rand(2, 8), model, budget=0.5, sink=3, window=7)
    assert HeadKVPolicy.load(policy.save(tmp_path / "p.json")) == policy
    data = json.loads((tmp_path / "p.json").read_text())
    with pytest.raises(InterpError, match="unknown KV policy key"):
        HeadKVPolicy.from_dict({**data, "extra": 1})
    with pytest.raises(InterpError, match="schema"):
        HeadKVPolicy.from_dict({**data, "schema": "interp.kv_policy/9"})


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: policy_from(torch.rand(2, 8), m, budget=1.5), r"budget must be in \[0, 1\]"),
        (lambda m: policy_from(torch.rand(2, 8), m, budget=True), "budget must be a number"),
        (lambda m: streaming_policy(m, sink=-1), "sink must be >= 0"),
        (lambda m: streaming_policy(m, window=0), "window must be >= 1"),
        (
            lambda m: m.generate(
                "a b c", max_new_tokens=2, kv_policy=streaming_policy(m, sink=2, window=8)
            ),
            "cover the whole prompt",
        ),
        (
            lambda m: m.generate(
                PROMPT, max_new_tokens=2, use_cache=False, kv_policy=streaming_policy(m, window=4)
            ),
            "needs the KV cache",
        ),
        (
            lambda m: m.generate(
                PROMPT,
                max_new_tokens=2,
                backend="transformer_lens",
                kv_policy=streaming_policy(m, window=4),
            ),
            "nnsight engine",
        ),
        (
            lambda m: m.generate(PROMPT, max_new_tokens=2, kv_policy="L0H1"),
            "must be an interp.kv.HeadKVPolicy",
        ),
        (lambda m: policy_from(torch.rand(3, 8), m, budget=0.5), "not for"),
    ],
)
def test_bad_input_is_a_clear_error(model, call, match):
    with pytest.raises(InterpError, match=match):
        call(model)


def test_a_policy_for_another_layout_is_refused(model):
    other = HeadKVPolicy((), n_layers=3, n_kv_heads=4, window=4, model="other-model")
    with pytest.raises(PolicyLayoutError, match="3 layers x 4 kv heads"):
        model.generate(PROMPT, max_new_tokens=2, kv_policy=other)
    assert issubclass(KVPolicyError, InterpError)


def test_kv_command_writes_curve_summary_policies(model, tmp_path):
    from helpers import save_model_folder
    from typer.testing import CliRunner

    from interp.cli import app

    folder = save_model_folder(model, tmp_path / "tiny")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "kv",
            str(folder),
            "--out",
            str(out),
            "--lengths",
            "64",
            "--depths",
            "0.5",
            "--budgets",
            "0.5",
            "--n-random",
            "2",
            "--window",
            "8",
            "--quiet",
            "--no-memory-probe",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert all(p["peak_bytes"] is None for p in summary["numbers"]["points"])
    policies = {row["policy"] for row in summary["numbers"]["curve"]}
    assert policies == {"full", "streaming", "retrieval", "random"}
    cost = summary["cost"]
    assert cost["floor_forward_passes"] > 5.0  # 5 generations + the retrieval scoring it ran
    assert "retrieval scoring" in cost["floor_note"]
    assert 0.99 <= cost["ratio_to_floor"] <= 1.5
    loaded = HeadKVPolicy.load(out / "policies" / "retrieval_budget_0.50.json")
    assert len(loaded.full) == 4 and loaded.window == 8
    assert (out / "kv_compression.html").exists() and (out / "retrieval_scores.json").exists()


def test_floor_counts_the_retrieval_scoring_only_when_the_run_did_it(model):
    """Given scores: one prefill per prompt and policy. Scored here: plus one forward per
    retrieval scoring prompt (teacher-forced), and the measured forwards stay within 1.5x."""
    cfg = small_config(n_random=1, retrieval_lengths=(48,))
    with warnings.catch_warnings(record=True):  # the tiny model may solve no scoring test
        scoring = R.run(model, R.Config(lengths=(48,)))
        given = K.run(model, cfg, scores=scoring.scores)
        with measure_cost(model) as meter:
            scored = K.run(model, cfg)
    floor, how = given.floor()
    assert floor == 4.0 and "retrieval scoring" not in how  # 1 prompt x 4 policies
    floor, how = scored.floor()
    assert floor == 4.0 + scoring.n_tests and "retrieval scoring" in how
    assert floor * 0.99 <= meter.cost.forward_passes <= 1.5 * floor


def test_kv_command_bad_budget_is_a_clear_error(model, tmp_path):
    from helpers import save_model_folder
    from typer.testing import CliRunner

    from interp.cli import app

    folder = save_model_folder(model, tmp_path / "tiny")
    result = CliRunner().invoke(
        app, ["kv", str(folder), "--out", str(tmp_path / "o"), "--budgets", "1.5"]
    )
    assert result.exit_code == 2 and "budgets must be shares in (0, 1]" in result.output
    result = CliRunner().invoke(
        app, ["kv", str(folder), "--out", str(tmp_path / "o"), "--controls", "layers"]
    )
    assert result.exit_code == 2 and "layer_order" in result.output  # names the valid ones


@pytest.fixture(scope="module")
def gemma():
    return tiny_model("gemma3")  # layer 0 slides over 4 positions, layer 1 is global; 1 kv head


def test_sliding_window_layers_keep_their_own_window(gemma):
    """Gemma 3's local layers: the policy records their span, a full kv head there keeps the
    layer's window (3 positions for the next query), the tokens equal plain generation under
    the full policy and the eager reference under mixed ones."""
    assert full_policy(gemma).spans == (4, 0)
    plain = gemma.generate(PROMPT, max_new_tokens=8)
    assert torch.equal(
        plain.tokens, gemma.generate(PROMPT, max_new_tokens=8, kv_policy=full_policy(gemma)).tokens
    )
    for full in [(), ((0, 0),), ((1, 0),)]:
        policy = HeadKVPolicy(full, 2, 1, sink=2, window=3, spans=(4, 0))
        got = gemma.generate(PROMPT, max_new_tokens=8, kv_policy=policy)
        assert torch.equal(got.tokens, _reference_greedy(gemma, policy, PROMPT, 8)), full
        cached = got.tokens.shape[1] - 1
        assert got.kv_cache_bytes == policy.kv_bytes(cached, gemma.d_head)
    assert full_policy(gemma).kept_positions(25, 0, True) == 3  # the local layer's window
    assert full_policy(gemma).kept_positions(25, 1, True) == 25
    sw = HeadKVPolicy((), 2, 1, sink=2, window=3, spans=(4, 0))
    assert sw.kept_positions(25, 0, False) == 3 and sw.kept_positions(25, 1, False) == 5


def test_a_policy_for_other_layer_spans_is_refused(gemma, model):
    with pytest.raises(PolicyLayoutError, match="layer spans"):
        gemma.generate(PROMPT, max_new_tokens=2, kv_policy=HeadKVPolicy((), 2, 1, window=4))
    assert HeadKVPolicy.from_dict(full_policy(gemma).to_dict()) == full_policy(gemma)
    with pytest.raises(InterpError, match="one span per layer"):
        HeadKVPolicy((), 2, 1, spans=(4,))


def test_saved_run_redraws_with_error_bars_in_the_axis_units():
    """from_summary rebuilds a saved run; the random draws' range is drawn in percent, like y."""
    saved = K.from_summary(
        Path(__file__).parents[1] / "results/world-base/kv_compression/summary.json"
    )
    fig = saved.figures()["kv_compression"]
    trace = next(t for t in fig.data if t.name == "random")
    rows = sorted(
        (r for r in saved.curve() if r["policy"] == "random"), key=lambda r: r["kv_share"]
    )
    assert list(trace.y) == pytest.approx([100 * r["accuracy"] for r in rows])
    assert list(trace.error_y.array) == pytest.approx(
        [100 * (r["accuracy_max"] - r["accuracy"]) for r in rows]
    )
    assert max(trace.error_y.array) > 1  # a range of draws, not a fraction of a percent


@pytest.mark.parametrize("sink,window,min_chunk", [(2, 5, 1), (0, 7, 3), (4, 40, 64), (3, 1, 2)])
def test_the_chunked_streaming_prefill_equals_the_masked_one(sink, window, min_chunk, monkeypatch):
    from interp.kv import attention as A  # the module under test, patched per case

    monkeypatch.setattr(A, "MIN_CHUNK", min_chunk)
    torch.manual_seed(0)
    total = 150
    query, keys, values = torch.randn(2, 3, 2, total, 8), *torch.randn(2, 2, 3, total, 8)
    pos = torch.arange(total)
    band = A.allowed(None, total, total, "cpu") & A.near(pos, total, total, sink, window)
    slow = A.attend(query, keys, values, band, None)
    fast = A.window_prefill(query, keys, values, pos, sink, window, None)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_the_causal_route_equals_the_masked_one():
    from interp.kv import attention as A  # the module under test

    query, keys, values = torch.randn(1, 3, 2, 40, 8), *torch.randn(2, 1, 3, 40, 8)
    masked = A.attend(query, keys, values, A.allowed(None, 40, 40, "cpu"), None)
    assert torch.allclose(A.attend(query, keys, values, None, None, causal=True), masked, atol=1e-6)


@pytest.mark.parametrize("full", [(), ((0, 1), (1, 3))])
def test_a_long_prompt_in_many_chunks_reads_exactly_sink_and_window(model, full, monkeypatch):
    from interp.kv import attention as A  # patched: chunks of the window itself

    monkeypatch.setattr(A, "MIN_CHUNK", 1)
    policy = HeadKVPolicy(full, model.n_layers, model.n_kv_heads, sink=2, window=3)
    prompt = " ".join([PROMPT] * 4)
    got = model.generate(prompt, max_new_tokens=6, kv_policy=policy)
    assert torch.equal(got.tokens, _reference_greedy(model, policy, prompt, 6))


def test_the_default_grid_is_sized_to_the_model(model, monkeypatch):
    zoo = K.Config().for_model(model)
    assert (zoo.budgets, zoo.n_random, zoo.memory_probe) == (K.ZOO_BUDGETS, K.ZOO_DRAWS, True)
    monkeypatch.setattr(K, "is_large", lambda m: True)
    large = K.Config().for_model(model)
    assert (large.budgets, large.n_random, large.memory_probe) == (
        K.LARGE_BUDGETS,
        K.LARGE_DRAWS,
        False,
    )
    asked = K.Config(budgets=(0.1,), n_random=0, memory_probe=True).for_model(model)  # flags win
    assert (asked.budgets, asked.n_random, asked.memory_probe) == ((0.1,), 0, True)
    n_policies = len(K.policies(model, torch.rand(2, 8), K.Config(window=8)))
    assert n_policies == 2 + len(K.LARGE_BUDGETS) * (1 + K.LARGE_DRAWS)
