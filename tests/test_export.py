"""Circuit export: schema validation, SVG / DOT / Mermaid / GraphML / plotly, round trips,
escaping."""

import json
import math
import re
import xml.etree.ElementTree as ET

import jsonschema
import networkx as nx
import pytest

from interp import export
from interp.circuit import Circuit, CircuitError

SVG = "{http://www.w3.org/2000/svg}"
NASTY = "a<b> & \"c\" 'd' </text><script>alert(1)</script>"


def make_circuit(role: str = "induction", model: str = "world-base", method: str = "path patching"):
    c = Circuit(model, method, meta={"seed": 0, "data_hash": "abc"})
    c = c.add_node("L0H1", "previous token", score=0.25, positions=["S2"], note="planted")
    c = c.add_node("L1H3", role, score=-0.8).add_node("MLP1", "").add_node("L2H0", role, score=0.1)
    c = c.add_edge("L0H1", "L1H3", "k", 0.5).add_edge("L0H1", "L1H3", "q", -0.125)
    c = c.add_edge("L1H3", "L2H0", "v", 0.3).add_edge("MLP1", "logits", "out")
    return c.add_edge("L2H0", "logits", "out", 1.0)


EMPTY = Circuit("world-base", "nothing found")


# --------------------------------------------------------------------------- schema and JSON


def test_schema_is_valid_draft_2020_12():
    schema = export.circuit_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")


@pytest.mark.parametrize("circuit", [make_circuit(), EMPTY], ids=["full", "empty"])
def test_json_round_trip(circuit):
    text = circuit.to_json()
    export.validate_circuit_json(json.loads(text))
    again = export.load_circuit(text)
    assert again == circuit and again.to_json() == text
    assert [n.meta for n in again.nodes] == [
        n.meta for n in circuit.nodes
    ] and again.meta == circuit.meta


def test_load_circuit_from_file(tmp_path):
    path = tmp_path / "c.json"
    make_circuit().to_json(path)
    assert export.load_circuit(path) == make_circuit()
    assert export.load_circuit(str(path)) == make_circuit()


def _doc(*path_and_value):
    """The full circuit's document with the field at ``path`` set to ``value``."""
    *path, value = path_and_value
    data = make_circuit().to_dict()
    container = data
    for part in path[:-1]:
        container = container[part]
    container[path[-1]] = value
    return data


@pytest.mark.parametrize(
    "data, field",
    [
        (
            {k: v for k, v in make_circuit().to_dict().items() if k != "model"},
            "field model: 'model' is a required",
        ),
        (
            _doc("edges", 0, {"source": "L0H1", "target": "L1H3"}),
            "field edges[0].kind: 'kind' is a required",
        ),
        (_doc("nodes", 0, "name", "L0H9x"), "nodes[0].name"),
        (_doc("nodes", 1, "score", "high"), "nodes[1].score"),
        (_doc("nodes", 0, "positions", "S2"), "nodes[0].positions"),
        (_doc("edges", 2, "kind", "value"), "edges[2].kind"),
        (_doc("edges", 0, "weight", [1]), "edges[0].weight"),
        (_doc("edges", 1, "source", "L7H7"), "edges[1].source"),
        (_doc("edges", 2, "target", "L9H9"), "edges[2].target"),
        (_doc("schema_version", 1), "schema_version"),
        (_doc("colour", "red"), "field colour: Additional properties"),
        (_doc("nodes", 0, "colour", "red"), "field nodes[0].colour: Additional properties"),
        (_doc("nodes", 1, "name", "L0H1"), "nodes[1].name"),
        (_doc("nodes", 0, "score", math.nan), "nodes[0].score"),
        (_doc("method", ""), "method"),
    ],
)
def test_invalid_json_names_failing_field(data, field):
    with pytest.raises(CircuitError, match=re.escape(field)):
        export.validate_circuit_json(data)
    with pytest.raises(CircuitError, match=re.escape(field)):
        export.load_circuit(data)


def test_not_an_object_and_not_json():
    with pytest.raises(CircuitError, match="document"):
        export.validate_circuit_json([1, 2])
    with pytest.raises(CircuitError, match="not valid JSON"):
        export.load_circuit("{nodes: ]")


# --------------------------------------------------------------------------- SVG


def _svg_nodes(svg_text):
    root = ET.fromstring(svg_text)
    return root, {g.get("data-name"): g for g in root.iter(f"{SVG}g") if g.get("class") == "node"}


