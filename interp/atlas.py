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
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from .checks import Check
from .errors import InvalidArgumentError
from .export.svg import to_svg
from .heads import Head
from .role_overlap import role_overlap

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
    checks: the same checks as sentences with a pass/fail mark against their stated controls
    (`interp.checks.Check`); the atlas shows these and keeps the numbers one click away.
    """

    role: str
    analyzer: str
    heads: dict
    causal_check: dict = field(default_factory=dict)
    note: str = ""
    checks: Sequence[Check] = ()

    def parsed(self) -> dict[Head, float]:
        return {Head.parse(h): float(s) for h, s in self.heads.items()}

    def to_dict(self) -> dict:
        """The role as JSON: every analyzer's `summary.json` keeps its roles this way, so an
        atlas can be rebuilt from saved results (`roles_from_summaries`) without a rerun."""
        return {
            "role": self.role,
            "analyzer": self.analyzer,
            "heads": {str(h): s for h, s in self.parsed().items()},
            "causal_check": dict(self.causal_check),
            "note": self.note,
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "RoleMap":
        """The role `to_dict` wrote; an InvalidArgumentError naming what is missing when `data`
        is not one."""
        if not isinstance(data, dict) or not {"role", "analyzer", "heads"} <= set(data):
            got = data
            if isinstance(data, dict):
                got = "an object without " + ", ".join(
                    k for k in ("role", "analyzer", "heads") if k not in data
                )
            raise InvalidArgumentError(
                f"a role is an object with role, analyzer and heads (RoleMap.to_dict()); "
                f"got {str(got)[:80]}"
            )
        heads, checks = data["heads"], data.get("checks", ())
        if not isinstance(heads, dict) or not all(
            isinstance(s, numbers.Real) and not isinstance(s, bool) for s in heads.values()
        ):
            raise InvalidArgumentError(
                f"role {data['role']!r}: heads must map head names to scores, e.g. "
                f"{{'L2H1': 0.6}}, got {str(heads)[:80]}"
            )
        if not isinstance(checks, (list, tuple)):
            raise InvalidArgumentError(
                f"role {data['role']!r}: checks must be a list of checks, got {str(checks)[:80]}"
            )
        return cls(
            str(data["role"]),
            str(data["analyzer"]),
            {str(h): float(s) for h, s in data["heads"].items()},
            dict(data.get("causal_check", {})),
            str(data.get("note", "")),
            tuple(Check.from_dict(c) for c in data.get("checks", ())),
        )


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


_HEAD_PX, _LABEL_PX = 104, 30  # a head column and the layer-label column (fixed table layout)


def _cells(info: dict, roles: Sequence[RoleMap], colors: dict[str, str]) -> str:
    n_layers, n_heads = int(info["n_layers"]), int(info["n_heads"])
    by_head: dict[Head, list[tuple[RoleMap, float]]] = {}
    for role_map in roles:
        for head, score in role_map.parsed().items():
            if head.layer >= n_layers or head.head >= n_heads:
                raise InvalidArgumentError(
                    f"{role_map.analyzer} names {head}, outside the {n_layers}x{n_heads} model: "
                    "give roles of this model's heads (zero-based layers and heads)"
                )
            by_head.setdefault(head, []).append((role_map, score))
    head_row = "".join(f"<th class='col'>H{h}</th>" for h in range(n_heads))
    rows = []
    for layer in range(n_layers):
        cells = [f"<th class='row'>L{layer}</th>"]
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
    # a scroll box with sticky head and layer labels: any head count fits, none is cut off
    return (
        f'<div class="gridwrap"><table class="grid" '
        f'style="width:{_LABEL_PX + _HEAD_PX * n_heads}px"><thead><tr>'
        f'<th class="corner"></th>'
        f'{head_row}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


_MARKS = {  # Check.passed -> (css class, mark, what the mark means)
    True: ("pass", "\u2713", "met"),
    False: ("fail", "\u2717", "not met"),
    None: ("none", "\u00b7", "no bar stated"),
}


def _sentences(checks: Sequence[Check]) -> str:
    """Each check as a sentence with a pass (check mark) or fail (cross) mark."""
    items = []
    for check in checks:
        css, mark, label = _MARKS[check.passed]
        items.append(
            f"<li class='{css}'><span class='mark' title='{label}'>{mark}</span> "
            f"{_e(check.sentence())}</li>"
        )
    return f"<ul class='sentences'>{''.join(items)}</ul>"


def _checks(roles: Sequence[RoleMap]) -> str:
    """Per role: its note, its checks as sentences, and the raw numbers behind a click."""
    parts = []
    for role_map in roles:
        if not (role_map.causal_check or role_map.note or role_map.checks):
            continue
        numbers = "".join(
            f"<li>{_e(k)}: <b>{_e(_fmt(v))}</b></li>" for k, v in role_map.causal_check.items()
        )
        if numbers and role_map.checks:
            numbers = f"<details><summary>numbers</summary><ul>{numbers}</ul></details>"
        elif numbers:
            numbers = f"<ul>{numbers}</ul>"
        note = f"<p>{_e(role_map.note)}</p>" if role_map.note else ""
        sentences = _sentences(role_map.checks) if role_map.checks else ""
        parts.append(
            f"<div class='check'><h3>{_e(role_map.role)} <small>({_e(role_map.analyzer)})</small>"
            f"</h3>{note}{sentences}{numbers}</div>"
        )
    return "".join(parts)


def _overlap(roles: Sequence[RoleMap], info: dict) -> str:
    """The heads each pair of roles shares, against chance (`interp.role_overlap`)."""
    rows = role_overlap(roles, int(info["n_layers"]) * int(info["n_heads"]))
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{_e(r['roles'][0])} ({r['sizes'][0]})</td><td>{_e(r['roles'][1])} "
        f"({r['sizes'][1]})</td><td>{len(r['shared'])}</td><td>{r['expected_by_chance']:.2f}</td>"
        f"<td>{r['p_at_least_shared']:.2g}</td><td>{_e(', '.join(r['shared']))}</td></tr>"
        for r in rows
    )
    return (
        "<h2>Heads shared between roles</h2><table class='overlap'><tr><th>role (heads)</th>"
        "<th>role (heads)</th><th>shared</th><th>by chance</th><th>p(&ge; shared)</th>"
        f"<th>heads</th></tr>{body}</table><p><small>by chance: the mean count if one role "
        "were a random set of its size; p: the hypergeometric chance of sharing at least as "
        "many.</small></p>"
    )


def _circuits(circuits, info) -> str:
    parts = []
    for circuit in circuits:
        svg = to_svg(circuit, n_layers=int(info["n_layers"]), n_heads=int(info["n_heads"]))
        parts.append(f"<div class='circuit'><h3>{_e(circuit.method)}</h3>{svg}</div>")
    return "".join(parts)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
.gridwrap{overflow:auto;max-width:100%;max-height:80vh;border:1px solid #eee}
table.grid{border-collapse:separate;border-spacing:0;table-layout:fixed}
.grid th{font-size:12px;color:#555;padding:2px 6px;background:#fff}
.grid th.col,.grid th.corner{position:sticky;top:0;z-index:2}
.grid th.row,.grid th.corner{position:sticky;left:0;z-index:1}
.grid th.corner{z-index:3}
.cell{border:1px solid #ddd;height:54px;vertical-align:top;padding:2px;\
cursor:pointer}
.cell.has{background:#fafafa}
.cell .name{font-size:10px;color:#999}
.chip{display:block;color:#fff;font-size:10px;border-radius:3px;margin:1px 0;padding:0 3px;\
overflow-wrap:anywhere}
.legend span{display:inline-block;color:#fff;border-radius:3px;padding:1px 6px;margin:2px;\
font-size:12px;cursor:pointer}
.legend span.off{opacity:.3}
#detail{margin:1em 0;padding:.5em;border-left:4px solid #0072B2;background:#f4f8fb;min-height:1.5em}
.check{margin:0 0 1.2em 0;max-width:72em}
.check details{font-size:13px;color:#555}
.sentences{list-style:none;padding-left:0;margin:.3em 0}
.sentences li{margin:.35em 0;line-height:1.35}
.mark{display:inline-block;width:1.3em;font-weight:bold}
.pass .mark{color:#009E73}.fail .mark{color:#D55E00}.none .mark{color:#999}
.circuit{margin:1em 0}
table.overlap{border-collapse:collapse;font-size:13px}
.overlap td,.overlap th{border:1px solid #ddd;padding:2px 8px;text-align:left}
"""
_STYLE += f".grid th.col{{width:{_HEAD_PX}px}}.grid th.corner{{width:{_LABEL_PX}px}}\n"

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
        f"{_overlap(roles, info)}"
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
