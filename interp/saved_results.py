"""Saved analyzer results read back: the roles, circuits and model shape that every
``summary.json`` keeps, so an atlas of a slow model is drawn from runs already made.

A results folder holds one sub-folder per analyzer, each with the ``summary.json`` its
``interp <analyzer> MODEL --out DIR/<name>`` wrote (`interp.report.write_result`)::

    results/smollm2-135m/
        retrieval/summary.json
        induction/summary.json
        ...

`read_saved_results(folder)` gathers them. A summary written before summaries kept their
roles (no ``roles`` key) is listed in `skipped` with the reason, not read as "no roles found".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .atlas import RoleMap
from .circuit import Circuit
from .errors import InterpError, InvalidArgumentError, MissingFileError
from .jsonio import read_user_file
from .report import MODEL_INFO_KEYS

__all__ = ["SavedResults", "read_saved_results"]


@dataclass
class SavedResults:
    """What the summaries under one folder found, for one model."""

    folder: Path
    model_info: dict
    roles: list[RoleMap] = field(default_factory=list)
    circuits: list[Circuit] = field(default_factory=list)
    analyzers: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def n_heads_total(self) -> int:
        return int(self.model_info["n_layers"]) * int(self.model_info["n_heads"])


def _summary(path: Path) -> dict:
    text = read_user_file(path, MissingFileError, "summary")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidArgumentError(f"{path} is not JSON ({err}); rerun the analyzer") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"{path} is not an analyzer summary (a JSON object); rerun the analyzer to rewrite it"
        )
    return data


def _shape(path: Path, info: dict) -> tuple[int, int]:
    """The (n_layers, n_heads) a summary's model_info states, checked to be counts."""
    shape = (info["n_layers"], info["n_heads"])
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise InvalidArgumentError(
            f"{path}: model_info n_layers and n_heads must be whole numbers >= 1, got "
            f"{shape[0]!r} and {shape[1]!r}; rerun the analyzer to rewrite its summary"
        )
    return shape


def _roles(path: Path, data: dict, shape: tuple[int, int]) -> list[RoleMap]:
    """The summary's roles, each read back and checked to name heads of the model's shape."""
    if not isinstance(data["roles"], list):
        raise InvalidArgumentError(
            f"{path}: roles must be a list of roles (RoleMap.to_dict()), got "
            f"{type(data['roles']).__name__}; rerun the analyzer to rewrite its summary"
        )
    roles = []
    for i, item in enumerate(data["roles"]):
        try:
            role = RoleMap.from_dict(item)
            outside = [h for h in role.parsed() if h.layer >= shape[0] or h.head >= shape[1]]
        except InterpError as err:  # a bad role, check or head name
            raise InvalidArgumentError(
                f"{path}: roles[{i}]: {err}; rerun the analyzer to rewrite its summary"
            ) from None
        if outside:
            raise InvalidArgumentError(
                f"{path}: role {role.role!r} names {outside[0]}, outside the model's "
                f"{shape[0]} layers x {shape[1]} heads (model_info); the summary is edited or "
                "of another model: rerun the analyzer on this one"
            )
        roles.append(role)
    return roles


def _why_skipped(data: dict) -> str:
    if "roles" not in data:
        return "written before summaries kept their roles: rerun the analyzer to include it"
    if not all(k in data.get("model_info", {}) for k in ("n_layers", "n_heads")):
        return "no model shape (model_info): rerun the analyzer to include it"
    return ""


def _circuits(path: Path, data: dict) -> list[Circuit]:
    try:
        return [Circuit.from_dict(c) for c in data.get("circuits", [])]
    except InterpError as err:
        raise type(err)(f"{path}: {err}; rerun the analyzer to rewrite its summary") from None


def read_saved_results(folder) -> SavedResults:
    """The roles and circuits of every ``<folder>/*/summary.json``, checked to be of one model.

    MissingFileError when `folder` does not exist or holds no summary with roles (the message
    names the command that writes one); InvalidArgumentError when the summaries are of
    different models."""
    folder = Path(folder)
    if folder.is_file():
        raise InvalidArgumentError(
            f"--from {folder} is a file; give the folder whose sub-folders hold the analyzers' "
            "results (for results/m/retrieval/summary.json, results/m)"
        )
    if not folder.is_dir():
        raise MissingFileError(
            f"--from {folder}: no such folder; give the folder whose sub-folders hold the "
            "analyzers' --out results (e.g. results/smollm2-135m)"
        )
    found: SavedResults | None = None
    skipped: dict[str, str] = {}
    for path in sorted(folder.glob("*/summary.json")):
        name, data = path.parent.name, _summary(path)
        why = _why_skipped(data)
        if why:
            skipped[name] = why
            continue
        info = {k: data["model_info"][k] for k in MODEL_INFO_KEYS if k in data["model_info"]}
        shape = _shape(path, info)
        if found is None:
            found = SavedResults(folder, info)
        elif info.get("name") != found.model_info.get("name"):
            raise InvalidArgumentError(
                f"--from {folder}: {name} is a result of {info.get('name')!r}, the others of "
                f"{found.model_info.get('name')!r}; keep one model's results per folder"
            )
        elif shape != (found.model_info["n_layers"], found.model_info["n_heads"]):
            raise InvalidArgumentError(
                f"--from {folder}: {name} is of a {shape[0]}x{shape[1]} {info.get('name')!r}, "
                f"the others of a {found.model_info['n_layers']}x{found.model_info['n_heads']} "
                "one; rerun the analyzers whose results are out of date"
            )
        found.roles += _roles(path, data, shape)
        found.circuits += _circuits(path, data)
        found.analyzers.append(name)
    if found is None:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no */summary.json"
        raise MissingFileError(
            f"--from {folder}: no analyzer result with roles ({reasons}); write one with "
            f"e.g. interp retrieval MODEL --out {folder}/retrieval"
        )
    found.skipped = skipped
    return found
