"""Graphviz DOT text of a circuit: one rank per layer, nodes filled by role.

Graphviz is not needed to write it, only to render it (``dot -Tsvg circuit.dot -o circuit.svg``)."""

from __future__ import annotations

import os
from typing import Any, Union

from ..circuit import Circuit
from .layout import EDGE_COLORS, fmt_number, node_summary, role_colors, uses_logits, write_text


def _dot_str(text: Any) -> str:
    """A Graphviz double-quoted string: backslashes, quotes and newlines escaped."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def to_dot(circuit: Circuit, path: Union[str, os.PathLike, None] = None) -> str:
    """Graphviz DOT text: one rank per layer (layer 0 on top), nodes filled by role.

    Render with ``dot -Tsvg circuit.dot -o circuit.svg`` (Graphviz is not needed to write it).
    """
    colors = role_colors(circuit)
    lines = [
        "digraph circuit {",
        f"  label={_dot_str(f'{circuit.model}: {circuit.method}')};",
        '  labelloc="t"; rankdir="TB";',
        '  node [shape=circle, style=filled, fontname="Helvetica", fontsize=10];',
    ]
    for layer in sorted({n.layer for n in circuit.nodes}):
        members = [n for n in circuit.nodes if n.layer == layer]
        lines.append(f"  subgraph layer_{layer} {{ rank=same;")
        for node in members:
            label = (
                node.name
                + (f"\n{node.role}" if node.role else "")
                + (f"\n{fmt_number(node.score)}" if node.score is not None else "")
            )
            shape = "" if node.head is not None else ", shape=box"
            lines.append(
                f"    {node.name} [label={_dot_str(label)}, fillcolor={_dot_str(colors[node.role])}"
                f"{shape}, tooltip={_dot_str(' | '.join(node_summary(node)))}];"
            )
        lines.append("  }")
    if uses_logits(circuit):
        lines.append('  logits [shape=box, style="rounded", label="logits"];')
    for edge in circuit.edges:
        label = edge.kind + (f" {fmt_number(edge.weight)}" if edge.weight is not None else "")
        lines.append(
            f"  {edge.source} -> {edge.target} [label={_dot_str(label)}, "
            f"color={_dot_str(EDGE_COLORS[edge.kind])}];"
        )
    lines.append("}")
    text = "\n".join(lines) + "\n"
    write_text(path, text)
    return text
