"""Tests for interp.results: HeadScores queries, JSON round trip, validation, data_hash."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from interp.results import HeadScores, data_hash


@pytest.fixture
def hs() -> HeadScores:
    scores = torch.tensor([[0.0, 0.25, 0.75], [0.5, -0.125, 0.0625]])
    return HeadScores(
        scores,
        model="toy-2l",
        method="retrieval",
        data_hash="abc123",
        seed=7,
        threshold=0.1,
        meta={"n_tests": 3, "per_test": [[0.1, 0.2], [0.3, 0.4]]},
    )


def test_top_sorted_descending_and_largest_false(hs):
    assert hs.top(3) == [(0, 2, 0.75), (1, 0, 0.5), (0, 1, 0.25)]
    assert hs.top(2, largest=False) == [(1, 1, -0.125), (0, 0, 0.0)]
    assert all(isinstance(x, int) for l, h, _ in hs.top(6) for x in (l, h))


def test_top_ties_broken_by_layer_then_head():
    tied = HeadScores(torch.ones(2, 2), model="m", method="x")
    assert [(l, h) for l, h, _ in tied.top(4)] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_top_k_too_large_names_the_count(hs):
    with pytest.raises(ValueError, match=r"6 scored heads.*2 layers x 3 heads.*k <= 6"):
        hs.top(7)
    with pytest.raises(ValueError, match="positive int"):
        hs.top(0)


def test_heads_and_share_above(hs):
    assert hs.heads() == [(0, 1), (0, 2), (1, 0)]  # default threshold 0.1, strictly above
    assert hs.heads(0.5) == [(0, 2)]
    assert hs.share_above() == pytest.approx(3 / 6)
    assert hs.share_above(0.4) == pytest.approx(2 / 6)


def test_heads_without_any_threshold_explains_fix():
    bare = HeadScores(torch.zeros(1, 2), model="m", method="x")
    with pytest.raises(ValueError, match=r"needs a threshold.*threshold="):
        bare.heads()
    with pytest.raises(ValueError, match="needs a threshold"):
        bare.share_above()


def test_mask_marks_unscored_heads_which_queries_skip():
    scores = torch.tensor([[9.0, 1.0], [2.0, 3.0]])
    mask = torch.tensor([[False, True], [True, True]])
    hs = HeadScores(scores, model="m", method="x", mask=mask)
    assert math.isnan(hs.scores[0, 0])  # stored as NaN = not scored
    assert scores[0, 0] == 9.0  # caller's tensor untouched
    assert hs.n_scored == 3
    assert hs.top(1) == [(1, 1, 3.0)]
    assert hs.share_above(1.5) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="3 scored heads"):
        hs.top(4)


def test_nan_derives_mask_but_nan_at_scored_head_rejected():
    nan = float("nan")
    hs = HeadScores(torch.tensor([[nan, 1.0]]), model="m", method="x")
    assert hs.mask.tolist() == [[False, True]]
    with pytest.raises(ValueError, match=r"NaN at scored head\(s\) L0H0"):
        HeadScores(
            torch.tensor([[nan, 1.0]]),
            model="m",
            method="x",
            mask=torch.ones(1, 2, dtype=torch.bool),
        )


def test_to_frame_columns_and_order(hs):
    df = hs.to_frame()
    assert list(df.columns) == ["layer", "head", "name", "score"]
    assert len(df) == 6
    assert df["name"].tolist() == ["L0H2", "L1H0", "L0H1", "L1H2", "L0H0", "L1H1"]
    assert df["score"].is_monotonic_decreasing
    assert df.loc[0, "layer"] == 0 and df.loc[0, "head"] == 2


def test_json_round_trip_is_exact(hs, tmp_path):
    path = tmp_path / "sub" / "scores.json"
    text = hs.to_json(path)
    assert path.read_text().strip() == text
    for back in (
        HeadScores.from_json(text),
        HeadScores.from_json(path),
        HeadScores.from_json(str(path)),
    ):
        assert back == hs
        assert torch.equal(back.scores, hs.scores)
        assert back.scores.dtype == torch.float32
        for f in (
            "model",
            "method",
            "data_hash",
            "seed",
            "threshold",
            "version",
            "created",
            "meta",
        ):
            assert getattr(back, f) == getattr(hs, f), f


def test_json_round_trip_float64_random_and_unscored():
    scores = torch.randn(5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    scores[2, 3] = float("nan")
    hs = HeadScores(scores, model="m", method="x", meta={"pair": (1, 2)})
    back = HeadScores.from_json(hs.to_json(indent=None))
    assert back == hs and back.scores.dtype == torch.float64
    assert torch.equal(back.mask, hs.mask) and not back.mask[2, 3]
    assert back.meta == {"pair": [1, 2]}  # meta is stored as it reads back from JSON
    f32 = HeadScores(torch.rand(8, 8), model="m", method="x")
    assert torch.equal(HeadScores.from_json(f32.to_json()).scores, f32.scores)


def test_json_is_valid_and_unscored_is_null():
    hs = HeadScores(torch.tensor([[float("nan"), 0.5]]), model="m", method="x")
    data = json.loads(hs.to_json())
    assert data["scores"] == [[None, 0.5]] and data["dtype"] == "float32"


@pytest.mark.parametrize("missing", ["model", "scores", "created", "meta", "dtype"])
def test_from_json_missing_field_names_it(hs, missing):
    data = json.loads(hs.to_json())
    del data[missing]
    with pytest.raises(ValueError, match=f"missing field '{missing}'"):
        HeadScores.from_json(json.dumps(data))


def test_from_json_bad_inputs(hs, tmp_path):
    data = json.loads(hs.to_json())
    data["scores"] = [[1.0, 2.0], [3.0]]
    with pytest.raises(ValueError, match="rectangular"):
        HeadScores.from_json(json.dumps(data))
    with pytest.raises(ValueError, match="neither JSON text"):
        HeadScores.from_json(str(tmp_path / "nope.json"))
    with pytest.raises(ValueError, match="invalid JSON"):
        HeadScores.from_json("{not json")


@pytest.mark.parametrize(
    "scores, err, pattern",
    [
        (torch.zeros(3), ValueError, r"shape \[n_layers, n_heads\].*got shape \[3\]"),
        (torch.zeros(2, 3, 4), ValueError, r"got shape \[2, 3, 4\]"),
        (torch.zeros(0, 3), ValueError, "both >= 1"),
        (torch.zeros(2, 2, dtype=torch.bool), TypeError, "real numbers"),
        ("scores", TypeError, "torch.Tensor"),
    ],
)
def test_constructor_rejects_bad_scores(scores, err, pattern):
    with pytest.raises(err, match=pattern):
        HeadScores(scores, model="m", method="x")


def test_constructor_rejects_bad_provenance():
    z = torch.zeros(1, 1)
    with pytest.raises(TypeError, match="model must be a non-empty str"):
        HeadScores(z, model="", method="x")
    with pytest.raises(TypeError, match="JSON-serialisable"):
        HeadScores(z, model="m", method="x", meta={"t": torch.zeros(1)})
    with pytest.raises(TypeError, match="seed must be an int"):
        HeadScores(z, model="m", method="x", seed="7")
    with pytest.raises(ValueError, match="ISO-8601"):
        HeadScores(z, model="m", method="x", created="yesterday")
    with pytest.raises(ValueError, match="shape of scores"):
        HeadScores(z, model="m", method="x", mask=torch.ones(2, 2, dtype=torch.bool))


def test_conversions_and_frozen():
    hs = HeadScores(torch.ones(2, 2, dtype=torch.int64), model="m", method="x", threshold=1)
    assert hs.scores.dtype == torch.float32 and hs.threshold == 1.0
    assert (
        HeadScores(torch.ones(1, 1, dtype=torch.bfloat16), model="m", method="x").scores.dtype
        == torch.float32
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        hs.model = "other"
    assert dataclasses.replace(hs, threshold=0.5).threshold == 0.5


def test_version_and_created_defaults():
    hs = HeadScores(torch.zeros(1, 1), model="m", method="x")
    assert isinstance(hs.version, str) and hs.version
    assert "T" in hs.created


def test_repr_is_short_and_names_top_heads(hs):
    text = repr(hs)
    assert "toy-2l" in text and "retrieval" in text and "2x3" in text
    assert "L0H2=0.750" in text and "L1H0=0.500" in text and "L0H1=0.250" in text
    assert len(text) < 200


def test_plot_returns_heatmap_with_head_names(hs):
    fig = hs.plot()
    assert fig.data[0].type == "heatmap"
    assert "L0H2" in fig.data[0].text[0][2] and "0.750" in fig.data[0].text[0][2]
    assert "retrieval" in fig.layout.title.text


def test_data_hash_stable_and_sensitive():
    h = data_hash(["The cat sat", "on the mat"])
    assert len(h) == 16 and int(h, 16) >= 0
    assert h == data_hash(["The cat sat", "on the mat"]) == "2a6df96eae8e3e30"  # fixed across runs
    assert h != data_hash(["on the mat", "The cat sat"])
    assert data_hash({"a": 1, "b": 2}) == data_hash({"b": 2, "a": 1})
    t = torch.arange(6).reshape(2, 3)
    assert data_hash([t]) == data_hash([t.clone()])
    assert data_hash([t]) != data_hash([t.reshape(3, 2)])
    assert data_hash([t]) != data_hash([t.float()])
    assert data_hash(torch.ones(2, dtype=torch.bfloat16))  # any dtype
    with pytest.raises(TypeError, match="str dict keys"):
        data_hash({1: "a"})
    with pytest.raises(TypeError, match="data_hash accepts"):
        data_hash(object())


def test_draw_spread_reports_the_typical_random_draw_beside_the_outlier():
    from interp.report import draw_spread

    s = draw_spread([0.0, 1.5, 78.8, 3.0])
    assert s["median_abs_move_points"] == 2.25
    assert s["share_of_draws_within_5_points"] == 0.75
    assert draw_spread([7.0], limit=10)["share_of_draws_within_10_points"] == 1.0
    assert draw_spread([])["median_abs_move_points"] == 0.0
