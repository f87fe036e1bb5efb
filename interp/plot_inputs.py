"""Input checks of `interp.plots`: arrays, head names, grids and token labels, each refused with
what was expected."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Optional, Sequence

import numpy as np

from .errors import ArgumentTypeError, InvalidArgumentError

_HEAD_NAME = re.compile(r"^\s*[lL](\d+)\s*[hH](\d+)\s*$")


# --------------------------------------------------------------------------- helpers


def _to_numpy(x: Any, name: str, ndim: Optional[int], shape_doc: str) -> np.ndarray:
    """`x` (tensor, array or nested lists) as a float64 array with `ndim` dimensions (any if
    None)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor without importing torch
        x = x.detach().cpu()
        if x.is_floating_point() and x.dtype.itemsize < 4:  # bfloat16/float16
            x = x.float()
        x = x.numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentTypeError(
            f"{name} must be a tensor or array of numbers with shape {shape_doc}, got "
            f"{type(x).__name__} that cannot be read as one; pass a torch.Tensor or np.ndarray"
        ) from None
    if (ndim is not None and arr.ndim != ndim) or 0 in arr.shape:
        raise InvalidArgumentError(
            f"{name} must have shape {shape_doc} (non-empty), got shape {list(arr.shape)}; "
            f"select or reshape to match"
        )
    return arr


def _layer_head(spec: Any) -> tuple[int, int]:
    """(layer, head) from ``(l, h)``, ``"L{l}H{h}"`` or anything with ``.layer``/``.head``."""
    if hasattr(spec, "layer") and hasattr(spec, "head"):
        return int(spec.layer), int(spec.head)
    if isinstance(spec, str):
        match = _HEAD_NAME.match(spec)
        if match:
            return int(match.group(1)), int(match.group(2))
    elif isinstance(spec, (tuple, list)) and len(spec) == 2:
        return int(spec[0]), int(spec[1])
    raise InvalidArgumentError(
        f"cannot read a head from {spec!r}; "
        f"use (layer, head) or 'L{{layer}}H{{head}}', e.g. (1, 2) or 'L1H2'"
    )


def _check_in_grid(layer: int, head: int, n_layers: int, n_heads: int, where: str) -> None:
    if not (0 <= layer < n_layers and 0 <= head < n_heads):
        raise InvalidArgumentError(
            f"{where}: head L{layer}H{head} is outside the grid; layers are 0..{n_layers - 1} "
            f"and heads 0..{n_heads - 1}"
        )


def _unique_labels(tokens: Sequence[str]) -> list[str]:
    """Token labels with duplicates made unique by their position: ``the (3)``.

    Plotly merges equal category labels into one row/column, which would silently drop
    positions; unique tokens are left as they are.
    """
    counts = Counter(tokens)
    labels = [f"{tok} ({i})" if counts[tok] > 1 else tok for i, tok in enumerate(tokens)]
    seen: set[str] = set()
    for i, label in enumerate(labels):  # a token may itself look like "the (3)"
        while label in seen:
            label = f"{label} ({i})"
        seen.add(label)
        labels[i] = label
    return labels


def _check_tokens(tokens: Any, name: str = "tokens") -> list[str]:
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise ArgumentTypeError(
            f"{name} must be a list of token strings, got {type(tokens).__name__}; "
            f"e.g. tokenizer.convert_ids_to_tokens(ids)"
        )
    bad = [t for t in tokens if not isinstance(t, str)]
    if bad:
        raise ArgumentTypeError(
            f"{name} must all be str, got {type(bad[0]).__name__} {bad[0]!r}; "
            f"decode ids to strings first"
        )
    return list(tokens)


# --------------------------------------------------------------------------- head_heatmap
