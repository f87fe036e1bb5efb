"""Share a circuit: validated JSON, standalone SVG, Graphviz DOT, Mermaid, GraphML, plotly.

A `Circuit` (interp/circuit.py) is a set of nodes -- attention heads ``L{l}H{h}`` and MLP blocks
``MLP{l}``, each with a role and a score -- joined by edges whose kind says which input of the
receiver the sender writes to (``q``, ``k``, ``v``, or ``out`` = residual stream / logits).
Its JSON form is specified by the JSON Schema ``interp/schemas/circuit.schema.json`` (draft
2020-12); `validate_circuit_json` checks a document against it and raises `CircuitError` whose
message names the failing field (``nodes[1].name``), and `load_circuit` validates before it
builds the object. Every picture puts layers on the y axis (layer 0 on top, as in
`interp.plots.head_heatmap`) and heads on the x axis, MLP blocks in a column right of the heads
and the logits below the last layer; nodes are coloured by role.

    >>> from interp.circuit import Circuit
    >>> c = Circuit("world-base", "path patching").add_node("L0H1", "prev-token")
    >>> c = c.add_node("L1H0", "induction", score=0.8).add_edge("L0H1", "L1H0", "k", 0.5)
    >>> validate_circuit_json(c.to_dict()) is None
    True
    >>> to_svg(c).startswith("<svg")
    True
    >>> "L0H1 -> L1H0" in to_dot(c)
    True
    >>> sorted(to_networkx(c).nodes)
    ['L0H1', 'L1H0']

No converter needs an external program: the SVG is written here, and the DOT / Mermaid text can
be rendered later by Graphviz or any Mermaid viewer (GitHub renders Mermaid in Markdown).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Union

from .circuit import EDGE_KINDS, Circuit, CircuitError

__all__ = ["SCHEMA_PATH", "circuit_schema", "validate_circuit_json", "load_circuit", "to_svg",
           "to_dot", "to_mermaid", "to_networkx", "from_networkx", "to_graphml", "from_graphml",
           "circuit_figure", "export_circuit", "role_colors", "EXPORT_FORMATS"]

SCHEMA_PATH = Path(__file__).with_name("schemas") / "circuit.schema.json"
LOGITS = "logits"
EXPORT_FORMATS = {".json": "json", ".svg": "svg", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid",
                  ".graphml": "graphml", ".html": "plotly"}
# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
_ROLE_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
                 "#000000")
_NO_ROLE_COLOR = "#999999"
EDGE_COLORS = {"q": "#1f77b4", "k": "#2ca02c", "v": "#d62728", "out": "#555555"}
_HEAD = re.compile(r"^L(\d+)H(\d+)$")
_MLP = re.compile(r"^MLP(\d+)$")


# --------------------------------------------------------------------------- schema, validation


@lru_cache(maxsize=1)
def circuit_schema() -> dict:
    """The circuit JSON Schema (draft 2020-12) as a dict."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _field_path(parts) -> str:
    """``["nodes", 1, "name"]`` -> ``"nodes[1].name"``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def validate_circuit_json(data: Any) -> None:
    """Check a circuit document (parsed JSON) against the schema and its cross-field rules.

    Raises `CircuitError` naming the failing field and the fix; returns None when valid.

    >>> validate_circuit_json({"schema_version": "1.0", "model": "m", "method": "x",
    ...                        "nodes": [{"name": "L0H9x", "role": ""}], "edges": []})
    Traceback (most recent call last):
    ...
    interp.circuit.CircuitError: circuit field nodes[0].name: 'L0H9x' does not match ...
    """
    import jsonschema  # noqa: PLC0415 - only needed when validating

    validator = jsonschema.Draft202012Validator(circuit_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = _field_path(list(error.absolute_path) + _offending_key(error))
        raise CircuitError(f"circuit field {where}: {error.message} (schema: {SCHEMA_PATH.name}; "
                           f"see the field's description there)")
    _check_cross_fields(data)


def _offending_key(error) -> list:
    """The key a 'required' / 'additionalProperties' error is about (it sits one level down)."""
    if not isinstance(error.instance, dict):
        return []
    if error.validator == "required":
        return [k for k in error.validator_value if k not in error.instance][:1]
    if error.validator == "additionalProperties":
        return sorted(k for k in error.instance if k not in error.schema.get("properties", {}))[:1]
    return []


def _check_cross_fields(data: dict) -> None:
    """Rules JSON Schema cannot state: unique names, known edge ends, finite numbers."""
    seen: set[str] = set()
    for i, node in enumerate(data["nodes"]):
        if node["name"] in seen:
            raise CircuitError(f"circuit field nodes[{i}].name: {node['name']!r} appears twice; "
                               f"node names must be unique")
        seen.add(node["name"])
        if "score" in node and not math.isfinite(node["score"]):
            raise CircuitError(f"circuit field nodes[{i}].score: {node['score']} is not finite; "
                               f"omit the score of an unscored node")
    for i, edge in enumerate(data["edges"]):
        for end in ("source", "target"):
            if edge[end] not in seen and edge[end] != LOGITS:
                raise CircuitError(f"circuit field edges[{i}].{end}: {edge[end]!r} is not a node of "
                                   f"the circuit; add it to 'nodes' first")
        if "weight" in edge and not math.isfinite(edge["weight"]):
            raise CircuitError(f"circuit field edges[{i}].weight: {edge['weight']} is not finite")


def load_circuit(source: Union[str, os.PathLike, dict]) -> Circuit:
    """A `Circuit` from a JSON file, JSON text or parsed dict, validated against the schema.

    >>> load_circuit('{"schema_version": "1.0", "model": "m", "method": "x", "nodes": [], '
    ...              '"edges": []}').model
    'm'
    """
    if isinstance(source, dict):
        data = source
    else:
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CircuitError(f"circuit is not valid JSON: {err}") from None
    validate_circuit_json(data)
    return Circuit.from_dict(data)


# --------------------------------------------------------------------------- layout


def role_colors(circuit: Circuit) -> dict[str, str]:
    """Colour of each role, in the order roles first appear ('' = no role, grey)."""
    colors, i = {}, 0
    for role in circuit.roles:
        if role == "":
            colors[role] = _NO_ROLE_COLOR
        else:
            colors[role] = _ROLE_PALETTE[i % len(_ROLE_PALETTE)]
            i += 1
    return colors


def _grid(circuit: Circuit, n_layers: Optional[int], n_heads: Optional[int]) -> tuple[int, int]:
    """Grid size: the model's (when given) or just large enough for the circuit's nodes."""
    layers = [n.layer for n in circuit.nodes]
    heads = [n.head.head for n in circuit.nodes if n.head is not None]
    need_l, need_h = (max(layers) + 1 if layers else 1), (max(heads) + 1 if heads else 1)
    for name, given, need in (("n_layers", n_layers, need_l), ("n_heads", n_heads, need_h)):
        if given is not None and (isinstance(given, bool) or not isinstance(given, int)):
            raise TypeError(f"{name} must be an int (the model's {name}), got {type(given).__name__}")
        if given is not None and given < need:
            raise ValueError(f"{name}={given!r} is too small for the circuit, which needs at least "
                             f"{need}; pass the model's size or leave it out")
    return n_layers or need_l, n_heads or need_h


def _has_mlp(circuit: Circuit) -> bool:
    return any(_MLP.match(n.name) for n in circuit.nodes)


def _uses_logits(circuit: Circuit) -> bool:
    return any(e.target == LOGITS for e in circuit.edges)


def _grid_xy(name: str, n_layers: int, n_heads: int) -> tuple[float, float]:
    """(column, row) of a node: heads at their index, MLPs one column right, logits below."""
    if name == LOGITS:
        return (n_heads - 1) / 2, n_layers
    match = _HEAD.match(name)
    if match:
        return int(match.group(2)), int(match.group(1))
    return n_heads, int(_MLP.match(name).group(1))


def _bend(x1: float, y1: float, x2: float, y2: float, kind: str, amount: float) -> tuple[float, float]:
    """Midpoint of an edge pushed sideways by its kind, so q/k/v/out edges of one pair stay apart."""
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    bend = amount * (EDGE_KINDS.index(kind) - 1.5)
    return (x1 + x2) / 2 - bend * (y2 - y1) / length, (y1 + y2) / 2 + bend * (x2 - x1) / length


def _fmt(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.3g}"


def _node_summary(node) -> list[str]:
    parts = [node.name, f"role: {node.role or '(none)'}"]
    if node.score is not None:
        parts.append(f"score: {_fmt(node.score)}")
    if node.positions:
        parts.append("positions: " + ", ".join(node.positions))
    return parts


# --------------------------------------------------------------------------- SVG


def _x(text: Any) -> str:
    """Escape text for SVG/XML content and attribute values (<, >, &, both quotes)."""
    return html.escape(str(text), quote=True)


_SVG_CELL, _SVG_LEFT, _SVG_TOP, _SVG_R = 56, 70, 70, 15


def to_svg(circuit: Circuit, path: Union[str, os.PathLike, None] = None, *,
           n_layers: Optional[int] = None, n_heads: Optional[int] = None,
           title: Optional[str] = None) -> str:
    """A standalone SVG diagram (no external program): layers down, heads across, a legend.

    Every text from the circuit (title, roles, model, method) is XML-escaped. Hover a node
    for its role and score. Pass the model's `n_layers` / `n_heads` to draw the full grid.

    >>> svg = to_svg(Circuit("m", "x").add_node("L1H2", role="a<b"))
    >>> "a&lt;b" in svg and "a<b" not in svg
    True
    """
    n_layers, n_heads = _grid(circuit, n_layers, n_heads)
    columns = n_heads + (1 if _has_mlp(circuit) else 0)
    rows = n_layers + (1 if _uses_logits(circuit) else 0)
    colors = role_colors(circuit)
    legend = _svg_legend(circuit, colors, y0=_SVG_TOP + rows * _SVG_CELL + 10)
    width = max(_SVG_LEFT + columns * _SVG_CELL + 20, 420)
    height = _SVG_TOP + rows * _SVG_CELL + 30 + 18 * legend[1]
    heading = title if title is not None else f"{circuit.model}: {circuit.method}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f"<title>{_x(heading)}</title>",
        _svg_defs(),
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{_x(heading)}</text>',
        *_svg_axes(n_layers, n_heads, _has_mlp(circuit), _uses_logits(circuit)),
        *_svg_edges(circuit, n_layers, n_heads),
        *_svg_nodes(circuit, colors, n_layers, n_heads),
        legend[0],
    ]
    if not circuit.nodes:
        parts.append(f'<text x="{_SVG_LEFT}" y="{_SVG_TOP + 20}" fill="#777">empty circuit '
                     f'(no nodes)</text>')
    svg = "\n".join(parts) + "\n</svg>\n"
    _write(path, svg)
    return svg


def _svg_center(name: str, n_layers: int, n_heads: int) -> tuple[float, float]:
    col, row = _grid_xy(name, n_layers, n_heads)
    return _SVG_LEFT + (col + 0.5) * _SVG_CELL, _SVG_TOP + (row + 0.5) * _SVG_CELL


def _toward(x: float, y: float, fx: float, fy: float, distance: float) -> tuple[float, float]:
    """The point `distance` from (x, y) in the direction of (fx, fy)."""
    norm = max(math.hypot(fx - x, fy - y), 1e-9)
    return x + distance * (fx - x) / norm, y + distance * (fy - y) / norm


def _svg_defs() -> str:
    markers = "".join(
        f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" '
        f'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{color}"/></marker>' for kind, color in EDGE_COLORS.items())
    return f"<defs>{markers}</defs>"


def _svg_axes(n_layers: int, n_heads: int, mlp: bool, logits: bool) -> list[str]:
    out = [f'<text x="{_SVG_LEFT - 55}" y="{_SVG_TOP - 30}" fill="#555">layer \u2193 / head \u2192</text>']
    for h in range(n_heads):
        out.append(f'<text x="{_SVG_LEFT + (h + 0.5) * _SVG_CELL}" y="{_SVG_TOP - 8}" '
                   f'text-anchor="middle" fill="#555">H{h}</text>')
    if mlp:
        out.append(f'<text x="{_SVG_LEFT + (n_heads + 0.5) * _SVG_CELL}" y="{_SVG_TOP - 8}" '
                   f'text-anchor="middle" fill="#555">MLP</text>')
    for layer in range(n_layers):
        y = _SVG_TOP + (layer + 0.5) * _SVG_CELL
        out.append(f'<text x="{_SVG_LEFT - 10}" y="{y + 4}" text-anchor="end" fill="#555">L{layer}</text>')
        out.append(f'<line x1="{_SVG_LEFT}" y1="{y}" x2="{_SVG_LEFT + (n_heads + mlp) * _SVG_CELL}" '
                   f'y2="{y}" stroke="#eee"/>')
    if logits:
        out.append(f'<text x="{_SVG_LEFT - 10}" y="{_SVG_TOP + (n_layers + 0.5) * _SVG_CELL + 4}" '
                   f'text-anchor="end" fill="#555">out</text>')
    return out


def _svg_edges(circuit: Circuit, n_layers: int, n_heads: int) -> list[str]:
    out = []
    for edge in circuit.edges:
        (x1, y1), (x2, y2) = (_svg_center(e, n_layers, n_heads) for e in (edge.source, edge.target))
        mx, my = _bend(x1, y1, x2, y2, edge.kind, 12.0)
        ex, ey = _toward(x2, y2, mx, my, _SVG_R)  # stop at the receiver's rim: the arrowhead shows
        width = 1.2 + 2.5 * min(abs(edge.weight), 1.0) if edge.weight is not None else 1.5
        tip = f"{edge.source} \u2192 {edge.target} ({edge.kind})" + (
            f" weight {_fmt(edge.weight)}" if edge.weight is not None else "")
        out.append(f'<path d="M{x1:.1f},{y1:.1f} Q{mx:.1f},{my:.1f} {ex:.1f},{ey:.1f}" fill="none" '
                   f'stroke="{EDGE_COLORS[edge.kind]}" stroke-width="{width:.2f}" stroke-opacity="0.8" '
                   f'marker-end="url(#arrow-{edge.kind})" class="edge edge-{edge.kind}">'
                   f"<title>{_x(tip)}</title></path>")
    return out


def _svg_nodes(circuit: Circuit, colors: dict, n_layers: int, n_heads: int) -> list[str]:
    out = []
    for node in circuit.nodes:
        x, y = _svg_center(node.name, n_layers, n_heads)
        shape = (f'<circle cx="{x}" cy="{y}" r="{_SVG_R}"' if node.head is not None else
                 f'<rect x="{x - _SVG_R}" y="{y - _SVG_R}" width="{2 * _SVG_R}" height="{2 * _SVG_R}"')
        out.append(f'<g class="node" data-name="{_x(node.name)}" data-role="{_x(node.role)}">'
                   f'{shape} fill="{colors[node.role]}" stroke="#222"/>'
                   f'<text x="{x}" y="{y + _SVG_R + 11}" text-anchor="middle" font-size="10">'
                   f"{_x(node.name)}</text><title>{_x(chr(10).join(_node_summary(node)))}</title></g>")
    if _uses_logits(circuit):
        x, y = _svg_center(LOGITS, n_layers, n_heads)
        out.append(f'<g class="node" data-name="logits"><rect x="{x - 30}" y="{y - 12}" width="60" '
                   f'height="24" rx="6" fill="#fff" stroke="#222"/><text x="{x}" y="{y + 4}" '
                   f'text-anchor="middle">logits</text></g>')
    return out


def _svg_legend(circuit: Circuit, colors: dict, y0: float) -> tuple[str, int]:
    items = [(f'<circle cx="6" cy="-4" r="6" fill="{c}" stroke="#222"/>', role or "(no role)")
             for role, c in colors.items()]
    kinds = list(dict.fromkeys(e.kind for e in circuit.edges))
    items += [(f'<line x1="0" y1="-4" x2="14" y2="-4" stroke="{EDGE_COLORS[k]}" stroke-width="2.5"/>',
               f"edge: {k}") for k in kinds]
    lines = [f'<g class="legend" transform="translate(10,{y0})">'
             f'<text x="0" y="0" font-weight="bold">legend</text>']
    for i, (mark, label) in enumerate(items, start=1):
        lines.append(f'<g transform="translate(0,{18 * i})">{mark}<text x="20" y="0">{_x(label)}</text></g>')
    lines.append("</g>")
    return "".join(lines), len(items) + 1


# --------------------------------------------------------------------------- DOT, Mermaid


def _dot_str(text: Any) -> str:
    """A Graphviz double-quoted string: backslashes, quotes and newlines escaped."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def to_dot(circuit: Circuit, path: Union[str, os.PathLike, None] = None) -> str:
    """Graphviz DOT text: one rank per layer (layer 0 on top), nodes filled by role.

    Render with ``dot -Tsvg circuit.dot -o circuit.svg`` (Graphviz is not needed to write it).
    """
    colors = role_colors(circuit)
    lines = ["digraph circuit {", f"  label={_dot_str(f'{circuit.model}: {circuit.method}')};",
             '  labelloc="t"; rankdir="TB";',
             '  node [shape=circle, style=filled, fontname="Helvetica", fontsize=10];']
    for layer in sorted({n.layer for n in circuit.nodes}):
        members = [n for n in circuit.nodes if n.layer == layer]
        lines.append(f"  subgraph layer_{layer} {{ rank=same;")
        for node in members:
            label = node.name + (f"\n{node.role}" if node.role else "") + (
                f"\n{_fmt(node.score)}" if node.score is not None else "")
            shape = "" if node.head is not None else ", shape=box"
            lines.append(f"    {node.name} [label={_dot_str(label)}, fillcolor={_dot_str(colors[node.role])}"
                         f"{shape}, tooltip={_dot_str(' | '.join(_node_summary(node)))}];")
        lines.append("  }")
    if _uses_logits(circuit):
        lines.append('  logits [shape=box, style="rounded", label="logits"];')
    for edge in circuit.edges:
        label = edge.kind + (f" {_fmt(edge.weight)}" if edge.weight is not None else "")
        lines.append(f"  {edge.source} -> {edge.target} [label={_dot_str(label)}, "
                     f"color={_dot_str(EDGE_COLORS[edge.kind])}];")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    _write(path, text)
    return text


