"""Token attribution with captum: checked against brute force and the methods' sum rules."""

import pytest
import torch

import interp
from interp.attribution import (
    METHODS,
    AttributionError,
    MultiTokenTargetError,
    attribute_methods,
    attributions_figure,
    attributions_frame,
    target_ids,
    token_attribution,
)
from interp.testing import tiny_model

PROMPT = "the cat saw the red box and"
TARGET = "the dog"  # two tokens in the word tokenizer


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def log_prob(model, ids, targets):
    """log p(targets | ids) per target token, via interp's own forward (independent of captum)."""
    seq = torch.tensor([list(ids) + list(targets)])
    logp = torch.log_softmax(model.forward(seq)[0].float(), -1)
    return torch.stack([logp[len(ids) - 1 + i, t] for i, t in enumerate(targets)])


def test_feature_ablation_equals_brute_force(model):
    res = token_attribution(model, PROMPT, TARGET, "feature_ablation")
    ids = model.to_tokens(PROMPT).input_ids[0].tolist()
    targets = target_ids(model, PROMPT, TARGET)
    base = model.tokenizer.unk_token_id
    full = log_prob(model, ids, targets)
    expected = []
    for pos in res.positions:
        ablated = ids[:pos] + [base] + ids[pos + 1 :]
        expected.append(full - log_prob(model, ablated, targets))
    expected = torch.stack(expected, 1)  # [target token, prompt token]
    assert res.scores.shape == (2, len(ids) - 1)
    torch.testing.assert_close(res.scores, expected, atol=1e-4, rtol=1e-4)
    assert res.positions == tuple(range(1, len(ids)))  # BOS (position 0) is not attributed
    assert res.input_tokens == tuple(PROMPT.split())
    assert res.target_tokens == ("the", "dog")
    assert res.meta["log_prob"] == pytest.approx(float(full.sum()), abs=1e-4)


def test_shapley_values_add_up_and_are_seeded(model):
    rng_before = torch.random.get_rng_state()
    res = token_attribution(model, PROMPT, TARGET, "shapley", n_samples=6, seed=1)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # global RNG untouched
    gap = res.meta["log_prob"] - res.meta["log_prob_baseline"]
    assert float(res.total.sum()) == pytest.approx(gap, abs=1e-4)  # efficiency, exact per order
    again = token_attribution(model, PROMPT, TARGET, "shapley", n_samples=6, seed=1)
    other = token_attribution(model, PROMPT, TARGET, "shapley", n_samples=6, seed=2)
    assert torch.equal(res.scores, again.scores)
    assert not torch.allclose(res.scores, other.scores)
    assert res.meta["n_samples"] == 6 and res.meta["seed"] == 1


def test_integrated_gradients_completeness(model):
    res = token_attribution(model, PROMPT, TARGET, "integrated_gradients", n_steps=64)
    gap = res.meta["log_prob"] - res.meta["log_prob_baseline"]
    assert abs(gap) > 0.1
    assert float(res.total.sum()) == pytest.approx(gap, rel=2e-2, abs=1e-3)
    assert torch.equal(res.total, res.scores.sum(0))


@pytest.mark.parametrize("method", METHODS)
def test_token_equal_to_baseline_gets_zero(model, method):
    # "zebra" is not in the tiny vocabulary, so it is <unk>: removing it changes nothing.
    res = token_attribution(model, "the zebra saw the cat", "box", method, n_samples=4)
    assert res.input_tokens[1] == "<unk>"
    assert float(res.total[1]) == pytest.approx(0.0, abs=1e-6)
    assert float(res.total.abs().max()) > 1e-3


def test_multi_token_target_is_attributed_as_a_sequence_or_refused(model):
    assert len(target_ids(model, PROMPT, TARGET)) == 2
    res = token_attribution(model, PROMPT, TARGET)
    assert res.scores.shape[0] == 2 and torch.equal(res.total, res.scores.sum(0))
    first = token_attribution(model, PROMPT, "the")
    torch.testing.assert_close(
        first.scores[0], res.scores[0]
    )  # row 0 = attribution to token 1 alone
    with pytest.raises(
        MultiTokenTargetError, match=r"2 tokens \['the', 'dog'\].*single_token=False"
    ):
        token_attribution(model, PROMPT, TARGET, single_token=True)
    assert token_attribution(model, PROMPT, "dog", single_token=True).scores.shape[0] == 1


