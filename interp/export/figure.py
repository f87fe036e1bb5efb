"""The interactive plotly figure of a circuit: the same layout as the SVG, one legend entry
per role and edge kind (click one to hide that group)."""

from __future__ import annotations

import html
from typing import Any, Optional

import plotly.graph_objects as go

from ..circuit import Circuit
from .layout import (
    EDGE_COLORS,
    LOGITS,
    bend,
    fmt_number,
    grid_size,
    grid_xy,
    has_mlp,
    node_summary,
    role_colors,
    uses_logits,
)


def circuit_figure(
    circuit: Circuit,
    *,
    n_layers: Optional[int] = None,
    n_heads: Optional[int] = None,
    title: Optional[str] = None,
):
    """Interactive plotly figure: heads across, layers down, one legend entry per role and edge
    kind.

    Hover a node for its role and score, an edge's midpoint for its kind and weight; click a
    legend entry to hide a role group.
    """
    n_layers, n_heads = grid_size(circuit, n_layers, n_heads)
    fig = go.Figure()
    for kind in dict.fromkeys(e.kind for e in circuit.edges):
        fig.add_traces(_edge_traces(circuit, kind, n_layers, n_heads))
    for role, color in role_colors(circuit).items():
        nodes = [n for n in circuit.nodes if n.role == role]
        xy = [grid_xy(n.name, n_layers, n_heads) for n in nodes]
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in xy],
                y=[p[1] for p in xy],
                mode="markers+text",
                name=_plotly_text(role or "(no role)"),
                text=[n.name for n in nodes],
                textposition="bottom center",
                marker={
                    "size": 22,
                    "color": color,
                    "line": {"width": 1, "color": "#222"},
                    "symbol": ["circle" if n.head is not None else "square" for n in nodes],
                },
                hovertext=["<br>".join(_plotly_text(p) for p in node_summary(n)) for n in nodes],
                hoverinfo="text",
                legendgroup=f"role:{role}",
            )
        )
    if uses_logits(circuit):
        x, y = grid_xy(LOGITS, n_layers, n_heads)
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[y],
                mode="markers+text",
                text=["logits"],
                name="logits",
                marker={
                    "size": 28,
                    "symbol": "square",
                    "color": "white",
                    "line": {"width": 1, "color": "#222"},
                },
                textposition="middle center",
                hoverinfo="text",
                hovertext=["logits"],
            )
        )
    _figure_layout(fig, circuit, n_layers, n_heads, title)
    return fig


def _plotly_text(text: Any) -> str:
    """Text for plotly's pseudo-HTML labels: <, > and & as entities so no tag is interpreted."""
    return html.escape(str(text), quote=False)


def _edge_traces(circuit: Circuit, kind: str, n_layers: int, n_heads: int) -> list:
    xs, ys, mid_x, mid_y, tips = [], [], [], [], []
    for edge in (e for e in circuit.edges if e.kind == kind):
        (x1, y1), (x2, y2) = (grid_xy(n, n_layers, n_heads) for n in (edge.source, edge.target))
        mx, my = bend(x1, y1, x2, y2, kind, 0.12)
        xs += [x1, mx, x2, None]
        ys += [y1, my, y2, None]
        mid_x.append(mx)
        mid_y.append(my)
        tips.append(
            f"{edge.source} \u2192 {edge.target} ({kind})"
            + (f"<br>weight {fmt_number(edge.weight)}" if edge.weight is not None else "")
        )
    line = go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        name=f"edge: {kind}",
        hoverinfo="skip",
        line={"color": EDGE_COLORS[kind], "width": 2},
        legendgroup=f"edge:{kind}",
    )
    mids = go.Scatter(
        x=mid_x,
        y=mid_y,
        mode="markers",
        showlegend=False,
        hoverinfo="text",
        hovertext=tips,
        marker={"size": 7, "color": EDGE_COLORS[kind], "symbol": "diamond"},
        legendgroup=f"edge:{kind}",
        name=f"edge: {kind}",
    )
    return [line, mids]


def _figure_layout(
    fig, circuit: Circuit, n_layers: int, n_heads: int, title: Optional[str]
) -> None:
    x_ticks = list(range(n_heads)) + ([n_heads] if has_mlp(circuit) else [])
    y_ticks = list(range(n_layers)) + ([n_layers] if uses_logits(circuit) else [])
    fig.update_layout(
        title={
            "text": _plotly_text(
                title if title is not None else f"{circuit.model}: {circuit.method}"
            )
        },
        xaxis={
            "title": {"text": "head"},
            "tickvals": x_ticks,
            "range": [-0.7, max(x_ticks) + 0.7],
            "ticktext": [f"H{h}" for h in range(n_heads)] + (["MLP"] if has_mlp(circuit) else []),
            "zeroline": False,
        },
        yaxis={
            "title": {"text": "layer"},
            "tickvals": y_ticks,
            "autorange": "reversed",
            "ticktext": [f"L{l}" for l in range(n_layers)]
            + (["logits"] if uses_logits(circuit) else []),
            "zeroline": False,
        },
        plot_bgcolor="white",
        legend={"title": {"text": "roles / edges"}},
        height=max(420, 220 + 70 * len(y_ticks)),
    )
    if not circuit.nodes:
        fig.add_annotation(text="empty circuit (no nodes)", showarrow=False, x=0, y=0)
