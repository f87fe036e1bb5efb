"""Mermaid flowchart text of a circuit (GitHub renders it inside a ```mermaid block)."""

from __future__ import annotations

import os
import re
from typing import Any, Union

from ..circuit import Circuit
from .layout import fmt_number, role_colors, uses_logits, write_text


def _mermaid_text(text: Any) -> str:
    """Mermaid label text: every character outside [A-Za-z0-9 _.,:+-] as an entity code ``#NN;``."""
    return "".join(
        ch if re.match(r"[A-Za-z0-9 _.,:+\-]", ch) else f"#{ord(ch)};" for ch in str(text)
    )


def to_mermaid(circuit: Circuit, path: Union[str, os.PathLike, None] = None) -> str:
    """Mermaid flowchart text (renders on GitHub inside a ```mermaid block), one subgraph per
    layer."""
    colors = role_colors(circuit)
    classes = {role: f"role{i}" for i, role in enumerate(colors)}
    lines = ["flowchart TB"]
    for layer in sorted({n.layer for n in circuit.nodes}):
        lines.append(f'  subgraph layer{layer}["layer {layer}"]')
        for node in (n for n in circuit.nodes if n.layer == layer):
            label = (
                _mermaid_text(node.name)
                + (f"<br/>{_mermaid_text(node.role)}" if node.role else "")
                + (
                    f"<br/>{_mermaid_text(fmt_number(node.score))}"
                    if node.score is not None
                    else ""
                )
            )
            open_, close = ("((", "))") if node.head is not None else ("[", "]")
            lines.append(f'    {node.name}{open_}"{label}"{close}:::{classes[node.role]}')
        lines.append("  end")
    if uses_logits(circuit):
        lines.append('  logits(["logits"])')
    for edge in circuit.edges:
        label = edge.kind + (f" {fmt_number(edge.weight)}" if edge.weight is not None else "")
        lines.append(f'  {edge.source} -->|"{_mermaid_text(label)}"| {edge.target}')
    for role, cls in classes.items():
        lines.append(f"  classDef {cls} fill:{colors[role]},stroke:#222,color:#000")
    text = "\n".join(lines) + "\n"
    write_text(path, text)
    return text
