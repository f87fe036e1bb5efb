"""``export_circuit``: write a circuit in the format its file suffix names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from ..circuit import Circuit
from ..errors import ArgumentTypeError, InvalidArgumentError
from ..plots import save_html
from .dot import to_dot
from .figure import circuit_figure
from .graphml import to_graphml
from .mermaid import to_mermaid
from .svg import to_svg

EXPORT_FORMATS = {
    ".json": "json",
    ".svg": "svg",
    ".dot": "dot",
    ".gv": "dot",
    ".mmd": "mermaid",
    ".graphml": "graphml",
    ".html": "plotly",
}


def export_circuit(circuit: Circuit, path: Union[str, os.PathLike], **kw) -> Path:
    """Write `circuit` in the format its suffix names (see `EXPORT_FORMATS`); return the path.

    ``.html`` writes the plotly figure via `interp.plots.save_html` (plotly.js beside the page).
    """
    if not isinstance(circuit, Circuit):
        raise ArgumentTypeError(
            f"export_circuit needs an interp.circuit.Circuit, got {type(circuit).__name__}"
        )
    path = Path(path)
    fmt = EXPORT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidArgumentError(
            f"cannot tell the export format from {path.name!r}; use one of the suffixes "
            f"{sorted(EXPORT_FORMATS)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        if kw:
            raise ArgumentTypeError(f"JSON export takes no options, got {sorted(kw)}")
        circuit.to_json(path)
    elif fmt == "plotly":
        save_html(circuit_figure(circuit, **kw), path)
    else:
        {"svg": to_svg, "dot": to_dot, "mermaid": to_mermaid, "graphml": to_graphml}[fmt](
            circuit, path, **kw
        )
    return path
