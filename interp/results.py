"""Results with provenance: what an analyzer hands back.

Every head-scoring method in `interp` (retrieval heads, induction heads, memory/context
heads, ...) ends with one number per attention head. `HeadScores` keeps that
``[n_layers, n_heads]`` grid together with *where it came from*: the model, the method,
a hash of the data, the seed, the toolkit version, the method's default threshold, a
free-form ``meta`` dict and a timestamp. A bare tensor forgets all of that the moment it
leaves the notebook cell; a `HeadScores` can be saved, reloaded and compared months
later.

Heads are named ``L{layer}H{head}``, zero-based, so ``L1H2`` is ``scores[1, 2]``::

    >>> import torch
    >>> hs = HeadScores(torch.tensor([[0.0, 0.25, 0.75], [0.5, -0.125, 0.0625]]),
    ...                 model="toy", method="retrieval", threshold=0.1)
    >>> hs.top(2)
    [(0, 2, 0.75), (1, 0, 0.5)]
    >>> hs.heads()            # heads scoring above the method's threshold (0.1)
    [(0, 1), (0, 2), (1, 0)]
    >>> hs.share_above(0.4)
    0.3333333333333333
    >>> HeadScores.from_json(hs.to_json()) == hs
    True

Heads that were not scored (a method that skips layer 0, a sweep that was cut short)
are marked with ``mask`` (``True`` = scored). Their entries in ``scores`` are stored as
NaN, and NaN means exactly that and nothing else: a scored head can never hold NaN.
`top`, `heads` and `share_above` look only at scored heads.

`data_hash` turns the inputs of a run (prompts, token ids, a config dict) into a short,
stable fingerprint to store as provenance.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

__all__ = ["HeadScores", "data_hash"]

_FORMAT = "interp.HeadScores"
_FORMAT_VERSION = 1
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_REQUIRED_JSON_FIELDS = (
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


# --------------------------------------------------------------------------- helpers


def _default_version() -> str:
    """`interp.__version__` when the package exposes one, else "0.1.0" (imported lazily)."""
    try:
        from interp import __version__  # noqa: PLC0415 - lazy on purpose, avoids cycles
    except ImportError:
        return "0.1.0"
    return str(__version__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _head_name(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def _as_scores(scores: Any) -> torch.Tensor:
    """A detached CPU float32/float64 copy of `scores`, checked to be a 2-D grid."""
    if isinstance(scores, torch.Tensor):
        t = scores.detach().to("cpu")
    elif isinstance(scores, (np.ndarray, list, tuple)):
        try:
            t = torch.from_numpy(np.array(scores)) if isinstance(scores, np.ndarray) else torch.tensor(scores)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise TypeError(
                f"HeadScores.scores must be a rectangular [n_layers, n_heads] grid of numbers, "
                f"got {type(scores).__name__} that cannot be read as one ({exc}); "
                f"pass a torch.Tensor of shape [n_layers, n_heads]"
            ) from None
    else:
        raise TypeError(
            f"HeadScores.scores must be a torch.Tensor of shape [n_layers, n_heads], got "
            f"{type(scores).__name__}; wrap it with torch.tensor(...)"
        )
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(
            f"HeadScores.scores must hold real numbers, got dtype {t.dtype}; "
            f"convert with .float() (a boolean selection of heads belongs in `mask`)"
        )
    if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(
            f"HeadScores.scores must have shape [n_layers, n_heads] with both >= 1, got shape "
            f"{list(t.shape)}; reshape to [n_layers, n_heads] (one score per head)"
        )
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    return t.clone()


def _as_mask(mask: Any, scores: torch.Tensor) -> torch.Tensor:
    """The boolean `scored` grid: given explicitly, or derived from NaNs in `scores`."""
    if mask is None:
        return ~torch.isnan(scores)
    m = torch.as_tensor(np.asarray(mask)) if not isinstance(mask, torch.Tensor) else mask
    m = m.detach().to("cpu")
    if m.dtype != torch.bool:
        raise TypeError(
            f"HeadScores.mask must be a boolean tensor (True = head was scored), got dtype "
            f"{m.dtype}; build it with `tensor != 0` or torch.ones(..., dtype=torch.bool)"
        )
    if tuple(m.shape) != tuple(scores.shape):
        raise ValueError(
            f"HeadScores.mask must have the shape of scores {list(scores.shape)}, got "
            f"{list(m.shape)}; give one True/False per head"
        )
    bad = torch.nonzero(m & torch.isnan(scores))
    if len(bad):
        names = ", ".join(_head_name(int(l), int(h)) for l, h in bad[:5].tolist())
        raise ValueError(
            f"HeadScores.scores is NaN at scored head(s) {names}: NaN may only mark heads that "
            f"were not scored; set mask False there or give a number"
        )
    return m.clone()


def _check_optional(name: str, value: Any, kinds: tuple, expected: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"HeadScores.{name} must be {expected} or None, got {type(value).__name__} {value!r}")


def _json_normal(meta: Any) -> dict:
    """`meta` as it will read back from JSON (tuples -> lists); TypeError if not JSON-able."""
    if not isinstance(meta, dict):
        raise TypeError(f"HeadScores.meta must be a dict, got {type(meta).__name__}; use meta={{...}}")
    try:
        return json.loads(json.dumps(meta))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"HeadScores.meta must be JSON-serialisable ({exc}); convert tensors with "
            f".tolist() and other objects to str/float/int/list/dict"
        ) from None


def _encode_grid(scores: torch.Tensor) -> list:
    """Nested lists of floats, NaN (= not scored) as null; float32 written by shortest repr."""
    if scores.dtype == torch.float32:
        to_float = lambda x: float(str(x))  # noqa: E731 - str(np.float32) is its shortest repr
    else:
        to_float = float
    return [[None if math.isnan(x) else to_float(x) for x in row] for row in scores.numpy()]


def _dumps(data: dict, indent: Optional[int]) -> str:
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


# --------------------------------------------------------------------------- HeadScores


@dataclass(frozen=True, eq=False)
class HeadScores:
    """One score per attention head, ``[n_layers, n_heads]``, with its provenance.

    Fields:
        scores: float32/float64 tensor ``[n_layers, n_heads]``; ``scores[l, h]`` is head
            ``L{l}H{h}``. Other real dtypes are converted to float32. NaN means "not
            scored" and nothing else.
        model, method: what was analysed and how (e.g. ``"gpt2"``, ``"retrieval"``).
        mask: boolean ``[n_layers, n_heads]``, True where the head was scored. Leave it
            None to derive it from NaNs in ``scores``. Unscored entries are set to NaN.
        data_hash: fingerprint of the inputs, see `data_hash`.
        seed: random seed of the run, if any.
        threshold: the method's default cut (e.g. 0.1 for retrieval heads), used by
            `heads` and `share_above` when no threshold is passed.
        meta: JSON-serialisable extras (per-test scores, counts); stored as it reads back
            from JSON, so tuples become lists.
        version: toolkit version (``interp.__version__``, else "0.1.0").
        created: ISO-8601 timestamp, UTC by default.

    The dataclass is frozen; use ``dataclasses.replace(hs, threshold=0.2)`` for a variant.

    >>> import torch
    >>> hs = HeadScores(torch.zeros(2, 3), model="toy", method="demo")
    >>> hs.shape
    (2, 3)
    """

    scores: torch.Tensor
    model: str
    method: str
    mask: Optional[torch.Tensor] = None
    data_hash: Optional[str] = None
    seed: Optional[int] = None
    threshold: Optional[float] = None
    meta: dict = field(default_factory=dict)
    version: str = field(default_factory=_default_version)
    created: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        scores = _as_scores(self.scores)
        mask = _as_mask(self.mask, scores)
        scores[~mask] = float("nan")
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("scores", scores)
        set_("mask", mask)
        for name in ("model", "method", "version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise TypeError(f"HeadScores.{name} must be a non-empty str, got {value!r}")
        _check_optional("data_hash", self.data_hash, (str,), "a str (see interp.results.data_hash)")
        _check_optional("seed", self.seed, (int, np.integer), "an int")
        _check_optional("threshold", self.threshold, (int, float, np.number), "a float")
        if self.seed is not None:
            set_("seed", int(self.seed))
        if self.threshold is not None:
            set_("threshold", float(self.threshold))
        set_("meta", _json_normal(self.meta))
        if not isinstance(self.created, str):
            raise TypeError(f"HeadScores.created must be an ISO-8601 str, got {type(self.created).__name__}")
        try:
            datetime.fromisoformat(self.created)
        except ValueError:
            raise ValueError(
                f"HeadScores.created must be an ISO-8601 timestamp like '2025-01-31T12:00:00+00:00', "
                f"got {self.created!r}; leave it out to stamp the current time"
            ) from None

    # ------------------------------------------------------------------ shape & access

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_layers, n_heads)``."""
        return (int(self.scores.shape[0]), int(self.scores.shape[1]))

    @property
    def n_layers(self) -> int:
        return self.shape[0]

    @property
    def n_heads(self) -> int:
        """Heads per layer."""
        return self.shape[1]

    @property
    def n_scored(self) -> int:
        """How many heads carry a score (all of them unless `mask` says otherwise)."""
        return int(self.mask.sum())

    def _resolve_threshold(self, threshold: Optional[float], caller: str) -> float:
        if threshold is None:
            threshold = self.threshold
        if threshold is None:
            raise ValueError(
                f"HeadScores.{caller}() needs a threshold: none was passed and this result has "
                f"threshold=None (method {self.method!r}); call {caller}(threshold=0.1) or build "
                f"the HeadScores with threshold=..."
            )
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
            raise TypeError(f"threshold must be a float, got {type(threshold).__name__} {threshold!r}")
        return float(threshold)

    # ------------------------------------------------------------------ queries

    def top(self, k: int = 10, *, largest: bool = True) -> list[tuple[int, int, float]]:
        """The `k` best heads as ``(layer, head, score)``, highest score first.

        ``largest=False`` gives the most negative heads, lowest first. Ties are broken by
        (layer, head). Unscored heads are never returned.

        >>> import torch
        >>> hs = HeadScores(torch.tensor([[0.5, -1.0], [2.0, 0.0]]), model="toy", method="demo")
        >>> hs.top(2)
        [(1, 0, 2.0), (0, 0, 0.5)]
        >>> hs.top(1, largest=False)
        [(0, 1, -1.0)]
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"top(k) needs a positive int k, got {k!r}; e.g. top(10)")
        k = int(k)
        if k > self.n_scored:
            raise ValueError(
                f"top(k={k}) asks for more heads than the {self.n_scored} scored heads "
                f"({self.n_layers} layers x {self.n_heads} heads); use k <= {self.n_scored}"
            )
        flat = self.scores.reshape(-1)
        idx = torch.nonzero(self.mask.reshape(-1)).reshape(-1)
        order = torch.sort(flat[idx], descending=largest, stable=True).indices[:k]
        out = []
        for i in idx[order].tolist():
            layer, head = divmod(i, self.n_heads)
            out.append((layer, head, float(flat[i])))
        return out

    def heads(self, threshold: Optional[float] = None) -> list[tuple[int, int]]:
        """Scored heads with score strictly above `threshold` (default `self.threshold`),
        as ``(layer, head)`` in layer-then-head order.

        >>> import torch
        >>> hs = HeadScores(torch.tensor([[0.5, 0.05], [0.2, 0.0]]), model="toy",
        ...                 method="retrieval", threshold=0.1)
        >>> hs.heads(), hs.heads(0.3)
        ([(0, 0), (1, 0)], [(0, 0)])
        """
        cut = self._resolve_threshold(threshold, "heads")
        above = self.mask & (self.scores > cut)
        return [(int(l), int(h)) for l, h in torch.nonzero(above).tolist()]

    def strongest(self, frac: float = 0.1) -> list[tuple[int, int]]:
        """Scored heads whose absolute score is at least `frac` of the largest absolute score,
        as ``(layer, head)`` in layer-then-head order (none when every score is 0): the heads a
        method locates, of either sign, e.g. the pool a specificity control must avoid.

        >>> import torch
        >>> HeadScores(torch.tensor([[5.0, -2.0], [0.4, -0.6]]), model="toy", method="t").strongest()
        [(0, 0), (0, 1), (1, 1)]
        """
        mag = torch.where(self.mask, self.scores.abs(), torch.zeros_like(self.scores))
        top = float(mag.max()) if mag.numel() else 0.0
        if not top > 0:
            return []
        return [(int(l), int(h)) for l, h in torch.nonzero(self.mask & (mag >= frac * top)).tolist()]

    def share_above(self, threshold: Optional[float] = None) -> float:
        """Fraction of scored heads with score strictly above `threshold` (default
        `self.threshold`).

        >>> import torch
        >>> HeadScores(torch.tensor([[0.5, 0.05], [0.2, 0.0]]), model="toy",
        ...            method="demo").share_above(0.1)
        0.5
        """
        cut = self._resolve_threshold(threshold, "share_above")
        if self.n_scored == 0:
            raise ValueError("share_above() is undefined: no head is scored (mask is all False)")
        return len(self.heads(cut)) / self.n_scored

    # ------------------------------------------------------------------ export

    def to_frame(self):
        """A pandas DataFrame, one row per head: ``layer, head, name, score``, best first
        (unscored heads last, with NaN score).

        >>> import torch
        >>> df = HeadScores(torch.tensor([[0.1, 0.9]]), model="toy", method="demo").to_frame()
        >>> df["name"].tolist()
        ['L0H1', 'L0H0']
        """
        import pandas as pd  # noqa: PLC0415 - pandas only needed here

        n_layers, n_heads = self.shape
        layers = np.repeat(np.arange(n_layers), n_heads)
        heads = np.tile(np.arange(n_heads), n_layers)
        frame = pd.DataFrame(
            {
                "layer": layers.astype(np.int64),
                "head": heads.astype(np.int64),
                "name": [_head_name(l, h) for l, h in zip(layers.tolist(), heads.tolist())],
                "score": self.scores.reshape(-1).to(torch.float64).numpy(),
            }
        )
        frame = frame.sort_values("score", ascending=False, kind="stable", na_position="last")
        return frame.reset_index(drop=True)

    def to_dict(self) -> dict:
        """The JSON-ready dict that `to_json` writes (NaN = unscored written as null)."""
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "model": self.model,
            "method": self.method,
            "shape": list(self.shape),
            "dtype": str(self.scores.dtype).removeprefix("torch."),
            "scores": _encode_grid(self.scores),
            "data_hash": self.data_hash,
            "seed": self.seed,
            "threshold": self.threshold,
            "version": self.version,
            "created": self.created,
            "meta": self.meta,
        }

    def to_json(self, path: Union[str, os.PathLike, None] = None, *, indent: Optional[int] = 2) -> str:
        """Serialise to a JSON string; also write it to `path` when one is given.

        >>> import torch
        >>> hs = HeadScores(torch.tensor([[0.1, 0.9]]), model="toy", method="demo")
        >>> HeadScores.from_json(hs.to_json()) == hs
        True
        """
        text = _dumps(self.to_dict(), indent)
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, data: dict) -> "HeadScores":
        """Rebuild from the dict `to_dict` produced; ValueError names any missing field."""
        if not isinstance(data, dict):
            raise ValueError(f"HeadScores JSON must be an object, got {type(data).__name__}")
        fmt = data.get("format", _FORMAT)
        if fmt != _FORMAT:
            raise ValueError(f"not a HeadScores file: format is {fmt!r}, expected {_FORMAT!r}")
        missing = [name for name in _REQUIRED_JSON_FIELDS if name not in data]
        if missing:
            raise ValueError(
                f"HeadScores JSON is missing field {missing[0]!r} (all missing: {missing}); "
                f"write files with HeadScores.to_json() or add the field"
            )
        dtype = data["dtype"]
        if dtype not in _DTYPES:
            raise ValueError(f"HeadScores JSON field 'dtype' must be one of {sorted(_DTYPES)}, got {dtype!r}")
        grid = data["scores"]
        rows_ok = isinstance(grid, list) and grid and all(isinstance(r, list) for r in grid)
        if not rows_ok or len({len(r) for r in grid}) != 1:
            raise ValueError(
                "HeadScores JSON field 'scores' must be a rectangular list of lists "
                "[n_layers][n_heads] of numbers or null"
            )
        try:
            values = [[math.nan if x is None else float(x) for x in row] for row in grid]
        except (TypeError, ValueError):
            raise ValueError("HeadScores JSON field 'scores' must hold only numbers or null") from None
        scores = torch.tensor(values, dtype=_DTYPES[dtype])
        if "shape" in data and list(data["shape"]) != list(scores.shape):
            raise ValueError(
                f"HeadScores JSON 'shape' {data['shape']} disagrees with 'scores' of shape "
                f"{list(scores.shape)}; the file was edited or truncated"
            )
        return cls(
            scores=scores,
            model=data["model"],
            method=data["method"],
            data_hash=data["data_hash"],
            seed=data["seed"],
            threshold=data["threshold"],
            meta=data["meta"],
            version=data["version"],
            created=data["created"],
        )

    @classmethod
    def from_json(cls, source: Union[str, os.PathLike]) -> "HeadScores":
        """Load from a JSON string or a path to a file written by `to_json`.

        >>> import torch
        >>> hs = HeadScores(torch.tensor([[0.25, 0.75]]), model="toy", method="demo")
        >>> HeadScores.from_json(hs.to_json()).top(1)
        [(0, 1, 0.75)]
        """
        if isinstance(source, os.PathLike) or (isinstance(source, str) and not source.lstrip().startswith("{")):
            path = Path(source)
            if not path.is_file():
                raise ValueError(
                    f"HeadScores.from_json got {str(source)[:80]!r}, which is neither JSON text "
                    f"(starting with '{{') nor an existing file; pass to_json() output or its path"
                )
            source = path.read_text(encoding="utf-8")
        elif not isinstance(source, str):
            raise TypeError(f"HeadScores.from_json needs a JSON str or a path, got {type(source).__name__}")
        try:
            data = json.loads(source)
        except json.JSONDecodeError as exc:
            raise ValueError(f"HeadScores.from_json: invalid JSON ({exc})") from None
        return cls.from_dict(data)

    def plot(self, title: Optional[str] = None, **kw):
        """A plotly heatmap of the scores (see `interp.plots.head_heatmap` for `kw`).

        >>> import torch
        >>> fig = HeadScores(torch.rand(2, 3), model="toy", method="demo").plot()
        >>> fig.layout.title.text
        'demo scores: toy'
        """
        from interp.plots import head_heatmap  # noqa: PLC0415 - plotly is heavy, load on use

        if title is None:
            title = f"{self.method} scores: {self.model}"
        return head_heatmap(self.scores, title=title, **kw)

    # ------------------------------------------------------------------ dunder

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeadScores):
            return NotImplemented
        same_grid = (
            self.scores.dtype == other.scores.dtype
            and self.shape == other.shape
            and torch.equal(self.mask, other.mask)
            and torch.equal(self.scores[self.mask], other.scores[other.mask])
        )
        plain = ("model", "method", "data_hash", "seed", "threshold", "version", "created")
        return (
            same_grid
            and all(getattr(self, f) == getattr(other, f) for f in plain)
            and json.dumps(self.meta, sort_keys=True) == json.dumps(other.meta, sort_keys=True)
        )

    __hash__ = None  # mutable tensor inside; not hashable

    def __repr__(self) -> str:
        n_layers, n_heads = self.shape
        best = self.top(min(3, self.n_scored)) if self.n_scored else []
        top = ", ".join(f"{_head_name(l, h)}={s:.3f}" for l, h, s in best)
        extra = "" if self.n_scored == n_layers * n_heads else f", scored={self.n_scored}"
        cut = "" if self.threshold is None else f", threshold={self.threshold:g}"
        return (
            f"HeadScores(model={self.model!r}, method={self.method!r}, "
            f"shape={n_layers}x{n_heads}{extra}{cut}, top=[{top}])"
        )


# --------------------------------------------------------------------------- data_hash


def _canonical(obj: Any) -> Any:
    """`obj` as plain JSON data; tensors and arrays become ``{"__tensor__": dtype, shape, digest}``."""
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
            raise TypeError(
                f"data_hash needs str dict keys (JSON has no other kind), got key {bad[0]!r} of "
                f"type {type(bad[0]).__name__}; convert keys with str()"
            )
        return {k: _canonical(v) for k, v in obj.items()}
    raise TypeError(
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
