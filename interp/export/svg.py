"""A standalone SVG diagram of a circuit, written here without any external program.

Every text taken from the circuit is XML-escaped; hovering a node shows its role and score."""

from __future__ import annotations

import html
import math
import os
from typing import Any, Optional, Union

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
    write_text,
)


def _x(text: Any) -> str:
    """Escape text for SVG/XML content and attribute values (<, >, &, both quotes)."""
    return html.escape(str(text), quote=True)


_SVG_CELL, _SVG_LEFT, _SVG_TOP, _SVG_R = 56, 70, 70, 15


def to_svg(
    circuit: Circuit,
    path: Union[str, os.PathLike, None] = None,
    *,
    n_layers: Optional[int] = None,
    n_heads: Optional[int] = None,
    title: Optional[str] = None,
) -> str:
    """A standalone SVG diagram (no external program): layers down, heads across, a legend.

    Every text from the circuit (title, roles, model, method) is XML-escaped. Hover a node
    for its role and score. Pass the model's `n_layers` / `n_heads` to draw the full grid.

    >>> svg = to_svg(Circuit("m", "x").add_node("L1H2", role="a<b"))
    >>> "a&lt;b" in svg and "a<b" not in svg
    True
    """
    n_layers, n_heads = grid_size(circuit, n_layers, n_heads)
    columns = n_heads + (1 if has_mlp(circuit) else 0)
    rows = n_layers + (1 if uses_logits(circuit) else 0)
    colors = role_colors(circuit)
    legend = _svg_legend(circuit, colors, y0=_SVG_TOP + rows * _SVG_CELL + 10)
    width = max(_SVG_LEFT + columns * _SVG_CELL + 20, 420)
    height = _SVG_TOP + rows * _SVG_CELL + 30 + 18 * legend[1]
    heading = title if title is not None else f"{circuit.model}: {circuit.method}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" '
        'font-size="12">',
        f"<title>{_x(heading)}</title>",
        _svg_defs(),
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{_x(heading)}</text>',
        *_svg_axes(n_layers, n_heads, has_mlp(circuit), uses_logits(circuit)),
        *_svg_edges(circuit, n_layers, n_heads),
        *_svg_nodes(circuit, colors, n_layers, n_heads),
        legend[0],
    ]
    if not circuit.nodes:
        parts.append(
            f'<text x="{_SVG_LEFT}" y="{_SVG_TOP + 20}" fill="#777">empty circuit '
            f"(no nodes)</text>"
        )
    svg = "\n".join(parts) + "\n</svg>\n"
    write_text(path, svg)
    return svg


def _svg_center(name: str, n_layers: int, n_heads: int) -> tuple[float, float]:
    col, row = grid_xy(name, n_layers, n_heads)
    return _SVG_LEFT + (col + 0.5) * _SVG_CELL, _SVG_TOP + (row + 0.5) * _SVG_CELL


def _toward(x: float, y: float, fx: float, fy: float, distance: float) -> tuple[float, float]:
    """The point `distance` from (x, y) in the direction of (fx, fy)."""
    norm = max(math.hypot(fx - x, fy - y), 1e-9)
    return x + distance * (fx - x) / norm, y + distance * (fy - y) / norm


def _svg_defs() -> str:
    markers = "".join(
        f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" '
        f'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" '
        f'fill="{color}"/></marker>'
        for kind, color in EDGE_COLORS.items()
    )
    return f"<defs>{markers}</defs>"


def _svg_axes(n_layers: int, n_heads: int, mlp: bool, logits: bool) -> list[str]:
    out = [
        f'<text x="{_SVG_LEFT - 55}" y="{_SVG_TOP - 30}" fill="#555">'
        "layer \u2193 / head \u2192</text>"
    ]
    for h in range(n_heads):
        out.append(
            f'<text x="{_SVG_LEFT + (h + 0.5) * _SVG_CELL}" y="{_SVG_TOP - 8}" '
            f'text-anchor="middle" fill="#555">H{h}</text>'
        )
    if mlp:
        out.append(
            f'<text x="{_SVG_LEFT + (n_heads + 0.5) * _SVG_CELL}" y="{_SVG_TOP - 8}" '
            f'text-anchor="middle" fill="#555">MLP</text>'
        )
    for layer in range(n_layers):
        y = _SVG_TOP + (layer + 0.5) * _SVG_CELL
        out.append(
            f'<text x="{_SVG_LEFT - 10}" y="{y + 4}" text-anchor="end" fill="#555">L{layer}</text>'
        )
        out.append(
            f'<line x1="{_SVG_LEFT}" y1="{y}" x2="{_SVG_LEFT + (n_heads + mlp) * _SVG_CELL}" '
            f'y2="{y}" stroke="#eee"/>'
        )
    if logits:
        out.append(
            f'<text x="{_SVG_LEFT - 10}" y="{_SVG_TOP + (n_layers + 0.5) * _SVG_CELL + 4}" '
            f'text-anchor="end" fill="#555">out</text>'
        )
    return out


