"""The one layout every circuit picture shares, and the small pieces the formats have in common.

Layers run down the y axis (layer 0 on top, as in :func:`interp.plots.head_heatmap`), heads
across the x axis, MLP blocks in a column right of the heads and the logits below the last
layer; nodes are coloured by role (Okabe-Ito palette, grey for no role), edges by the input of
the receiver they write to.

    >>> from interp.circuit import Circuit
    >>> c = Circuit("m", "x").add_node("L1H2", "mover").add_node("MLP0", "")
    >>> grid_size(c, None, None), grid_xy("L1H2", 2, 3), grid_xy("MLP0", 2, 3)
    ((2, 3), (2, 1), (3, 0))
    >>> role_colors(c)
    {'mover': '#0072B2', '': '#999999'}
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Optional, Union

from ..circuit import EDGE_KINDS, Circuit
from ..errors import ArgumentTypeError, InvalidArgumentError

LOGITS = "logits"
# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
ROLE_PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
NO_ROLE_COLOR = "#999999"
EDGE_COLORS = {"q": "#1f77b4", "k": "#2ca02c", "v": "#d62728", "out": "#555555"}
HEAD_NAME = re.compile(r"^L(\d+)H(\d+)$")
MLP_NAME = re.compile(r"^MLP(\d+)$")


def role_colors(circuit: Circuit) -> dict[str, str]:
    """Colour of each role, in the order roles first appear ('' = no role, grey)."""
    colors, i = {}, 0
    for role in circuit.roles:
        if role == "":
            colors[role] = NO_ROLE_COLOR
        else:
            colors[role] = ROLE_PALETTE[i % len(ROLE_PALETTE)]
            i += 1
    return colors


def grid_size(circuit: Circuit, n_layers: Optional[int], n_heads: Optional[int]) -> tuple[int, int]:
    """Grid size: the model's (when given) or just large enough for the circuit's nodes."""
    layers = [n.layer for n in circuit.nodes]
    heads = [n.head.head for n in circuit.nodes if n.head is not None]
    need_l, need_h = (max(layers) + 1 if layers else 1), (max(heads) + 1 if heads else 1)
    for name, given, need in (("n_layers", n_layers, need_l), ("n_heads", n_heads, need_h)):
        if given is not None and (isinstance(given, bool) or not isinstance(given, int)):
            raise ArgumentTypeError(
                f"{name} must be an int (the model's {name}), got {type(given).__name__}"
            )
        if given is not None and given < need:
            raise InvalidArgumentError(
                f"{name}={given!r} is too small for the circuit, which needs at least "
                f"{need}; pass the model's size or leave it out"
            )
    return n_layers or need_l, n_heads or need_h


def has_mlp(circuit: Circuit) -> bool:
    """Whether the circuit has an MLP node (the picture then gets an MLP column)."""
    return any(MLP_NAME.match(n.name) for n in circuit.nodes)


def uses_logits(circuit: Circuit) -> bool:
    """Whether an edge ends at the logits (the picture then gets a logits row)."""
    return any(e.target == LOGITS for e in circuit.edges)


def grid_xy(name: str, n_layers: int, n_heads: int) -> tuple[float, float]:
    """(column, row) of a node: heads at their index, MLPs one column right, logits below."""
    if name == LOGITS:
        return (n_heads - 1) / 2, n_layers
    match = HEAD_NAME.match(name)
    if match:
        return int(match.group(2)), int(match.group(1))
    return n_heads, int(MLP_NAME.match(name).group(1))


def bend(
    x1: float, y1: float, x2: float, y2: float, kind: str, amount: float
) -> tuple[float, float]:
    """Midpoint of an edge pushed sideways by its kind, so q/k/v/out edges of one pair stay
    apart."""
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    bend = amount * (EDGE_KINDS.index(kind) - 1.5)
    return (x1 + x2) / 2 - bend * (y2 - y1) / length, (y1 + y2) / 2 + bend * (x2 - x1) / length


def fmt_number(value: Optional[float]) -> str:
    """A score or weight to three significant digits; ``""`` for None."""
    return "" if value is None else f"{value:.3g}"


def node_summary(node) -> list[str]:
    """The hover lines of a node: name, role, score and positions where present."""
    parts = [node.name, f"role: {node.role or '(none)'}"]
    if node.score is not None:
        parts.append(f"score: {fmt_number(node.score)}")
    if node.positions:
        parts.append("positions: " + ", ".join(node.positions))
    return parts


def write_text(path: Union[str, os.PathLike, None], text: str) -> None:
    """Write ``text`` to ``path`` (creating its folder) unless ``path`` is None."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
