"""Tests for interp.plots: figures are built (never shown) with the promised data and hover text."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from interp.plots import attention_pattern, head_heatmap, heatmap_grid, line_curves, save_html


def test_head_heatmap_hover_has_head_name_and_score():
    scores = torch.zeros(3, 4)
    scores[1, 2] = 0.87654
    fig = head_heatmap(scores, title="retrieval")
    heat = fig.data[0]
    assert isinstance(fig, go.Figure) and heat.type == "heatmap"
    assert "L1H2" in heat.text[1][2] and "0.877" in heat.text[1][2]
    assert "%{text}" in heat.hovertemplate
    assert list(heat.x) == [0, 1, 2, 3] and list(heat.y) == [0, 1, 2]
    assert fig.layout.yaxis.autorange == "reversed"  # layer 0 at the top
    assert fig.layout.title.text == "retrieval"


def test_head_heatmap_colorscale_depends_on_signs():
    mixed = head_heatmap(np.array([[-1.0, 2.0]]))
    assert mixed.data[0].zmid == 0
    positive = head_heatmap(np.array([[0.1, 2.0]]))
    assert positive.data[0].zmid is None
    chosen = head_heatmap(np.array([[1.0]]), colorscale="Blues").data[0].colorscale
    assert chosen == go.Heatmap(colorscale="Blues").colorscale
    assert mixed.data[0].colorscale == go.Heatmap(colorscale="RdBu").colorscale
    assert positive.data[0].colorscale == go.Heatmap(colorscale="Viridis").colorscale


def test_head_heatmap_nan_is_not_scored_and_extra_hover():
    fig = head_heatmap([[float("nan"), 0.5]], hover=[["a", "b"]])
    assert fig.data[0].text[0][0] == "L0H0<br>score: not scored<br>a"
    assert fig.data[0].text[0][1].endswith("0.500<br>b")


def test_head_heatmap_highlight_groups_with_legend():
    fig = head_heatmap(
        torch.rand(4, 4), highlight={"memory": [(0, 1), "L2H3"], "context": [(3, 0)]}
    )
    groups = [t for t in fig.data if t.type == "scatter"]
    assert [g.name for g in groups] == ["memory", "context"]
    assert list(groups[0].x) == [1, 3] and list(groups[0].y) == [0, 2]
    assert groups[0].marker.color != groups[1].marker.color
    assert fig.layout.showlegend is True
    with pytest.raises(ValueError, match=r"L9H0 is outside the grid; layers are 0\.\.3"):
        head_heatmap(torch.rand(4, 4), highlight={"bad": [(9, 0)]})


@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(2, 2, 2), np.zeros((0, 3))])
def test_head_heatmap_rejects_wrong_shapes(bad):
    with pytest.raises(ValueError, match=r"\[n_layers, n_heads\].*got shape"):
        head_heatmap(bad)


def test_head_heatmap_hover_shape_checked():
    with pytest.raises(ValueError, match="hover must be a grid"):
        head_heatmap(torch.zeros(2, 2), hover=[["x"]])


def test_attention_pattern_duplicate_tokens_keep_all_positions():
    tokens = ["the", "cat", "the", "dog", "the"]
    pattern = torch.softmax(torch.randn(2, 5, 5), dim=-1)
    fig = attention_pattern(pattern, tokens, heads=[(1, 2), "L0H3"], title="induction")
    first = fig.data[0]
    assert len(first.x) == 5 and len(set(first.x)) == 5
    assert list(first.x) == ["the (0)", "cat", "the (2)", "dog", "the (4)"]
    assert list(first.y) == list(first.x)
    assert fig.layout.xaxis.type == "category" and fig.layout.yaxis.type == "category"
    assert [t.name for t in fig.data] == ["L1H2", "L0H3"]
    assert [t.visible for t in fig.data] == [True, False]
    assert "query: %{y}" in first.hovertemplate and "key: %{x}" in first.hovertemplate
    assert "weight: %{z:.3f}" in first.hovertemplate
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["L1H2", "L0H3"]
    np.testing.assert_allclose(np.asarray(fig.data[1].z), pattern[1].numpy(), rtol=1e-6)


def test_attention_pattern_accepts_dict_and_full_model_and_suffix_queries():
    pattern = {"L1H2": torch.eye(3), "L0H0": torch.ones(3, 3) / 3}
    fig = attention_pattern(pattern, ["1", "2", "3"])
    assert [t.name for t in fig.data] == ["L1H2", "L0H0"]
    assert fig.layout.xaxis.type == "category"  # numeric-looking tokens stay labels
    only = attention_pattern(pattern, ["a", "b", "c"], heads=["L0H0"])
    assert [t.name for t in only.data] == ["L0H0"]
    full = torch.rand(2, 4, 3, 3)
    fig = attention_pattern(full, ["a", "b", "c"], heads=[(1, 3)])
    np.testing.assert_allclose(np.asarray(fig.data[0].z), full[1, 3].numpy(), rtol=1e-6)
    suffix = attention_pattern(torch.rand(1, 2, 4), ["a", "b", "c", "d"], heads=[(0, 0)])
    assert list(suffix.data[0].y) == ["c", "d"]


def test_attention_pattern_bad_inputs():
    with pytest.raises(ValueError, match=r"k_pos == len\(tokens\)"):
        attention_pattern(torch.rand(1, 3, 3), ["a", "b"], heads=[(0, 0)])
    with pytest.raises(ValueError, match="needs `heads`"):
        attention_pattern(torch.rand(1, 3, 3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="does not fit 2 head"):
        attention_pattern(torch.rand(3, 3, 3), ["a", "b", "c"], heads=[(0, 0), (0, 1)])
    with pytest.raises(ValueError, match="not in the pattern dict"):
        attention_pattern({"L0H0": torch.eye(2)}, ["a", "b"], heads=["L5H5"])
    with pytest.raises(TypeError, match="list of token strings"):
        attention_pattern(torch.eye(2), "ab", heads=[(0, 0)])


def test_line_curves_and_validation():
    fig = line_curves(
        [0, 0.5, 1], {"memory": [1, 0.5, 0], "context": [0, 0.5, 1]}, "sweep", "alpha", "acc"
    )
    assert [t.name for t in fig.data] == ["memory", "context"]
    assert list(fig.data[1].y) == [0, 0.5, 1]
    assert fig.layout.xaxis.title.text == "alpha" and fig.layout.yaxis.title.text == "acc"
    with pytest.raises(ValueError, match="has 2 values but x has 3"):
        line_curves([0, 1, 2], {"short": [1, 2]})


def test_heatmap_grid_labels_and_values():
    z = [[1.0, 0.5, 0.0], [0.25, 0.75, 1.0]]
    fig = heatmap_grid(z, ["0%", "100%"], [1024, 2048, 4096], "NIAH", zmin=0, zmax=1)
    heat = fig.data[0]
    assert list(heat.x) == ["1024", "2048", "4096"] and list(heat.y) == ["0%", "100%"]
    assert heat.zmin == 0 and heat.zmax == 1 and heat.texttemplate == "%{z:.2f}"
    assert fig.layout.xaxis.type == "category"
    with pytest.raises(ValueError, match="2 row labels and 2 column labels"):
        heatmap_grid(z, ["a", "b"], ["x", "y"])
    with pytest.raises(ValueError, match="unique"):
        heatmap_grid(z, ["a", "a"], ["x", "y", "z"])


def test_save_html_offline_writes_plotlyjs_beside_page(tmp_path):
    fig = head_heatmap(torch.rand(2, 2))
    page = save_html(fig, tmp_path / "out" / "heads.html")
    bundle = tmp_path / "out" / "plotly.min.js"
    assert page == tmp_path / "out" / "heads.html" and page.is_file() and bundle.is_file()
    html = page.read_text()
    assert "cdn.plot.ly" not in html and "https://" not in html
    assert 'src="plotly.min.js"' in html
    assert bundle.stat().st_size > 1_000_000
    mtime = bundle.stat().st_mtime_ns
    save_html(fig, tmp_path / "out" / "second.html")  # same folder: bundle reused
    assert bundle.stat().st_mtime_ns == mtime


def test_save_html_embedded_and_bad_inputs(tmp_path):
    page = save_html(line_curves([0, 1], {"y": [0, 1]}), tmp_path / "full.html", offline=False)
    html = page.read_text()
    assert len(html) > 1_000_000  # plotly.js embedded
    assert not re.search(r"<script[^>]*src=", html)  # nothing loaded from elsewhere
    assert not (tmp_path / "plotly.min.js").exists()
    with pytest.raises(TypeError, match="go.Figure"):
        save_html({"data": []}, tmp_path / "x.html")
    with pytest.raises(ValueError, match=r"\.html"):
        save_html(go.Figure(), tmp_path / "x.png")
