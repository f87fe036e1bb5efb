"""The path-patching groups as an `interp.circuit.Circuit`: one node per head (role, group,
position, score) and one edge per path: value fetchers -> logits, and each later group's
senders -> the heads of the group they feed (`receiver_group`), on the receiver site.
Its figure is `interp.export.circuit_figure`, the one circuit figure of the toolkit.
"""

from __future__ import annotations

from interp.circuit import Circuit

from .config import GROUPS
from .discovery import receiver_group

__all__ = ["build_circuit", "METHOD"]

METHOD = "path patching (Prakash et al. 2024)"


def build_circuit(model, groups: dict, scores: dict, meta: dict) -> Circuit:
    """The circuit of `groups` ({key: [Head]}), node scores and edge weights from `scores`
    ({key: HeadScores}), `meta` stored with it."""
    circuit = Circuit(model=model.name, method=METHOD, meta=meta)
    for key, role, _, position in GROUPS:
        for head in groups.get(key, []):
            circuit = circuit.add_node(
                str(head),
                role=role,
                positions=(position,),
                group=key,
                score=float(scores[key].scores[head.layer, head.head]),
            )
    for head in groups.get("A", []):
        circuit = circuit.add_edge(str(head), "logits", kind="out")
    for key, _, site, _ in GROUPS[1:]:
        prev = receiver_group(key, groups)
        for sender in groups.get(key, []):
            weight = float(scores[key].scores[sender.layer, sender.head])
            for receiver in groups.get(prev, []):
                circuit = circuit.add_edge(str(sender), str(receiver), kind=site, weight=weight)
    return circuit
