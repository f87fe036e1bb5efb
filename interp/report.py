"""Machine-readable results: every analyzer's ``--out DIR`` writes ``summary.json``.

The summary holds every number an analyzer claims, with what produced it (model, data sizes,
seeds, the command line, versions), so a reader can check a claim without rerunning anything.

    >>> write_summary("figures/retrieval", "retrieval", {"share_above_0.1": 0.06},
    ...               model="world-base",
    ...               command="interp retrieval world-base --out figures/retrieval",
    ...               seeds={"data": 0}, data={"n_prompts": 120})          # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any, Optional

import torch

from .plots import save_html
from .stats import draw_spread
from .version import __version__

__all__ = ["write_result", "write_summary", "jsonable", "command_line", "draw_spread"]


def command_line() -> str:
    """The command that is running, as a user would retype it."""
    args = sys.argv[:]
    if args and args[0].endswith(("interp", "__main__.py")):
        args[0] = "interp"
    return " ".join(args)


def jsonable(value: Any) -> Any:
    """Tensors, numpy values, paths and dataclass-like objects as plain JSON values (NaN ->
    None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return jsonable(value.tolist())
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return jsonable(value.tolist())
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def write_summary(
    out_dir,
    analyzer: str,
    numbers: dict,
    *,
    model: str,
    command: Optional[str] = None,
    seeds: Optional[dict] = None,
    data: Optional[dict] = None,
    figures: Optional[list] = None,
    cost=None,
) -> Path:
    """Write OUT/summary.json and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "analyzer": analyzer,
        "model": model,
        "numbers": jsonable(numbers),
        "data": jsonable(data or {}),
        "seeds": jsonable(seeds or {}),
        "figures": [str(f) for f in (figures or [])],
        "command": command or command_line(),
        "versions": {
            "interp": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if cost is not None:
        summary["cost"] = jsonable(cost.to_dict())
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def write_result(result, out_dir, *, command: Optional[str] = None, cost=None) -> Path:
    """Write any analyzer result (`interp.analysis.AnalysisResult`) into OUT: one HTML page per
    figure (``NAME.html``) and ``summary.json`` with its numbers, provenance and (given an
    `interp.cost.Cost`) its cost. Returns the summary's path. Every analyzer's ``--out DIR``
    goes through here.

    The files are written into a hidden folder beside OUT first and moved in when all are
    written, the old summary.json removed first and the new one moved last: an interrupted
    write leaves the previous result or no summary.json, never a summary beside other
    figures. Files in OUT that this result does not write are left alone."""
    out = Path(out_dir)
    staging = out.parent / f".{out.name}.writing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for name, fig in result.figures().items():
            save_html(fig, staging / f"{name}.html")
        prov = result.provenance()
        write_summary(
            staging,
            result.analyzer,
            result.numbers(),
            model=prov["model"],
            command=command,
            seeds=prov.get("seeds"),
            data=prov.get("data"),
            figures=[out / f"{name}.html" for name in result.figures()],
            cost=cost,
        )
        return _move_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_in(staging: Path, out: Path) -> Path:
    """Move every file of `staging` into `out`, summary.json last (the old one removed first)."""
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "summary.json"
    summary.unlink(missing_ok=True)
    for path in sorted(staging.iterdir()):
        if path.name != "summary.json":
            os.replace(path, out / path.name)
    os.replace(staging / "summary.json", summary)
    return summary