def _svg_edges(circuit: Circuit, n_layers: int, n_heads: int) -> list[str]:
    out = []
    for edge in circuit.edges:
        (x1, y1), (x2, y2) = (_svg_center(e, n_layers, n_heads) for e in (edge.source, edge.target))
        mx, my = bend(x1, y1, x2, y2, edge.kind, 12.0)
        ex, ey = _toward(x2, y2, mx, my, _SVG_R)  # stop at the receiver's rim: the arrowhead shows
        width = 1.2 + 2.5 * min(abs(edge.weight), 1.0) if edge.weight is not None else 1.5
        tip = f"{edge.source} \u2192 {edge.target} ({edge.kind})" + (
            f" weight {fmt_number(edge.weight)}" if edge.weight is not None else ""
        )
        out.append(
            f'<path d="M{x1:.1f},{y1:.1f} Q{mx:.1f},{my:.1f} {ex:.1f},{ey:.1f}" fill="none" '
            f'stroke="{EDGE_COLORS[edge.kind]}" stroke-width="{width:.2f}" stroke-opacity="0.8" '
            f'marker-end="url(#arrow-{edge.kind})" class="edge edge-{edge.kind}">'
            f"<title>{_x(tip)}</title></path>"
        )
    return out


def _svg_nodes(circuit: Circuit, colors: dict, n_layers: int, n_heads: int) -> list[str]:
    out = []
    for node in circuit.nodes:
        x, y = _svg_center(node.name, n_layers, n_heads)
        shape = (
            f'<circle cx="{x}" cy="{y}" r="{_SVG_R}"'
            if node.head is not None
            else (
                f'<rect x="{x - _SVG_R}" y="{y - _SVG_R}" '
                f'width="{2 * _SVG_R}" height="{2 * _SVG_R}"'
            )
        )
        out.append(
            f'<g class="node" data-name="{_x(node.name)}" data-role="{_x(node.role)}">'
            f'{shape} fill="{colors[node.role]}" stroke="#222"/>'
            f'<text x="{x}" y="{y + _SVG_R + 11}" text-anchor="middle" font-size="10">'
            f"{_x(node.name)}</text><title>{_x(chr(10).join(node_summary(node)))}</title></g>"
        )
    if uses_logits(circuit):
        x, y = _svg_center(LOGITS, n_layers, n_heads)
        out.append(
            f'<g class="node" data-name="logits"><rect x="{x - 30}" y="{y - 12}" width="60" '
            f'height="24" rx="6" fill="#fff" stroke="#222"/><text x="{x}" y="{y + 4}" '
            f'text-anchor="middle">logits</text></g>'
        )
    return out


def _svg_legend(circuit: Circuit, colors: dict, y0: float) -> tuple[str, int]:
    items = [
        (f'<circle cx="6" cy="-4" r="6" fill="{c}" stroke="#222"/>', role or "(no role)")
        for role, c in colors.items()
    ]
    kinds = list(dict.fromkeys(e.kind for e in circuit.edges))
    items += [
        (
            f'<line x1="0" y1="-4" x2="14" y2="-4" stroke="{EDGE_COLORS[k]}" stroke-width="2.5"/>',
            f"edge: {k}",
        )
        for k in kinds
    ]
    lines = [
        f'<g class="legend" transform="translate(10,{y0})">'
        f'<text x="0" y="0" font-weight="bold">legend</text>'
    ]
    for i, (mark, label) in enumerate(items, start=1):
        lines.append(
            f'<g transform="translate(0,{18 * i})">{mark}<text x="20" y="0">{_x(label)}</text></g>'
        )
    lines.append("</g>")
    return "".join(lines), len(items) + 1
