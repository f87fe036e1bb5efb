"""`Circuit`: heads (and MLPs) with roles, the edges between them, and where they came from.

A circuit is what path patching, DCM or any analyzer that names a group of components returns:

    >>> c = Circuit(model="world-base", method="path patching")
    >>> c = c.add_node("L3H1", role="value fetcher", score=-0.42)
    >>> c = c.add_node("L2H5", role="position transmitter", score=-0.2)
    >>> c = c.add_edge("L2H5", "L3H1", kind="q", weight=0.3)
    >>> [str(h) for h in c.heads("value fetcher")]
    ['L3H1']
    >>> Circuit.from_json(c.to_json()) == c
    True

Node names are ``L{layer}H{head}`` for heads and ``MLP{layer}`` for MLP blocks. Edge kinds say
which input of the receiver the sender writes to: ``q``, ``k``, ``v``, or ``out`` (the logits /
residual stream). The JSON form is documented by ``interp/schemas/circuit.schema.json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from .errors import InterpError, InvalidArgumentError
from .heads import Head
from .jsonio import read_json_text, write_json_text

__all__ = ["Circuit", "Node", "Edge", "CircuitError", "EDGE_KINDS"]

EDGE_KINDS = ("q", "k", "v", "out")
SCHEMA_VERSION = "1.0"
_MLP = re.compile(r"^MLP(\d+)$")
_HEAD = re.compile(r"^L(\d+)H(\d+)$")


class CircuitError(InvalidArgumentError):
    """Invalid circuit data; the message names the failing field."""


FIELDS = ("schema_version", "model", "method", "nodes", "edges", "meta")
NODE_FIELDS = ("name", "role", "score", "positions", "meta")
EDGE_FIELDS = ("source", "target", "kind", "weight")


def check_schema_version(version) -> None:
    """Refuse a circuit document of another schema version than the one this interp writes: read
    as this version, a newer one's fields would be dropped and the file re-exported as
    `SCHEMA_VERSION` without saying so."""
    if version != SCHEMA_VERSION:  # only the string "1.0" equals it
        raise CircuitError(
            f"circuit field schema_version: {version!r} is not the version this interp reads "
            f"({SCHEMA_VERSION!r}); a newer version may carry fields this one would drop: "
            "upgrade interp, or write the file with schema_version "
            f"{SCHEMA_VERSION!r}"
        )


def check_fields(data: dict, allowed: tuple[str, ...], where: str) -> None:
    """Refuse fields a circuit document (or one of its nodes or edges) does not have."""
    extra = sorted(str(key) for key in data if key not in allowed)
    if extra:
        raise CircuitError(
            f"circuit field {where}{extra[0]}: unknown field(s) {extra}; allowed: "
            f"{list(allowed)} (put free-form details under 'meta')"
        )


@dataclass(frozen=True)
class Node:
    name: str
    role: str = ""
    score: Optional[float] = None
    positions: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if not (_HEAD.match(self.name) or _MLP.match(self.name)):
            raise CircuitError(
                f"node name {self.name!r} must be 'L{{layer}}H{{head}}' or 'MLP{{layer}}'"
            )

    @property
    def layer(self) -> int:
        match = _HEAD.match(self.name) or _MLP.match(self.name)
        return int(match.group(1))

    @property
    def head(self) -> Optional[Head]:
        match = _HEAD.match(self.name)
        return Head(int(match.group(1)), int(match.group(2))) if match else None

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"name": self.name, "role": self.role}
        if self.score is not None:
            data["score"] = self.score
        if self.positions:
            data["positions"] = list(self.positions)
        if self.meta:
            data["meta"] = self.meta
        return data


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str = "out"
    weight: Optional[float] = None

    def __post_init__(self):
        if self.kind not in EDGE_KINDS:
            raise CircuitError(f"edge kind {self.kind!r} must be one of {EDGE_KINDS}")

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"source": self.source, "target": self.target, "kind": self.kind}
        if self.weight is not None:
            data["weight"] = self.weight
        return data


@dataclass(frozen=True)
class Circuit:
    model: str
    method: str
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()
    meta: dict = field(default_factory=dict)

    # --- building -------------------------------------------------------------------------

    def add_node(
        self, name, role: str = "", score: Optional[float] = None, positions=(), **meta
    ) -> "Circuit":
        if not _MLP.match(str(name)):
            try:
                name = str(Head.parse(name))
            except InterpError as err:
                raise CircuitError(f"node name {name!r}: {err}") from None
        name = str(name)
        if name in self.node_names:
            raise CircuitError(f"node {name} is already in the circuit")
        node = Node(name, role, None if score is None else float(score), tuple(positions), meta)
        return replace(self, nodes=self.nodes + (node,))

    def add_edge(
        self, source, target, kind: str = "out", weight: Optional[float] = None
    ) -> "Circuit":
        names = self.node_names
        for end in (source, target):
            if str(end) not in names and str(end) != "logits":
                raise CircuitError(f"edge end {end!r} is not a node of the circuit (add it first)")
        return replace(
            self,
            edges=self.edges
            + (Edge(str(source), str(target), kind, None if weight is None else float(weight)),),
        )

    # --- reading --------------------------------------------------------------------------

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def roles(self) -> list[str]:
        return list(dict.fromkeys(n.role for n in self.nodes))

    def heads(self, role: Optional[str] = None) -> list[Head]:
        return [
            n.head for n in self.nodes if n.head is not None and (role is None or n.role == role)
        ]

    def __len__(self) -> int:
        return len(self.nodes)

    # --- serialising ----------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "method": self.method,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "meta": self.meta,
        }

    def to_json(self, path=None, indent: int = 2) -> str:
        return write_json_text(self.to_dict(), path, indent)

    @classmethod
    def from_dict(cls, data: dict) -> "Circuit":
        if not isinstance(data, dict):
            raise CircuitError(f"a circuit must be a JSON object, got {type(data).__name__}")
        if "schema_version" in data:  # absent: a dict built in code, read as this version
            check_schema_version(data["schema_version"])
        check_fields(data, FIELDS, "")
        for key in ("model", "method", "nodes"):
            if key not in data:
                raise CircuitError(f"circuit JSON is missing the field '{key}'")
        circuit = cls(str(data["model"]), str(data["method"]), meta=dict(data.get("meta", {})))
        for i, node in enumerate(data["nodes"]):
            if not isinstance(node, dict) or "name" not in node:
                raise CircuitError(f"nodes[{i}] must be an object with a 'name' field")
            check_fields(node, NODE_FIELDS, f"nodes[{i}].")
            circuit = circuit.add_node(
                node["name"],
                node.get("role", ""),
                node.get("score"),
                node.get("positions", ()),
                **node.get("meta", {}),
            )
        for i, edge in enumerate(data.get("edges", [])):
            missing = [
                k for k in ("source", "target") if not isinstance(edge, dict) or k not in edge
            ]
            if missing:
                raise CircuitError(f"edges[{i}] is missing the field '{missing[0]}'")
            check_fields(edge, EDGE_FIELDS, f"edges[{i}].")
            circuit = circuit.add_edge(
                edge["source"], edge["target"], edge.get("kind", "out"), edge.get("weight")
            )
        return circuit

    @classmethod
    def from_json(cls, text_or_path: str) -> "Circuit":
        return cls.from_dict(read_json_text(text_or_path, CircuitError, "circuit"))
