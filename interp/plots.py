"""Plotly figures for interpretability results.

Every function here *returns* a `plotly.graph_objects.Figure`; nothing is shown, and no
global template or style is touched, so callers stay in control (``fig.show()`` in a
notebook, `save_html` for a report, ``fig.update_layout(...)`` to restyle).

- `head_heatmap`: one cell per attention head, ``scores[layer, head]``. Layer 0 is the
  **top** row, so the picture reads like the printed tensor and like
  ``HeadScores.to_frame``. Hovering a cell shows ``L{layer}H{head}`` and the score.
  ``highlight`` outlines named groups of heads (e.g. memory vs context heads).
- `attention_pattern`: query x key attention weights for chosen heads, axes labelled with
  the tokens, a dropdown to switch heads.
- `line_curves`: several named y-series over a shared x (alpha sweeps, trajectories).
- `heatmap_grid`: a labelled grid of values (needle-in-a-haystack accuracy by depth and
  context length).
- `save_html`: a standalone HTML page that never loads plotly.js from a CDN.

>>> import torch
>>> fig = head_heatmap(torch.tensor([[0.1, -0.4], [0.9, 0.0]]), title="demo")
>>> fig.data[0].text[1][0]
'L1H0<br>score: 0.900'
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import plotly.graph_objects as go

from .errors import ArgumentTypeError, InvalidArgumentError
from .plot_inputs import (  # noqa: F401  (re-exported: split out to keep files small)
    _HEAD_NAME,
    _check_in_grid,
    _check_tokens,
    _layer_head,
    _to_numpy,
    _unique_labels,
)

__all__ = ["head_heatmap", "attention_pattern", "line_curves", "heatmap_grid", "save_html"]

# Outline colours/symbols for `highlight` groups: dark and saturated so they stay visible
# on both RdBu and Viridis.
_GROUP_COLORS = (
    "#000000",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#e377c2",
    "#17becf",
    "#8c564b",
)
_GROUP_SYMBOLS = (
    "square-open",
    "circle-open",
    "diamond-open",
    "x-thin-open",
    "cross-thin-open",
    "star-open",
)


def head_heatmap(
    scores: Any,
    title: Optional[str] = None,
    *,
    colorscale: Optional[str] = None,
    zmid: Optional[float] = None,
    zmin: Optional[float] = None,
    zmax: Optional[float] = None,
    hover: Any = None,
    highlight: Optional[Mapping[str, Sequence[Any]]] = None,
    value_name: str = "score",
) -> go.Figure:
    """Heatmap of one value per head: x = head, y = layer, layer 0 at the top.

    Args:
        scores: ``[n_layers, n_heads]`` tensor, array or nested lists. NaN cells (heads not
            scored) are left blank and hover as "not scored".
        title: figure title.
        colorscale: default "RdBu" centred at 0 (``zmid=0``) when the scores have both
            signs, else "Viridis".
        zmid, zmin, zmax: colour-axis centre and limits, passed to plotly.
        hover: optional ``[n_layers, n_heads]`` grid of extra strings appended to each
            cell's hover text (e.g. per-test details).
        highlight: ``{"group name": [heads]}``; each group's heads are outlined with its own
            colour and marker, with a legend entry. Heads may be ``(layer, head)``,
            ``"L1H2"`` or `interp.heads.Head`.
        value_name: label for the value in the hover text and colour bar.

    >>> fig = head_heatmap([[0.2, 0.7], [0.1, 0.4]], title="retrieval",
    ...                    highlight={"top": [(0, 1)]})
    >>> [trace.type for trace in fig.data], fig.data[1].name
    (['heatmap', 'scatter'], 'top')
    """
    z = _to_numpy(scores, "scores", 2, "[n_layers, n_heads]")
    n_layers, n_heads = z.shape
    finite = z[np.isfinite(z)]
    diverging = finite.size > 0 and finite.min() < 0 < finite.max()
    if colorscale is None:
        colorscale = "RdBu" if diverging else "Viridis"
    if zmid is None and diverging and zmin is None and zmax is None:
        zmid = 0.0
    text = [
        [
            f"L{l}H{h}<br>{value_name}: "
            + ("not scored" if np.isnan(z[l, h]) else f"{z[l, h]:.3f}")
            for h in range(n_heads)
        ]
        for l in range(n_layers)
    ]
    if hover is not None:
        extra = np.asarray(hover, dtype=object)
        if extra.shape != z.shape:
            raise InvalidArgumentError(
                f"hover must be a grid of strings with the shape of scores {list(z.shape)}, "
                f"got shape {list(extra.shape)}"
            )
        text = [[f"{text[l][h]}<br>{extra[l, h]}" for h in range(n_heads)] for l in range(n_layers)]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(n_heads)),
            y=list(range(n_layers)),
            text=text,
            hovertemplate="%{text}<extra></extra>",
            colorscale=colorscale,
            zmid=zmid,
            zmin=zmin,
            zmax=zmax,
            colorbar={"title": {"text": value_name}},
            name=value_name,
            showlegend=False,
        )
    )
    for i, (group, members) in enumerate((highlight or {}).items()):
        fig.add_trace(_highlight_trace(i, str(group), members, n_layers, n_heads))
    fig.update_layout(
        title={"text": title} if title else None,
        xaxis={"title": {"text": "head"}, "constrain": "domain", "dtick": 1},
        yaxis={"title": {"text": "layer"}, "autorange": "reversed", "dtick": 1},
        plot_bgcolor="rgba(0,0,0,0)",
        showlegend=bool(highlight),
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    )
    return fig


def _highlight_trace(
    i: int, group: str, members: Sequence[Any], n_layers: int, n_heads: int
) -> go.Scatter:
    if isinstance(members, (str, bytes)) or not isinstance(members, (Sequence, set, frozenset)):
        raise ArgumentTypeError(
            f"highlight[{group!r}] must be a list of heads like [(1, 2), 'L3H0'], "
            f"got {type(members).__name__}"
        )
    pairs = [_layer_head(m) for m in members]
    for layer, head in pairs:
        _check_in_grid(layer, head, n_layers, n_heads, f"highlight[{group!r}]")
    color = _GROUP_COLORS[i % len(_GROUP_COLORS)]
    return go.Scatter(
        x=[h for _, h in pairs],
        y=[l for l, _ in pairs],
        mode="markers",
        name=group,
        marker={
            "symbol": _GROUP_SYMBOLS[i % len(_GROUP_SYMBOLS)],
            "size": 14 + 4 * (i // len(_GROUP_SYMBOLS)),
            "color": color,
            "line": {"width": 2, "color": color},
        },
        text=[f"L{l}H{h}" for l, h in pairs],
        hovertemplate=f"%{{text}}<br>{group}<extra></extra>",
    )


# --------------------------------------------------------------------------- attention


def attention_pattern(
    pattern: Any,
    tokens: Sequence[str],
    heads: Optional[Sequence[Any]] = None,
    title: Optional[str] = None,
    *,
    colorscale: str = "Blues",
) -> go.Figure:
    """Attention weights, query (rows, top to bottom) x key (columns), for one or more heads.

    Args:
        pattern: one of
            - ``[n_selected, q_pos, k_pos]`` tensor with `heads` naming each slice;
            - ``[q_pos, k_pos]`` tensor for a single head (`heads` has one entry);
            - ``[n_layers, n_heads, q_pos, k_pos]`` (a whole model's pattern) with `heads`
              choosing which to show;
            - ``{"L1H2": [q_pos, k_pos] tensor, ...}``; `heads` then optionally picks and
              orders keys.
        tokens: the ``k_pos`` token strings. With ``q_pos < k_pos`` the queries are taken
            to be the last ``q_pos`` tokens. Repeated tokens get their position appended,
            ``"the (3)"``, so plotly keeps every position.
        heads: ``(layer, head)``, ``"L1H2"`` or `interp.heads.Head` entries.
        title: figure title; the shown head's name is added to it.

    One heatmap per head; with several heads a dropdown switches between them. Hover
    shows the query token, key token and weight.

    >>> import torch
    >>> fig = attention_pattern(torch.eye(3), ["a", "b", "a"], heads=["L1H2"])
    >>> list(fig.data[0].x)
    ['a (0)', 'b', 'a (2)']
    """
    tokens = _check_tokens(tokens)
    names, grids = _select_patterns(pattern, heads)
    k_pos = len(tokens)
    for name, grid in zip(names, grids):
        q, k = grid.shape
        if k != k_pos or q > k:
            raise InvalidArgumentError(
                f"pattern for {name} has shape [q_pos={q}, k_pos={k}] but {k_pos} tokens were "
                f"given; need k_pos == len(tokens) and q_pos <= k_pos"
            )
    labels = _unique_labels(tokens)
    fig = go.Figure()
    for i, (name, grid) in enumerate(zip(names, grids)):
        fig.add_trace(
            go.Heatmap(
                z=grid,
                x=labels,
                y=labels[k_pos - grid.shape[0] :],
                colorscale=colorscale,
                zmin=0.0,
                name=name,
                visible=i == 0,
                colorbar={"title": {"text": "weight"}},
                hovertemplate=(
                    f"query: %{{y}}<br>key: %{{x}}<br>weight: %{{z:.3f}}<extra>{name}</extra>"
                ),
            )
        )
    titles = [f"{title}: {n}" if title else f"attention {n}" for n in names]
    fig.update_layout(
        title={"text": titles[0]},
        xaxis={"title": {"text": "key"}, "type": "category", "tickangle": -45},
        yaxis={"title": {"text": "query"}, "type": "category", "autorange": "reversed"},
    )
    if len(names) > 1:
        buttons = [
            {
                "label": n,
                "method": "update",
                "args": [
                    {"visible": [j == i for j in range(len(names))]},
                    {"title": {"text": titles[i]}},
                ],
            }
            for i, n in enumerate(names)
        ]
        fig.update_layout(
            updatemenus=[
                {
                    "buttons": buttons,
                    "direction": "down",
                    "x": 1.0,
                    "xanchor": "right",
                    "y": 1.12,
                    "yanchor": "top",
                }
            ]
        )
    return fig


def _select_patterns(
    pattern: Any, heads: Optional[Sequence[Any]]
) -> tuple[list[str], list[np.ndarray]]:
    """Head names and their ``[q, k]`` grids from any accepted `pattern` form."""
    if heads is not None and (isinstance(heads, str) or not isinstance(heads, Sequence)):
        heads = [heads]
    if isinstance(pattern, Mapping):
        by_name = {}
        for key, grid in pattern.items():
            layer, head = _layer_head(key)
            by_name[(layer, head)] = _to_numpy(grid, f"pattern[{key!r}]", 2, "[q_pos, k_pos]")
        wanted = list(by_name) if heads is None else [_layer_head(h) for h in heads]
        missing = [f"L{l}H{h}" for l, h in wanted if (l, h) not in by_name]
        if missing:
            have = ", ".join(f"L{l}H{h}" for l, h in by_name)
            raise InvalidArgumentError(
                f"heads {missing} are not in the pattern dict (it has {have})"
            )
        if not wanted:
            raise InvalidArgumentError(
                "pattern dict is empty; give at least one head's [q_pos, k_pos] pattern"
            )
        return [f"L{l}H{h}" for l, h in wanted], [by_name[w] for w in wanted]
    if heads is None or len(heads) == 0:
        raise InvalidArgumentError(
            "attention_pattern needs `heads` to name the patterns, e.g. heads=[(1, 2)] or "
            "['L1H2']; or pass a dict {'L1H2': pattern}"
        )
    pairs = [_layer_head(h) for h in heads]
    names = [f"L{l}H{h}" for l, h in pairs]
    arr = _to_numpy(pattern, "pattern", None, "[n_selected, q_pos, k_pos]")
    if arr.ndim == 2 and len(pairs) == 1:
        return names, [arr]
    if arr.ndim == 3 and arr.shape[0] == len(pairs):
        return names, [arr[i] for i in range(len(pairs))]
    if arr.ndim == 4:
        for layer, head in pairs:
            _check_in_grid(layer, head, arr.shape[0], arr.shape[1], "attention_pattern")
        return names, [arr[l, h] for l, h in pairs]
    raise InvalidArgumentError(
        f"pattern of shape {list(arr.shape)} does not fit {len(pairs)} head(s) {names}; expected "
        f"[{len(pairs)}, q_pos, k_pos], [q_pos, k_pos] for one head, "
        f"or [n_layers, n_heads, q_pos, k_pos]"
    )


# --------------------------------------------------------------------------- curves & grids


def line_curves(
    x: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    title: Optional[str] = None,
    x_title: Optional[str] = None,
    y_title: Optional[str] = None,
    *,
    markers: bool = True,
) -> go.Figure:
    """One line per named curve over a shared `x` (alpha sweeps, layer trajectories).

    >>> fig = line_curves([0, 0.5, 1], {"memory": [0.9, 0.6, 0.2], "context": [0.1, 0.4, 0.8]},
    ...                   title="alpha sweep", x_title="alpha", y_title="accuracy")
    >>> [t.name for t in fig.data]
    ['memory', 'context']
    """
    xs = _to_numpy(x, "x", 1, "[n_points]")
    if not isinstance(curves, Mapping) or not curves:
        raise ArgumentTypeError(
            f"curves must be a non-empty dict {{name: [y values]}}, "
            f"got {type(curves).__name__} {curves!r:.60}"
        )
    fig = go.Figure()
    for name, ys in curves.items():
        y = _to_numpy(ys, f"curves[{name!r}]", 1, "[n_points]")
        if len(y) != len(xs):
            raise InvalidArgumentError(
                f"curves[{name!r}] has {len(y)} values but x has {len(xs)}; give one y per x"
            )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=y,
                name=str(name),
                mode="lines+markers" if markers else "lines",
                hovertemplate=f"{name}<br>x: %{{x}}<br>y: %{{y:.3f}}<extra></extra>",
            )
        )
    fig.update_layout(
        title={"text": title} if title else None,
        xaxis={"title": {"text": x_title}} if x_title else {},
        yaxis={"title": {"text": y_title}} if y_title else {},
    )
    return fig


def heatmap_grid(
    z: Any,
    row_labels: Sequence[Any],
    col_labels: Sequence[Any],
    title: Optional[str] = None,
    zmin: Optional[float] = None,
    zmax: Optional[float] = None,
    *,
    row_title: Optional[str] = None,
    col_title: Optional[str] = None,
    colorscale: str = "Viridis",
    show_values: bool = True,
    value_format: str = ".2f",
) -> go.Figure:
    """A labelled ``[rows, cols]`` grid, row 0 at the top, values written in the cells.

    Labels are treated as categories, so numeric labels (context lengths, depths) keep
    their given order and spacing.

    >>> fig = heatmap_grid([[1.0, 0.5], [0.75, 0.0]], ["0%", "50%"], [1024, 2048],
    ...                    title="NIAH accuracy", zmin=0, zmax=1)
    >>> list(fig.data[0].x)
    ['1024', '2048']
    """
    grid = _to_numpy(z, "z", 2, "[rows, cols]")
    rows = [str(r) for r in row_labels]
    cols = [str(c) for c in col_labels]
    if len(rows) != grid.shape[0] or len(cols) != grid.shape[1]:
        raise InvalidArgumentError(
            f"z has shape {list(grid.shape)} but {len(rows)} row labels and {len(cols)} column "
            f"labels were given; need one label per row and per column"
        )
    for kind, labels in (("row", rows), ("column", cols)):
        dupes = sorted(k for k, n in Counter(labels).items() if n > 1)
        if dupes:
            raise InvalidArgumentError(
                f"{kind} labels must be unique (plotly merges equal labels), got duplicates {dupes}"
            )
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            x=cols,
            y=rows,
            zmin=zmin,
            zmax=zmax,
            colorscale=colorscale,
            texttemplate=f"%{{z:{value_format}}}" if show_values else None,
            hovertemplate="row: %{y}<br>column: %{x}<br>value: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": title} if title else None,
        xaxis={"type": "category", "title": {"text": col_title} if col_title else None},
        yaxis={
            "type": "category",
            "autorange": "reversed",
            "title": {"text": row_title} if row_title else None,
        },
    )
    return fig


# --------------------------------------------------------------------------- save_html


def save_html(fig: go.Figure, path: Union[str, os.PathLike], offline: bool = True) -> Path:
    """Write `fig` as a standalone HTML page and return its path. No CDN is ever used.

    - ``offline=True`` (default): the page loads ``plotly.min.js`` from its own folder;
      the library is written there once (kept if a file of the same size exists), so
      many pages in one folder share it. Copy the folder, not just the page.
    - ``offline=False``: plotly.js is embedded in the page itself (one ~4.5 MB file).

    >>> import tempfile, pathlib
    >>> out = save_html(
    ...     line_curves([0, 1], {"y": [0, 1]}), pathlib.Path(tempfile.mkdtemp()) / "fig.html"
    ... )
    >>> sorted(p.name for p in out.parent.iterdir())
    ['fig.html', 'plotly.min.js']
    """
    if not isinstance(fig, go.Figure):
        raise ArgumentTypeError(
            f"save_html needs a plotly go.Figure, got {type(fig).__name__}; "
            f"build one with interp.plots"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"save_html path must be a str or Path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise InvalidArgumentError(
            f"save_html writes HTML; path should end in .html, got {str(path)!r}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if offline:
        _write_plotlyjs(path.parent / "plotly.min.js")
        html = fig.to_html(include_plotlyjs="directory", full_html=True)
    else:
        html = fig.to_html(include_plotlyjs=True, full_html=True)
    path.write_text(html, encoding="utf-8")
    return path


def _write_plotlyjs(bundle: Path) -> None:
    """Write plotly.js beside the page unless a file of the same size is already there."""
    from plotly.offline import get_plotlyjs  # noqa: PLC0415 - reads a 4.5 MB file, load on use

    js = get_plotlyjs().encode("utf-8")
    if bundle.is_file() and bundle.stat().st_size == len(js):
        return
    bundle.write_bytes(js)