def _mermaid_text(text: Any) -> str:
    """Mermaid label text: every character outside [A-Za-z0-9 _.,:+-] as an entity code ``#NN;``."""
    return "".join(ch if re.match(r"[A-Za-z0-9 _.,:+\-]", ch) else f"#{ord(ch)};" for ch in str(text))


def to_mermaid(circuit: Circuit, path: Union[str, os.PathLike, None] = None) -> str:
    """Mermaid flowchart text (renders on GitHub inside a ```mermaid block), one subgraph per layer."""
    colors = role_colors(circuit)
    classes = {role: f"role{i}" for i, role in enumerate(colors)}
    lines = ["flowchart TB"]
    for layer in sorted({n.layer for n in circuit.nodes}):
        lines.append(f'  subgraph layer{layer}["layer {layer}"]')
        for node in (n for n in circuit.nodes if n.layer == layer):
            label = _mermaid_text(node.name) + (f"<br/>{_mermaid_text(node.role)}" if node.role else "") + (
                f"<br/>{_mermaid_text(_fmt(node.score))}" if node.score is not None else "")
            open_, close = ("((", "))") if node.head is not None else ("[", "]")
            lines.append(f'    {node.name}{open_}"{label}"{close}:::{classes[node.role]}')
        lines.append("  end")
    if _uses_logits(circuit):
        lines.append('  logits(["logits"])')
    for edge in circuit.edges:
        label = edge.kind + (f" {_fmt(edge.weight)}" if edge.weight is not None else "")
        lines.append(f'  {edge.source} -->|"{_mermaid_text(label)}"| {edge.target}')
    for role, cls in classes.items():
        lines.append(f"  classDef {cls} fill:{colors[role]},stroke:#222,color:#000")
    text = "\n".join(lines) + "\n"
    _write(path, text)
    return text


