"""A circuit as a ``networkx.MultiDiGraph`` and as GraphML (Gephi, yEd, Cytoscape), both ways.

GraphML has no null, so absent values are left out; lists and dicts travel as JSON text."""

from __future__ import annotations

import json
import os
from typing import Union
from xml.etree import ElementTree

import networkx as nx

from ..circuit import Circuit, CircuitError
from .layout import LOGITS, uses_logits, write_text
from .schema import load_circuit


def to_networkx(circuit: Circuit):
    """A ``networkx.MultiDiGraph`` (a pair may be joined by a q and a k edge), keyed by node name.

    Node attributes: role, layer, kind ("head" | "mlp" | "logits"), head, score, positions
    (JSON text), meta (JSON text); edge attributes: kind, weight, order (index in the circuit);
    graph attributes: model, method, schema_version, meta (JSON text). Absent values are left
    out (GraphML has no null).
    """
    graph = nx.MultiDiGraph(
        model=circuit.model,
        method=circuit.method,
        schema_version=circuit.to_dict()["schema_version"],
        meta=json.dumps(circuit.meta, sort_keys=True),
    )
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
    if uses_logits(circuit):
        graph.add_node(LOGITS, kind="logits")
    for order, edge in enumerate(circuit.edges):
        attrs = {"kind": edge.kind, "order": order} | (
            {} if edge.weight is None else {"weight": edge.weight}
        )
        graph.add_edge(edge.source, edge.target, **attrs)
    return graph


def from_networkx(graph) -> Circuit:
    """The `Circuit` of a graph written by `to_networkx` (or read back from GraphML)."""
    data = {
        "schema_version": str(graph.graph.get("schema_version", "1.0")),
        "model": str(graph.graph.get("model", "")),
        "method": str(graph.graph.get("method", "")),
        "meta": json.loads(graph.graph.get("meta", "{}")),
        "nodes": [],
        "edges": [],
    }
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
    text = "\n".join(nx.generate_graphml(to_networkx(circuit))) + "\n"
    write_text(path, text)
    return text


def from_graphml(path: Union[str, os.PathLike]) -> Circuit:
    """Read a GraphML file written by `to_graphml` back into a validated `Circuit`."""
    try:
        graph = nx.read_graphml(path, force_multigraph=True)
    except (ElementTree.ParseError, nx.NetworkXError, KeyError, ValueError) as err:
        raise CircuitError(
            f"{path} is not GraphML that to_graphml writes ({type(err).__name__}: {err}); "
            "export it again with interp.export.to_graphml"
        ) from None
    return from_networkx(graph)
