"""``HeadScores``: one score per attention head with its provenance (see :mod:`interp.results`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd
import torch

from ..errors import ArgumentTypeError, InvalidArgumentError
from ..plots import head_heatmap
from ..version import __version__
from .checks import as_mask, as_scores, check_optional, head_name, json_normal
from .serialise import FORMAT, FORMAT_VERSION, dumps, encode_grid, fields_of, read_json

__all__ = ["HeadScores"]


def now() -> str:
    """The current UTC time as an ISO-8601 string to the second (``HeadScores.created``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
        version: toolkit version (``interp.__version__``).
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
    version: str = __version__
    created: str = field(default_factory=now)

    def __post_init__(self) -> None:
        scores = as_scores(self.scores)
        mask = as_mask(self.mask, scores)
        scores[~mask] = float("nan")
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("scores", scores)
        set_("mask", mask)
        for name in ("model", "method", "version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ArgumentTypeError(f"HeadScores.{name} must be a non-empty str, got {value!r}")
        check_optional("data_hash", self.data_hash, (str,), "a str (see interp.results.data_hash)")
        check_optional("seed", self.seed, (int, np.integer), "an int")
        check_optional("threshold", self.threshold, (int, float, np.number), "a float")
        if self.seed is not None:
            set_("seed", int(self.seed))
        if self.threshold is not None:
            set_("threshold", float(self.threshold))
        set_("meta", json_normal(self.meta))
        if not isinstance(self.created, str):
            raise ArgumentTypeError(
                f"HeadScores.created must be an ISO-8601 str, got {type(self.created).__name__}"
            )
        try:
            datetime.fromisoformat(self.created)
        except ValueError:
            raise InvalidArgumentError(
                f"HeadScores.created must be an ISO-8601 timestamp "
                f"like '2025-01-31T12:00:00+00:00', "
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
            raise InvalidArgumentError(
                f"HeadScores.{caller}() needs a threshold: none was passed and this result has "
                f"threshold=None (method {self.method!r}); call {caller}(threshold=0.1) or build "
                f"the HeadScores with threshold=..."
            )
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
            raise ArgumentTypeError(
                f"threshold must be a float, got {type(threshold).__name__} {threshold!r}"
            )
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
            raise InvalidArgumentError(f"top(k) needs a positive int k, got {k!r}; e.g. top(10)")
        k = int(k)
        if k > self.n_scored:
            raise InvalidArgumentError(
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
        >>> HeadScores(
        ...     torch.tensor([[5.0, -2.0], [0.4, -0.6]]), model="toy", method="t"
        ... ).strongest()
        [(0, 0), (0, 1), (1, 1)]
        """
        mag = torch.where(self.mask, self.scores.abs(), torch.zeros_like(self.scores))
        top = float(mag.max()) if mag.numel() else 0.0
        if not top > 0:
            return []
        return [
            (int(l), int(h)) for l, h in torch.nonzero(self.mask & (mag >= frac * top)).tolist()
        ]

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
            raise InvalidArgumentError(
                "share_above() is undefined: no head is scored (mask is all False)"
            )
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
        n_layers, n_heads = self.shape
        layers = np.repeat(np.arange(n_layers), n_heads)
        heads = np.tile(np.arange(n_heads), n_layers)
        frame = pd.DataFrame(
            {
                "layer": layers.astype(np.int64),
                "head": heads.astype(np.int64),
                "name": [head_name(l, h) for l, h in zip(layers.tolist(), heads.tolist())],
                "score": self.scores.reshape(-1).to(torch.float64).numpy(),
            }
        )
        frame = frame.sort_values("score", ascending=False, kind="stable", na_position="last")
        return frame.reset_index(drop=True)

    def to_dict(self) -> dict:
        """The JSON-ready dict that `to_json` writes (NaN = unscored written as null)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "method": self.method,
            "shape": list(self.shape),
            "dtype": str(self.scores.dtype).removeprefix("torch."),
            "scores": encode_grid(self.scores),
            "data_hash": self.data_hash,
            "seed": self.seed,
            "threshold": self.threshold,
            "version": self.version,
            "created": self.created,
            "meta": self.meta,
        }

    def to_json(
        self, path: Union[str, os.PathLike, None] = None, *, indent: Optional[int] = 2
    ) -> str:
        """Serialise to a JSON string; also write it to `path` when one is given.

        >>> import torch
        >>> hs = HeadScores(torch.tensor([[0.1, 0.9]]), model="toy", method="demo")
        >>> HeadScores.from_json(hs.to_json()) == hs
        True
        """
        text = dumps(self.to_dict(), indent)
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, data: dict) -> "HeadScores":
        """Rebuild from the dict `to_dict` produced; ValueError names any missing field."""
        return cls(**fields_of(data))

    @classmethod
    def from_json(cls, source: Union[str, os.PathLike]) -> "HeadScores":
        """Load from a JSON string or a path to a file written by `to_json`.

        >>> import torch
        >>> hs = HeadScores(torch.tensor([[0.25, 0.75]]), model="toy", method="demo")
        >>> HeadScores.from_json(hs.to_json()).top(1)
        [(0, 1, 0.75)]
        """
        return cls.from_dict(read_json(source))

    def plot(self, title: Optional[str] = None, **kw):
        """A plotly heatmap of the scores (see `interp.plots.head_heatmap` for `kw`).

        >>> import torch
        >>> fig = HeadScores(torch.rand(2, 3), model="toy", method="demo").plot()
        >>> fig.layout.title.text
        'demo scores: toy'
        """
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
        top = ", ".join(f"{head_name(l, h)}={s:.3f}" for l, h, s in best)
        extra = "" if self.n_scored == n_layers * n_heads else f", scored={self.n_scored}"
        cut = "" if self.threshold is None else f", threshold={self.threshold:g}"
        return (
            f"HeadScores(model={self.model!r}, method={self.method!r}, "
            f"shape={n_layers}x{n_heads}{extra}{cut}, top=[{top}])"
        )