# --------------------------------------------------------------------------- networkx, GraphML


def to_networkx(circuit: Circuit):
    """A ``networkx.MultiDiGraph`` (a pair may be joined by a q and a k edge), keyed by node name.

    Node attributes: role, layer, kind ("head" | "mlp" | "logits"), head, score, positions
    (JSON text), meta (JSON text); edge attributes: kind, weight, order (index in the circuit); graph attributes: model,
    method, schema_version, meta (JSON text). Absent values are left out (GraphML has no null).
    """
    import networkx as nx  # noqa: PLC0415

    graph = nx.MultiDiGraph(model=circuit.model, method=circuit.method,
                            schema_version=circuit.to_dict()["schema_version"],
                            meta=json.dumps(circuit.meta, sort_keys=True))
    for node in circuit.nodes:
        attrs = {"role": node.role, "layer": node.layer, "kind": "head" if node.head else "mlp"}
        if node.head is not None:
            attrs["head"] = node.head.head
        if node.score is not None:
            attrs["score"] = node.score
        if node.positions:
            attrs["positions"] = json.dumps(list(node.positions))
        if node.meta:
            attrs["meta"] = json.dumps(node.meta, sort_keys=True)
        graph.add_node(node.name, **attrs)
    if _uses_logits(circuit):
        graph.add_node(LOGITS, kind="logits")
    for order, edge in enumerate(circuit.edges):
        attrs = {"kind": edge.kind, "order": order} | ({} if edge.weight is None else {"weight": edge.weight})
        graph.add_edge(edge.source, edge.target, **attrs)
    return graph


