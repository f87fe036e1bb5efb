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
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch

from .errors import InvalidArgumentError
from .plots import save_html
from .stats import draw_spread
from .version import __version__

__all__ = [
    "OutputPathError",
    "check_out",
    "write_result",
    "write_text_atomic",
    "write_summary",
    "jsonable",
    "command_line",
    "draw_spread",
]


MODEL_INFO_KEYS = ("name", "architecture", "n_layers", "n_heads", "n_kv_heads", "d_model")


class OutputPathError(InvalidArgumentError):
    """An ``--out`` path that cannot hold a result (a file, or a place that refuses writes)."""


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
    files: Optional[list] = None,
    roles: Optional[list] = None,
    circuits: Optional[list] = None,
    model_info: Optional[dict] = None,
) -> Path:
    """Write OUT/summary.json and return its path (`files`: the names written beside it).

    `roles` and `circuits` (`RoleMap` / `Circuit` objects) are kept as JSON, and `model_info`
    (`Model.info()`) as its shape, so that `interp atlas MODEL --from DIR` can draw the atlas
    of saved results without rerunning them."""
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
    if files is not None:
        summary["files"] = [str(f) for f in files]
    if model_info is not None:
        summary["model_info"] = {k: model_info[k] for k in MODEL_INFO_KEYS if k in model_info}
    if roles is not None:
        summary["roles"] = jsonable([r.to_dict() for r in roles])
    if circuits is not None:
        summary["circuits"] = jsonable([c.to_dict() for c in circuits])
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def write_text_atomic(path, text: str) -> Path:
    """Write `text` to `path` through a hidden file beside it, renamed into place: a reader
    (or an interrupt) sees the old file or the new one, never half of one."""
    path = Path(path)
    partial = path.parent / f".{path.name}.writing"
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


def check_out(out_dir, flag: str = "--out") -> Path:
    """Refuse an output folder that cannot be written, before any work is done, and return it.

    `OutputPathError` (an `InvalidArgumentError`) names the path and the fix when OUT is a
    file, when a folder on the way to it is a file, or when the nearest folder that exists
    refuses new files (read-only, no permission). Every CLI analyzer calls this before it
    loads a model, so a bad ``--out`` costs nothing; `write_result` calls it again.

        >>> import tempfile
        >>> check_out(Path(tempfile.mkdtemp()) / "new" / "folder").name
        'folder'
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputPathError(
            f"{flag} {out} is a file; results go into a folder: give a folder path (new, "
            "empty, or an earlier result to replace)"
        )
    base = out.absolute().parent
    while not base.exists():
        base = base.parent
    if not base.is_dir():
        raise OutputPathError(f"{flag} {out}: {base} is a file, so no folder can be made there")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.check-", dir=base))
    except OSError as err:
        raise OutputPathError(
            f"{flag} {out} cannot be written: {base} refuses new files ({err.strerror}); "
            "give a folder you can write to"
        ) from None
    return out


def write_result(
    result, out_dir, *, command: Optional[str] = None, cost=None, files=None, model_info=None
) -> Path:
    """Write any analyzer result (`interp.analysis.AnalysisResult`) into OUT and return the
    path of its summary.json. Every analyzer's ``--out DIR`` goes through here.

    OUT gets one HTML page per figure (``NAME.html``), the result's data files (its
    ``write_files(folder)`` when it has one, then `files(folder)` when given) and
    ``summary.json`` with the numbers, provenance, the roles and circuits it found (the atlas
    reads them back), (given an `interp.cost.Cost`) the cost, (given ``model.info()``) the
    model's shape, and the list of every file written (``files``).

    Atomic: everything is written into a hidden folder beside OUT, which is then renamed to
    OUT, so an interrupt or a crash leaves the earlier result whole (or no folder), never new
    figures beside an old summary. What an earlier result wrote and this one does not (a stale
    figure) goes away with it; anything else in OUT (a user's notes, a nested result folder)
    is kept."""
    out = check_out(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.writing-", dir=out.parent))
    try:
        figures = result.figures()
        for name, fig in figures.items():
            save_html(fig, staging / f"{name}.html")
        write_files = getattr(result, "write_files", None)
        if write_files is not None:
            write_files(staging)
        if files is not None:
            files(staging)
        prov = result.provenance()
        write_summary(
            staging,
            result.analyzer,
            result.numbers(),
            model=prov["model"],
            command=command,
            seeds=prov.get("seeds"),
            data=prov.get("data"),
            figures=[out / f"{name}.html" for name in figures],
            cost=cost,
            roles=_found(result, "roles"),
            circuits=_found(result, "circuits"),
            model_info=model_info,
            files=sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
            + ["summary.json"],
        )
        _swap_in(staging, out)
        return out / "summary.json"
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _found(result, what: str) -> Optional[list]:
    """`result.roles()` / `result.circuits()`, or None for a result without them (a summary
    then has no such key, as before summaries kept them)."""
    method = getattr(result, what, None)
    return list(method()) if callable(method) else None


def _written_by_interp(out: Path) -> set:
    """The top-level names in an earlier result folder that interp wrote (its summary's
    ``files``; for summaries older than that list, its figures), plus the shared names."""
    owned = {"summary.json", "plotly.min.js"}
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return owned
    if not isinstance(summary, dict):
        return owned
    if isinstance(summary.get("files"), list):  # relative paths: keep the top-level name
        owned.update(Path(str(name)).parts[0] for name in summary["files"] if str(name))
    elif isinstance(summary.get("figures"), list):  # older summaries: the figures' file names
        owned.update(Path(str(name)).name for name in summary["figures"])
    return owned


def _swap_in(staging: Path, out: Path) -> None:
    """Rename `staging` to `out`. An existing `out` is renamed aside first; what in it interp
    did not write, and the new result does not replace, is moved into the new folder before
    the old one is removed. An interrupt between the renames leaves the earlier folder whole
    beside OUT as ``.OUT.old-*``."""
    if not out.exists():
        os.rename(staging, out)
        return
    owned = _written_by_interp(out)
    keep = [
        e.name for e in out.iterdir() if e.name not in owned and not (staging / e.name).exists()
    ]
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    os.rename(staging, out)
    for name in keep:
        os.rename(old / name, out / name)
    shutil.rmtree(old, ignore_errors=True)
