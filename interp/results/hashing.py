"""``data_hash``: a short, stable fingerprint of the inputs of a run (prompts, token ids, a
config dict), stored as provenance in a :class:`~interp.results.HeadScores`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch

from ..errors import ArgumentTypeError

__all__ = ["data_hash"]


def _canonical(obj: Any) -> Any:
    """`obj` as plain JSON data; tensors and arrays become
    ``{"__tensor__": dtype, shape, digest}``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        return {"__tensor__": [str(t.dtype), list(t.shape), hashlib.sha256(raw).hexdigest()]}
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return _canonical(obj.tolist())
        raw = np.ascontiguousarray(obj).tobytes()
        return {"__ndarray__": [str(obj.dtype), list(obj.shape), hashlib.sha256(raw).hexdigest()]}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [_canonical(x) for x in obj]
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise ArgumentTypeError(
                f"data_hash needs str dict keys (JSON has no other kind), got key {bad[0]!r} of "
                f"type {type(bad[0]).__name__}; convert keys with str()"
            )
        return {k: _canonical(v) for k, v in obj.items()}
    raise ArgumentTypeError(
        f"data_hash accepts JSON data (dict/list/str/int/float/bool/None), tensors and numpy "
        f"arrays, got {type(obj).__name__}; convert it to one of those first"
    )


def data_hash(obj: Any) -> str:
    """A stable 16-hex-digit sha256 fingerprint of `obj`, for `HeadScores.data_hash`.

    `obj` may be JSON data (nested dicts/lists of str, numbers, bools, None), a list of
    prompts, or tensors/numpy arrays anywhere inside (hashed by dtype, shape and bytes).
    Dict key order does not matter; list order, tuple-vs-list aside, does. The value is
    the same in every process and on every machine.

    >>> data_hash(["The cat sat", "on the mat"])
    '2a6df96eae8e3e30'
    >>> data_hash({"b": 1, "a": 2}) == data_hash({"a": 2, "b": 1})
    True
    """
    text = json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