def from_networkx(graph) -> Circuit:
    """The `Circuit` of a graph written by `to_networkx` (or read back from GraphML)."""
    data = {"schema_version": str(graph.graph.get("schema_version", "1.0")),
            "model": str(graph.graph.get("model", "")), "method": str(graph.graph.get("method", "")),
            "meta": json.loads(graph.graph.get("meta", "{}")), "nodes": [], "edges": []}
    for name, attrs in graph.nodes(data=True):
        if attrs.get("kind") == LOGITS:
            continue
        node = {"name": str(name), "role": str(attrs.get("role", ""))}
        if "score" in attrs:
            node["score"] = float(attrs["score"])
        if "positions" in attrs:
            node["positions"] = json.loads(attrs["positions"])
        if "meta" in attrs:
            node["meta"] = json.loads(attrs["meta"])
        data["nodes"].append(node)
    edges = sorted(graph.edges(data=True), key=lambda e: int(e[2].get("order", 0)))  # stable sort
    for source, target, attrs in edges:
        edge = {"source": str(source), "target": str(target), "kind": str(attrs.get("kind", "out"))}
        if "weight" in attrs:
            edge["weight"] = float(attrs["weight"])
        data["edges"].append(edge)
    return load_circuit(data)


def to_graphml(circuit: Circuit, path: Union[str, os.PathLike, None] = None) -> str:
    """GraphML text (Gephi, yEd, Cytoscape, ``networkx.read_graphml``) of `to_networkx(circuit)`."""
    import networkx as nx  # noqa: PLC0415

    text = "\n".join(nx.generate_graphml(to_networkx(circuit))) + "\n"
    _write(path, text)
    return text