def test_target_tokenized_in_context(model):
    dog = model.tokenizer.convert_tokens_to_ids("dog")
    assert target_ids(model, "the cat saw the", "dog") == [dog]
    assert target_ids(model, "the cat saw the", " dog") == [dog]


def test_frames_and_figures(model):
    results = attribute_methods(model, PROMPT, TARGET, n_samples=3, n_steps=8)
    assert list(results) == list(METHODS)
    frame = results["feature_ablation"].to_frame()
    assert list(frame.columns) == ["position", "token", "attribution", "-> the (0)", "-> dog (1)"]
    assert frame["attribution"].tolist() == pytest.approx(
        results["feature_ablation"].total.tolist()
    )
    table = attributions_frame(results)
    assert list(table.columns) == ["position", "token", *METHODS] and len(table) == 7
    fig = results["shapley"].plot()
    assert fig.data[0].type == "heatmap" and len(fig.data[0].x) == 7
    assert list(fig.data[0].y) == ["total", "-> the (0)", "-> dog (1)"]
    assert len(set(fig.data[0].x)) == 7  # repeated 'the' kept apart by position
    comp = attributions_figure(results)
    assert list(comp.data[0].y) == list(METHODS)
    assert results["feature_ablation"].top(1)[0][0] in PROMPT.split()


def test_model_left_as_found(model):
    hooks = lambda: sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.hf.modules()
    )
    before_logits = model.forward(PROMPT)
    n_hooks, grad_mode = hooks(), torch.is_grad_enabled()
    for method in METHODS:
        token_attribution(model, PROMPT, TARGET, method, n_samples=2, n_steps=4)
    assert hooks() == n_hooks and torch.is_grad_enabled() == grad_mode
    assert all(p.grad is None for p in model.hf.parameters())
    torch.testing.assert_close(model.forward(PROMPT), before_logits)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "lime"}, "unknown attribution method 'lime'"),
        ({"target": "  "}, "target must be a non-empty string"),
        ({"prompt": ""}, "prompt must be a non-empty string"),
        ({"target": 3}, "target must be a non-empty string"),
        ({"baseline": "zebra"}, "baseline token 'zebra' is not in the vocabulary"),
        ({"baseline": 10**6}, "baseline must be a token string or an id"),
    ],
)
def test_bad_input(model, kwargs, match):
    args = {"prompt": PROMPT, "target": TARGET, "method": "feature_ablation"} | kwargs
    with pytest.raises(AttributionError, match=match):
        token_attribution(model, **args)


def test_refuses_while_interventions_are_applied(model):
    recipe = model.apply(interp.PruneHeads(["L0H0"]))
    try:
        with pytest.raises(AttributionError, match="model.remove"):
            token_attribution(model, PROMPT, TARGET)
        assert model.active_interventions == (recipe,)
    finally:
        model.remove(recipe)


def test_stories_sentencepiece_model(stories):
    prompt, target = "Once upon a time, there was a little", "girl"
    res = token_attribution(stories, prompt, target, "feature_ablation")
    ids = stories.to_tokens(prompt).input_ids[0].tolist()
    targets = target_ids(stories, prompt, target)
    assert stories.decode(targets).strip() == target
    assert len(res.positions) == len(ids) - 1 and res.scores.shape == (len(targets), len(ids) - 1)
    full = log_prob(stories, ids, targets).sum()
    pos = res.positions[-1]
    ablated = ids[:pos] + [res.meta["baseline_id"]] + ids[pos + 1 :]
    expected = full - log_prob(stories, ablated, targets).sum()
    assert float(res.total[-1]) == pytest.approx(float(expected), abs=1e-3)
