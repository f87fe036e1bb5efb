"""The head atlas: one self-contained HTML page of every role every analyzer found.

A layer x head grid; each cell lists the roles its head plays (retrieval, memory, context,
factual-recall, induction, an entity-tracking group, ...) with the score behind each role, and a
click shows the details. Below the grid, each analyzer's causal check (what pruning the named
heads did, against random heads) and the circuit diagrams (inline SVG). The page needs no
network and no other file: styles, script and figures are inline.

    >>> entry = RoleMap("retrieval", "retrieval heads (Wu et al.)", {"L2H1": 0.61},
    ...                 causal_check={"NIAH drop, top-k pruned": 0.7, "NIAH drop, random": 0.02})
    >>> html_text = atlas_html({"name": "world-base", "n_layers": 4, "n_heads": 8}, [entry])
    >>> "L2H1" in html_text and "retrieval" in html_text
    True
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from .heads import Head

__all__ = ["RoleMap", "atlas_html", "write_atlas", "ROLE_COLORS"]

ROLE_COLORS = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#7f7f7f",
    "#8c564b",
    "#17becf",
    "#bcbd22",
)


@dataclass
class RoleMap:
    """Heads that play `role`, with their scores, as found by one analyzer.

    heads: {"L2H1": score, ...} (any head spelling `Head.parse` reads).
    causal_check: the analyzer's causal numbers (e.g. accuracy with the heads pruned vs random).
    """

    role: str
    analyzer: str
    heads: dict
    causal_check: dict = field(default_factory=dict)
    note: str = ""

    def parsed(self) -> dict[Head, float]:
        return {Head.parse(h): float(s) for h, s in self.heads.items()}


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _cells(info: dict, roles: Sequence[RoleMap], colors: dict[str, str]) -> str:
    n_layers, n_heads = int(info["n_layers"]), int(info["n_heads"])
    by_head: dict[Head, list[tuple[RoleMap, float]]] = {}
    for role_map in roles:
        for head, score in role_map.parsed().items():
            if head.layer >= n_layers or head.head >= n_heads:
                raise ValueError(
                    f"{role_map.analyzer} names {head}, outside the {n_layers}x{n_heads} model"
                )
            by_head.setdefault(head, []).append((role_map, score))
    rows = ["<tr><th></th>" + "".join(f"<th>H{h}</th>" for h in range(n_heads)) + "</tr>"]
    for layer in range(n_layers):
        cells = [f"<th>L{layer}</th>"]
        for h in range(n_heads):
            head = Head(layer, h)
            found = by_head.get(head, [])
            chips = "".join(
                f'<span class="chip" style="background:{colors[r.role]}" '
                f'title="{_e(r.role)}: {_fmt(s)}">'
                f"{_e(r.role)} {_fmt(s)}</span>"
                for r, s in found
            )
            detail = _e(json.dumps({r.role: s for r, s in found}))
            cells.append(
                f'<td class="cell{" has" if found else ""}" data-head="{head}" '
                f'data-roles="{detail}"><div class="name">{head}</div>{chips}</td>'
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return '<table class="grid">' + "".join(rows) + "</table>"


def _checks(roles: Sequence[RoleMap]) -> str:
    parts = []
    for role_map in roles:
        if not role_map.causal_check and not role_map.note:
            continue
        items = "".join(
            f"<li>{_e(k)}: <b>{_e(_fmt(v))}</b></li>" for k, v in role_map.causal_check.items()
        )
        note = f"<p>{_e(role_map.note)}</p>" if role_map.note else ""
        parts.append(
            f"<div class='check'><h3>{_e(role_map.role)} <small>({_e(role_map.analyzer)})</small>"
            f"</h3>{note}<ul>{items}</ul></div>"
        )
    return "".join(parts)


def _circuits(circuits, info) -> str:
    from .export import to_svg

    parts = []
    for circuit in circuits:
        svg = to_svg(circuit, n_layers=int(info["n_layers"]), n_heads=int(info["n_heads"]))
        parts.append(f"<div class='circuit'><h3>{_e(circuit.method)}</h3>{svg}</div>")
    return "".join(parts)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table.grid{border-collapse:collapse}
.grid th{font-size:12px;color:#555;padding:2px 6px}
.cell{border:1px solid #ddd;min-width:84px;height:54px;vertical-align:top;padding:2px;\
cursor:pointer}
.cell.has{background:#fafafa}
.cell .name{font-size:10px;color:#999}
.chip{display:block;color:#fff;font-size:10px;border-radius:3px;margin:1px 0;padding:0 3px;\
white-space:nowrap}
.legend span{display:inline-block;color:#fff;border-radius:3px;padding:1px 6px;margin:2px;\
font-size:12px;cursor:pointer}
.legend span.off{opacity:.3}
#detail{margin:1em 0;padding:.5em;border-left:4px solid #0072B2;background:#f4f8fb;min-height:1.5em}
.check{display:inline-block;vertical-align:top;margin:0 2em 1em 0}
.circuit{margin:1em 0}
"""

_SCRIPT = """
document.querySelectorAll('.cell').forEach(function(td){
  td.addEventListener('click', function(){
    var roles = JSON.parse(td.getAttribute('data-roles') || '{}');
    var keys = Object.keys(roles);
    var text = td.getAttribute('data-head') + ': ' + (keys.length ? keys.map(function(k){
      return k + ' = ' + roles[k];}).join(', ') : 'no role found');
    document.getElementById('detail').textContent = text;
  });
});
document.querySelectorAll('.legend span').forEach(function(chip){
  chip.addEventListener('click', function(){
    chip.classList.toggle('off');
    var role = chip.getAttribute('data-role');
    document.querySelectorAll('.chip').forEach(function(c){
      if (c.title.indexOf(role + ':') === 0) { c.style.display = \
chip.classList.contains('off') ? 'none' : 'block'; }
    });
  });
});
"""


def atlas_html(
    info: dict,
    roles: Sequence[RoleMap],
    circuits: Sequence = (),
    *,
    title: Optional[str] = None,
    notes: Sequence[str] = (),
) -> str:
    """The atlas page as one HTML string (no external resources)."""
    names = list(dict.fromkeys(r.role for r in roles))
    colors = {role: ROLE_COLORS[i % len(ROLE_COLORS)] for i, role in enumerate(names)}
    legend = "".join(
        f'<span style="background:{c}" data-role="{_e(r)}">{_e(r)}</span>'
        for r, c in colors.items()
    )
    title = title or f"Head atlas: {info.get('name', 'model')}"
    facts = ", ".join(
        f"{_e(k)} {_e(v)}"
        for k, v in info.items()
        if k in ("architecture", "n_layers", "n_heads", "n_kv_heads", "d_model")
    )
    notes_html = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1><p>{facts}</p>"
        f"<div class='legend'>{legend}</div><p><small>Click a head for its roles; click a role to "
        f"hide or show it.</small></p>{_cells(info, roles, colors)}<div id='detail'></div>"
        f"<h2>Causal checks</h2>{_checks(roles) or '<p>none recorded</p>'}"
        f"<h2>Circuits</h2>{_circuits(circuits, info) or '<p>none found</p>'}"
        f"<h2>Notes</h2><ul>{notes_html}</ul><script>{_SCRIPT}</script></body></html>"
    )


def write_atlas(path, info: dict, roles: Sequence[RoleMap], circuits: Sequence = (), **kw) -> Path:
    """Write the atlas page to `path` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(atlas_html(info, roles, circuits, **kw), encoding="utf-8")
    return path