def from_graphml(path: Union[str, os.PathLike]) -> Circuit:
    """Read a GraphML file written by `to_graphml` back into a validated `Circuit`."""
    import networkx as nx  # noqa: PLC0415

    return from_networkx(nx.read_graphml(path, force_multigraph=True))


# --------------------------------------------------------------------------- plotly


def circuit_figure(circuit: Circuit, *, n_layers: Optional[int] = None,
                   n_heads: Optional[int] = None, title: Optional[str] = None):
    """Interactive plotly figure: heads across, layers down, one legend entry per role and edge kind.

    Hover a node for its role and score, an edge's midpoint for its kind and weight; click a
    legend entry to hide a role group.
    """
    import plotly.graph_objects as go  # noqa: PLC0415

    n_layers, n_heads = _grid(circuit, n_layers, n_heads)
    fig = go.Figure()
    for kind in dict.fromkeys(e.kind for e in circuit.edges):
        fig.add_traces(_edge_traces(circuit, kind, n_layers, n_heads))
    for role, color in role_colors(circuit).items():
        nodes = [n for n in circuit.nodes if n.role == role]
        xy = [_grid_xy(n.name, n_layers, n_heads) for n in nodes]
        fig.add_trace(go.Scatter(
            x=[p[0] for p in xy], y=[p[1] for p in xy], mode="markers+text", name=_plotly_text(role or "(no role)"),
            text=[n.name for n in nodes], textposition="bottom center",
            marker={"size": 22, "color": color, "line": {"width": 1, "color": "#222"},
                    "symbol": ["circle" if n.head is not None else "square" for n in nodes]},
            hovertext=["<br>".join(_plotly_text(p) for p in _node_summary(n)) for n in nodes],
            hoverinfo="text", legendgroup=f"role:{role}"))
    if _uses_logits(circuit):
        x, y = _grid_xy(LOGITS, n_layers, n_heads)
        fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers+text", text=["logits"], name="logits",
                                 marker={"size": 28, "symbol": "square", "color": "white",
                                         "line": {"width": 1, "color": "#222"}},
                                 textposition="middle center", hoverinfo="text", hovertext=["logits"]))
    _figure_layout(fig, circuit, n_layers, n_heads, title)
    return fig