def test_svg_layout_layers_down_heads_across():
    root, nodes = _svg_nodes(export.to_svg(make_circuit()))
    assert root.tag == f"{SVG}svg"
    assert set(nodes) == {"L0H1", "L1H3", "MLP1", "L2H0", "logits"}
    centre = {
        name: (float(g.find(f"{SVG}circle").get("cx")), float(g.find(f"{SVG}circle").get("cy")))
        for name, g in nodes.items()
        if g.find(f"{SVG}circle") is not None
    }
    assert centre["L0H1"][1] < centre["L1H3"][1] < centre["L2H0"][1]  # layer 0 on top
    assert centre["L2H0"][0] < centre["L0H1"][0] < centre["L1H3"][0]  # head index across
    mlp = nodes["MLP1"].find(f"{SVG}rect")
    assert float(mlp.get("x")) > centre["L1H3"][0]  # MLP column right of heads
    edges = [p for p in root.iter(f"{SVG}path") if "edge" in (p.get("class") or "")]
    assert len(edges) == len(make_circuit().edges)
    assert {p.get("class").split()[-1] for p in edges} == {"edge-q", "edge-k", "edge-v", "edge-out"}


def test_svg_role_colours_and_legend():
    c = make_circuit()
    svg = export.to_svg(c)
    root, nodes = _svg_nodes(svg)
    colors = export.role_colors(c)
    for node in c.nodes:
        group = nodes[node.name]
        shape = group.find(f"{SVG}circle") if node.head is not None else group.find(f"{SVG}rect")
        assert shape.get("fill") == colors[node.role]
    assert len(set(colors.values())) == len(colors)
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend")
    texts = [t.text for t in legend.iter(f"{SVG}text")]
    assert {"previous token", "induction", "(no role)", "edge: q", "edge: out"} <= set(texts)


@pytest.mark.parametrize("where", ["role", "model", "method", "title"])
def test_svg_escapes_unsafe_labels(where):
    kwargs = {"role": NASTY} if where in ("role",) else {where: NASTY} if where != "title" else {}
    c = make_circuit(**kwargs)
    svg = export.to_svg(c, title=NASTY if where == "title" else None)
    assert "<script>" not in svg and NASTY not in svg
    root = ET.fromstring(svg)  # well-formed XML despite the label
    texts = [t.text or "" for t in root.iter()]
    assert any(NASTY in t for t in texts)  # the parser gives the original text back
    assert not list(root.iter(f"{SVG}script"))
    if where == "role":
        roles = {g.get("data-role") for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
        assert NASTY in roles


def test_svg_to_file_and_grid_size(tmp_path):
    path = tmp_path / "sub" / "c.svg"
    text = export.to_svg(make_circuit(), path, n_layers=4, n_heads=6)
    assert path.read_text() == text
    root = ET.fromstring(text)
    labels = {t.text for t in root.iter(f"{SVG}text")}
    assert {"L3", "H5"} <= labels and "L4" not in labels
    with pytest.raises(ValueError, match="n_heads=2 is too small.*at least 4"):
        export.to_svg(make_circuit(), n_heads=2)


# --------------------------------------------------------------------------- DOT, Mermaid

_DOT_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _dot_unescape(s):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), s)


def test_dot_structure_and_quoting():
    c = make_circuit(role=NASTY)
    dot = export.to_dot(c)
    assert dot.startswith("digraph circuit {") and dot.rstrip().endswith("}")
    for node in c.nodes:
        assert re.search(rf"^\s+{node.name} \[label=", dot, re.M)
    edge_lines = re.findall(r"^\s+(\w+) -> (\w+) \[label=\"(\w+)", dot, re.M)
    assert edge_lines == [(e.source, e.target, e.kind) for e in c.edges]
    # every line's quotes balance, and the role comes back intact after unescaping
    for line in dot.splitlines():
        stripped = _DOT_STRING.sub("", line)
        assert '"' not in stripped, line
    strings = [_dot_unescape(s) for s in _DOT_STRING.findall(dot)]
    assert any(s == f"L1H3\n{NASTY}\n-0.8" for s in strings)
    assert "subgraph layer_1 { rank=same;" in dot


def _mermaid_unescape(s):
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), s)


