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

from .dot import to_dot as to_dot
from .figure import circuit_figure as circuit_figure
from .files import EXPORT_FORMATS as EXPORT_FORMATS
from .files import export_circuit as export_circuit
from .graphml import from_graphml as from_graphml
from .graphml import from_networkx as from_networkx
from .graphml import to_graphml as to_graphml
from .graphml import to_networkx as to_networkx
from .layout import EDGE_COLORS as EDGE_COLORS
from .layout import LOGITS as LOGITS
from .layout import role_colors as role_colors
from .mermaid import to_mermaid as to_mermaid
from .schema import SCHEMA_PATH as SCHEMA_PATH
from .schema import circuit_schema as circuit_schema
from .schema import load_circuit as load_circuit
from .schema import validate_circuit_json as validate_circuit_json
from .svg import to_svg as to_svg

__all__ = [
    "SCHEMA_PATH",
    "circuit_schema",
    "validate_circuit_json",
    "load_circuit",
    "to_svg",
    "to_dot",
    "to_mermaid",
    "to_networkx",
    "from_networkx",
    "to_graphml",
    "from_graphml",
    "circuit_figure",
    "export_circuit",
    "role_colors",
    "EXPORT_FORMATS",
]