def _plotly_text(text: Any) -> str:
    """Text for plotly's pseudo-HTML labels: <, > and & as entities so no tag is interpreted."""
    return html.escape(str(text), quote=False)


def _edge_traces(circuit: Circuit, kind: str, n_layers: int, n_heads: int) -> list:
    import plotly.graph_objects as go  # noqa: PLC0415

    xs, ys, mid_x, mid_y, tips = [], [], [], [], []
    for edge in (e for e in circuit.edges if e.kind == kind):
        (x1, y1), (x2, y2) = (_grid_xy(n, n_layers, n_heads) for n in (edge.source, edge.target))
        mx, my = _bend(x1, y1, x2, y2, kind, 0.12)
        xs += [x1, mx, x2, None]
        ys += [y1, my, y2, None]
        mid_x.append(mx)
        mid_y.append(my)
        tips.append(f"{edge.source} \u2192 {edge.target} ({kind})"
                    + (f"<br>weight {_fmt(edge.weight)}" if edge.weight is not None else ""))
    line = go.Scatter(x=xs, y=ys, mode="lines", name=f"edge: {kind}", hoverinfo="skip",
                      line={"color": EDGE_COLORS[kind], "width": 2}, legendgroup=f"edge:{kind}")
    mids = go.Scatter(x=mid_x, y=mid_y, mode="markers", showlegend=False, hoverinfo="text",
                      hovertext=tips, marker={"size": 7, "color": EDGE_COLORS[kind], "symbol": "diamond"},
                      legendgroup=f"edge:{kind}", name=f"edge: {kind}")
    return [line, mids]