def test_mermaid_structure_and_escaping():
    c = make_circuit(role=NASTY)
    text = export.to_mermaid(c)
    assert text.startswith("flowchart TB")
    labels = re.findall(r'^\s+(\w+)(?:\(\(|\[)"([^"]*)"', text, re.M)
    assert [name for name, _ in labels] == ["L0H1", "L1H3", "MLP1", "L2H0"]
    role_label = dict(labels)["L1H3"]
    assert not set("<>&\"'") & set(role_label.replace("<br/>", ""))
    assert _mermaid_unescape(role_label).split("<br/>") == ["L1H3", NASTY, "-0.8"]
    assert len(re.findall(r"-->\|", text)) == len(c.edges)
    assert text.count("classDef role") == len(c.roles)


# --------------------------------------------------------------------------- GraphML, networkx


def _edge_set(graph):
    return sorted((s, t, d["kind"], d.get("weight")) for s, t, d in graph.edges(data=True))


def test_graphml_round_trip(tmp_path):
    c = make_circuit(role=NASTY)
    path = tmp_path / "c.graphml"
    export.to_graphml(c, path)
    graph = nx.read_graphml(path, force_multigraph=True)
    assert set(graph.nodes) == set(c.node_names) | {"logits"}
    assert _edge_set(graph) == sorted((e.source, e.target, e.kind, e.weight) for e in c.edges)
    assert graph.nodes["L1H3"]["role"] == NASTY and graph.nodes["L1H3"]["score"] == -0.8
    assert graph.nodes["L1H3"]["layer"] == 1 and graph.nodes["L1H3"]["head"] == 3
    assert graph.graph["model"] == "world-base" and graph.graph["method"] == "path patching"
    assert export.from_graphml(path) == c


def test_networkx_round_trip_keeps_parallel_edges():
    c = make_circuit()
    graph = export.to_networkx(c)
    assert graph.number_of_edges("L0H1", "L1H3") == 2
    assert export.from_networkx(graph) == c


# --------------------------------------------------------------------------- plotly


def test_circuit_figure_groups_and_edges():
    c = make_circuit(role=NASTY)
    fig = export.circuit_figure(c)
    by_name = {t.name: t for t in fig.data if t.showlegend is not False}
    escaped = NASTY.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert {
        "previous token",
        escaped,
        "(no role)",
        "edge: q",
        "edge: k",
        "edge: v",
        "edge: out",
        "logits",
    } == set(by_name)
    role = by_name[escaped]
    assert list(role.text) == ["L1H3", "L2H0"]
    assert list(zip(role.x, role.y)) == [(3, 1), (0, 2)]  # x = head, y = layer
    assert fig.layout.yaxis.autorange == "reversed"
    assert "<script>" not in role.hovertext[0]
    assert by_name["(no role)"].x == (4,)  # MLP column after the heads
    out = by_name["edge: out"]
    assert sum(v is None for v in out.x) == 2 and out.mode == "lines"


# --------------------------------------------------------------------------- empty, files


def test_empty_circuit_exports_cleanly(tmp_path):
    root = ET.fromstring(export.to_svg(EMPTY))
    assert any("empty circuit" in (t.text or "") for t in root.iter(f"{SVG}text"))
    assert export.to_dot(EMPTY).strip().endswith("}")
    assert export.to_mermaid(EMPTY).strip() == "flowchart TB"
    export.to_graphml(EMPTY, tmp_path / "e.graphml")
    assert nx.read_graphml(tmp_path / "e.graphml").number_of_nodes() == 0
    assert export.from_graphml(tmp_path / "e.graphml") == EMPTY
    fig = export.circuit_figure(EMPTY)
    assert fig.layout.annotations[0].text.startswith("empty circuit")


@pytest.mark.parametrize("suffix", [".json", ".svg", ".dot", ".gv", ".mmd", ".graphml", ".html"])
def test_export_circuit_by_suffix(tmp_path, suffix):
    path = export.export_circuit(make_circuit(), tmp_path / f"circuit{suffix}")
    assert path.is_file() and path.stat().st_size > 100
    if suffix == ".json":
        assert export.load_circuit(path) == make_circuit()
    if suffix == ".html":
        assert (tmp_path / "plotly.min.js").is_file() and "cdn.plot.ly" not in path.read_text()


def test_export_circuit_bad_input(tmp_path):
    with pytest.raises(ValueError, match="suffixes"):
        export.export_circuit(make_circuit(), tmp_path / "c.png")
    with pytest.raises(TypeError, match="Circuit"):
        export.export_circuit(make_circuit().to_dict(), tmp_path / "c.svg")
