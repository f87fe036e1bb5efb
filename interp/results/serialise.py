"""The JSON form of :class:`~interp.results.HeadScores`: one object with the provenance fields
and the ``[n_layers][n_heads]`` score grid (one line per layer when indented), NaN (= not
scored) written as ``null``, float32 scores by their shortest repr so they read back exactly.

    >>> import torch
    >>> encode_grid(torch.tensor([[0.1, float("nan")]]))
    [[0.1, None]]
    >>> print(dumps({"shape": [1, 2], "scores": [[0.1, None]]}, indent=2))
    {
      "shape": [1, 2],
      "scores": [
        [0.1, null]
      ]
    }
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ..errors import ArgumentTypeError, InvalidArgumentError

FORMAT = "interp.HeadScores"
FORMAT_VERSION = 1
DTYPES = {"float32": torch.float32, "float64": torch.float64}
REQUIRED_JSON_FIELDS = (
    "model",
    "method",
    "dtype",
    "scores",
    "data_hash",
    "seed",
    "threshold",
    "version",
    "created",
    "meta",
)


def encode_grid(scores: torch.Tensor) -> list:
    """Nested lists of floats, NaN (= not scored) as null; float32 written by shortest repr."""
    if scores.dtype == torch.float32:
        to_float = lambda x: float(str(x))  # noqa: E731 - str(np.float32) is its shortest repr
    else:
        to_float = float
    return [[None if math.isnan(x) else to_float(x) for x in row] for row in scores.numpy()]


def dumps(data: dict, indent: Optional[int]) -> str:
    """JSON text of a `to_dict` result, one line per row of scores when indenting."""
    if indent is None:
        return json.dumps(data, separators=(",", ":"))
    pad = " " * indent
    lines = []
    for key, value in data.items():
        if key == "scores":
            rows = ",\n".join(f"{pad * 2}{json.dumps(row)}" for row in value)
            text = f"[\n{rows}\n{pad}]"
        elif key == "shape":
            text = json.dumps(value)
        else:
            text = json.dumps(value, indent=indent).replace("\n", "\n" + pad)
        lines.append(f"{pad}{json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}"


def decode_grid(data: dict) -> torch.Tensor:
    """The score tensor of a ``HeadScores`` JSON object, checked: a known format, every required
    field present, a known dtype, a rectangular grid of numbers or null that matches ``shape``."""
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"HeadScores JSON must be an object, got {type(data).__name__}")
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise InvalidArgumentError(f"not a HeadScores file: format is {fmt!r}, expected {FORMAT!r}")
    missing = [name for name in REQUIRED_JSON_FIELDS if name not in data]
    if missing:
        raise InvalidArgumentError(
            f"HeadScores JSON is missing field {missing[0]!r} (all missing: {missing}); "
            f"write files with HeadScores.to_json() or add the field"
        )
    dtype = data["dtype"]
    if dtype not in DTYPES:
        raise InvalidArgumentError(
            f"HeadScores JSON field 'dtype' must be one of {sorted(DTYPES)}, got {dtype!r}"
        )
    grid = data["scores"]
    rows_ok = isinstance(grid, list) and grid and all(isinstance(r, list) for r in grid)
    if not rows_ok or len({len(r) for r in grid}) != 1:
        raise InvalidArgumentError(
            "HeadScores JSON field 'scores' must be a rectangular list of lists "
            "[n_layers][n_heads] of numbers or null"
        )
    try:
        values = [[math.nan if x is None else float(x) for x in row] for row in grid]
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            "HeadScores JSON field 'scores' must hold only numbers or null"
        ) from None
    scores = torch.tensor(values, dtype=DTYPES[dtype])
    if "shape" in data and list(data["shape"]) != list(scores.shape):
        raise InvalidArgumentError(
            f"HeadScores JSON 'shape' {data['shape']} disagrees with 'scores' of shape "
            f"{list(scores.shape)}; the file was edited or truncated"
        )
    return scores


def fields_of(data: dict) -> dict[str, Any]:
    """The ``HeadScores`` keyword arguments stored in a JSON object (its grid decoded)."""
    scores = decode_grid(data)
    plain = ("model", "method", "data_hash", "seed", "threshold", "meta", "version", "created")
    return {"scores": scores, **{name: data[name] for name in plain}}


def read_json(source: Union[str, os.PathLike]) -> Any:
    """The parsed JSON of ``source``: JSON text (starting with ``{``) or a path to a file."""
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and not source.lstrip().startswith("{")
    ):
        path = Path(source)
        if not path.is_file():
            raise InvalidArgumentError(
                f"HeadScores.from_json got {str(source)[:80]!r}, which is neither JSON text "
                f"(starting with '{{') nor an existing file; pass to_json() output or its path"
            )
        source = path.read_text(encoding="utf-8")
    elif not isinstance(source, str):
        raise ArgumentTypeError(
            f"HeadScores.from_json needs a JSON str or a path, got {type(source).__name__}"
        )
    try:
        data = json.loads(source)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"HeadScores.from_json: invalid JSON ({exc})") from None
    return data