def _figure_layout(fig, circuit: Circuit, n_layers: int, n_heads: int, title: Optional[str]) -> None:
    x_ticks = list(range(n_heads)) + ([n_heads] if _has_mlp(circuit) else [])
    y_ticks = list(range(n_layers)) + ([n_layers] if _uses_logits(circuit) else [])
    fig.update_layout(
        title={"text": _plotly_text(title if title is not None else f"{circuit.model}: {circuit.method}")},
        xaxis={"title": {"text": "head"}, "tickvals": x_ticks, "range": [-0.7, max(x_ticks) + 0.7],
               "ticktext": [f"H{h}" for h in range(n_heads)] + (["MLP"] if _has_mlp(circuit) else []),
               "zeroline": False},
        yaxis={"title": {"text": "layer"}, "tickvals": y_ticks, "autorange": "reversed",
               "ticktext": [f"L{l}" for l in range(n_layers)] + (["logits"] if _uses_logits(circuit) else []),
               "zeroline": False},
        plot_bgcolor="white", legend={"title": {"text": "roles / edges"}},
        height=max(420, 220 + 70 * len(y_ticks)))
    if not circuit.nodes:
        fig.add_annotation(text="empty circuit (no nodes)", showarrow=False, x=0, y=0)


# --------------------------------------------------------------------------- files


def _write(path, text: str) -> None:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")


def export_circuit(circuit: Circuit, path: Union[str, os.PathLike], **kw) -> Path:
    """Write `circuit` in the format its suffix names (see `EXPORT_FORMATS`); return the path.

    ``.html`` writes the plotly figure via `interp.plots.save_html` (plotly.js beside the page).
    """
    if not isinstance(circuit, Circuit):
        raise TypeError(f"export_circuit needs an interp.circuit.Circuit, got {type(circuit).__name__}")
    path = Path(path)
    fmt = EXPORT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the export format from {path.name!r}; use one of the suffixes "
                         f"{sorted(EXPORT_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        if kw:
            raise TypeError(f"JSON export takes no options, got {sorted(kw)}")
        circuit.to_json(path)
    elif fmt == "plotly":
        from .plots import save_html  # noqa: PLC0415

        save_html(circuit_figure(circuit, **kw), path)
    else:
        {"svg": to_svg, "dot": to_dot, "mermaid": to_mermaid, "graphml": to_graphml}[fmt](circuit, path, **kw)
    return path
