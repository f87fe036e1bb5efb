"""Validation of the fields of a :class:`~interp.results.HeadScores`: the score grid, the
``scored`` mask, optional provenance values and the JSON-able ``meta``.

Each function raises ``TypeError``/``ValueError`` saying what was expected, what came, and the
fix; each returns the normalised value the dataclass stores.

    >>> import torch
    >>> as_mask(None, torch.tensor([[0.5, float("nan")]])).tolist()
    [[True, False]]
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from ..errors import ArgumentTypeError, InvalidArgumentError


def head_name(layer: int, head: int) -> str:
    """The name of a head: ``L{layer}H{head}``, zero-based."""
    return f"L{layer}H{head}"


def as_scores(scores: Any) -> torch.Tensor:
    """A detached CPU float32/float64 copy of `scores`, checked to be a 2-D grid."""
    if isinstance(scores, torch.Tensor):
        t = scores.detach().to("cpu")
    elif isinstance(scores, (np.ndarray, list, tuple)):
        try:
            t = (
                torch.from_numpy(np.array(scores))
                if isinstance(scores, np.ndarray)
                else torch.tensor(scores)
            )
        except (ValueError, TypeError, RuntimeError) as exc:
            raise ArgumentTypeError(
                f"HeadScores.scores must be a rectangular [n_layers, n_heads] grid of numbers, "
                f"got {type(scores).__name__} that cannot be read as one ({exc}); "
                f"pass a torch.Tensor of shape [n_layers, n_heads]"
            ) from None
    else:
        raise ArgumentTypeError(
            f"HeadScores.scores must be a torch.Tensor of shape [n_layers, n_heads], got "
            f"{type(scores).__name__}; wrap it with torch.tensor(...)"
        )
    if t.dtype == torch.bool or t.is_complex():
        raise ArgumentTypeError(
            f"HeadScores.scores must hold real numbers, got dtype {t.dtype}; "
            f"convert with .float() (a boolean selection of heads belongs in `mask`)"
        )
    if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise InvalidArgumentError(
            f"HeadScores.scores must have shape [n_layers, n_heads] with both >= 1, got shape "
            f"{list(t.shape)}; reshape to [n_layers, n_heads] (one score per head)"
        )
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    return t.clone()


def as_mask(mask: Any, scores: torch.Tensor) -> torch.Tensor:
    """The boolean `scored` grid: given explicitly, or derived from NaNs in `scores`."""
    if mask is None:
        return ~torch.isnan(scores)
    m = torch.as_tensor(np.asarray(mask)) if not isinstance(mask, torch.Tensor) else mask
    m = m.detach().to("cpu")
    if m.dtype != torch.bool:
        raise ArgumentTypeError(
            f"HeadScores.mask must be a boolean tensor (True = head was scored), got dtype "
            f"{m.dtype}; build it with `tensor != 0` or torch.ones(..., dtype=torch.bool)"
        )
    if tuple(m.shape) != tuple(scores.shape):
        raise InvalidArgumentError(
            f"HeadScores.mask must have the shape of scores {list(scores.shape)}, got "
            f"{list(m.shape)}; give one True/False per head"
        )
    bad = torch.nonzero(m & torch.isnan(scores))
    if len(bad):
        names = ", ".join(head_name(int(l), int(h)) for l, h in bad[:5].tolist())
        raise InvalidArgumentError(
            f"HeadScores.scores is NaN at scored head(s) {names}: NaN may only mark heads that "
            f"were not scored; set mask False there or give a number"
        )
    return m.clone()


def check_optional(name: str, value: Any, kinds: tuple, expected: str) -> None:
    """TypeError unless ``value`` is None or an instance of ``kinds`` (a bool never counts as a
    number)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ArgumentTypeError(
            f"HeadScores.{name} must be {expected} or None, got {type(value).__name__} {value!r}"
        )


def json_normal(meta: Any) -> dict:
    """`meta` as it will read back from JSON (tuples -> lists); TypeError if not JSON-able."""
    if not isinstance(meta, dict):
        raise ArgumentTypeError(
            f"HeadScores.meta must be a dict, got {type(meta).__name__}; use meta={{...}}"
        )
    try:
        return json.loads(json.dumps(meta))
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(
            f"HeadScores.meta must be JSON-serialisable ({exc}); convert tensors with "
            f".tolist() and other objects to str/float/int/list/dict"
        ) from None
