"""Interventions: small frozen objects that say what to do to which heads.

An intervention is data, not a closure: it can be printed, compared, combined with ``+``,
saved as JSON from a notebook and applied later from the command line. At run time it is
compiled into `Edit`s on head sites (see `interp.backends.plan`), so the same object works on
both engines, in single forward passes and in cached generation.

- ``PruneHeads(heads, mode="zero")`` sets the heads' outputs z to 0; ``mode="mean"`` replaces
  them by their mean over a reference dataset (`PruneHeads.with_means`); ``mode="uniform"``
  makes each head attend uniformly to every position it may see (the retrieval-head paper's
  masking: its pre-softmax scores set to 0).
- ``ScaleValues(head, alpha)`` multiplies one head's value vectors by alpha (Yu et al. 2023). Under
  grouped-query attention the value vectors are shared by several query heads, so the scaling
  is applied to the head's output z, which is linear in its values: z_h = A_h (alpha V) = alpha z_h.
- ``PatchHeads(heads, source)`` overwrites the heads' z with their values on another input
  (text run first, or a cache from `Model.run_with_cache`).

    >>> recipe = PruneHeads(["L1H0", "L1H3"]) + ScaleValues("L0H2", 2.0)
    >>> Intervention.from_json(recipe.to_json()) == recipe
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence, Union

import torch

from .backends.plan import Edit, EditContext
from .heads import Head, HeadLike, check_heads, parse_heads

__all__ = ["Intervention", "PruneHeads", "ScaleValues", "PatchHeads", "Compose", "PRUNE_MODES"]

PRUNE_MODES = ("zero", "mean", "uniform")


class Intervention:
    """Base class: compile to edits, combine with ``+``, serialise to JSON."""

    def edits(self, model) -> list[Edit]:
        raise NotImplementedError

    def parts(self) -> tuple["Intervention", ...]:
        return (self,)

    def __add__(self, other: "Intervention") -> "Compose":
        if not isinstance(other, Intervention):
            return NotImplemented
        return Compose(self.parts() + other.parts())

    def to_dict(self) -> dict:
        raise NotImplementedError

    def to_json(self, path=None, indent: int = 2) -> str:
        """JSON text of this intervention (written to `path` too, if given)."""
        from .jsonio import write_json_text

        return write_json_text(self.to_dict(), path, indent)

    @staticmethod
    def from_dict(data: dict) -> "Intervention":
        if not isinstance(data, dict) or "type" not in data:
            raise ValueError(f"an intervention must be a JSON object with a 'type' field; got {data!r:.200}")
        kind = data["type"]
        if kind not in _TYPES:
            raise ValueError(f"unknown intervention type {kind!r}; known: {', '.join(_TYPES)}")
        return _TYPES[kind]._from_dict(data)

    @staticmethod
    def from_json(text_or_path: str) -> "Intervention":
        """Read an intervention from JSON text or from a file path."""
        from .jsonio import read_json_text

        return Intervention.from_dict(read_json_text(text_or_path, ValueError, "intervention recipe"))


def _heads_field(heads) -> tuple[Head, ...]:
    parsed = parse_heads(heads)
    if not parsed:
        raise ValueError("an intervention needs at least one head, e.g. ['L0H1']")
    return parsed


def _unknown_keys(data: dict, allowed: set[str], kind: str) -> None:
    extra = set(data) - allowed - {"type"}
    if extra:
        raise ValueError(f"{kind} got unknown field(s) {sorted(extra)}; allowed: {sorted(allowed)}")


@dataclass(frozen=True)
class PruneHeads(Intervention):
    heads: tuple[Head, ...]
    mode: str = "zero"
    means: Optional[tuple[tuple[float, ...], ...]] = field(default=None, repr=False)

    def __init__(self, heads: Union[HeadLike, Iterable[HeadLike]], mode: str = "zero",
                 means: Optional[Sequence[Sequence[float]]] = None):
        if mode not in PRUNE_MODES:
            raise ValueError(f"PruneHeads mode must be one of {PRUNE_MODES}, got {mode!r}")
        object.__setattr__(self, "heads", _heads_field(heads))
        object.__setattr__(self, "mode", mode)
        if means is not None:
            means = tuple(tuple(float(x) for x in row) for row in means)
            if len(means) != len(self.heads):
                raise ValueError(f"PruneHeads got {len(means)} mean vectors for {len(self.heads)} heads")
        object.__setattr__(self, "means", means)

    @classmethod
    def with_means(cls, model, heads, texts) -> "PruneHeads":
        """Mean-ablation of `heads`, with each head's mean z over `texts` (cached on the model)."""
        parsed = _heads_field(heads)
        check_heads(parsed, model.n_layers, model.n_heads)
        table = model.head_means(texts)
        return cls(parsed, mode="mean", means=[table[h.layer, h.head].tolist() for h in parsed])

    def edits(self, model) -> list[Edit]:
        check_heads(self.heads, model.n_layers, model.n_heads)
        if self.mode == "mean" and self.means is None:
            raise ValueError(
                "PruneHeads(mode='mean') needs reference means: build it with "
                "PruneHeads.with_means(model, heads, texts)"
            )
        if self.mode == "uniform":
            return [Edit(h.layer, "pattern", _uniform_fn(h.head)) for h in self.heads]
        if self.mode == "mean":
            return [Edit(h.layer, "z", _set_fn(h.head, torch.tensor(m))) for h, m in zip(self.heads, self.means)]
        return [Edit(h.layer, "z", _scale_fn(h.head, 0.0)) for h in self.heads]

    def to_dict(self) -> dict:
        data = {"type": "PruneHeads", "heads": [str(h) for h in self.heads], "mode": self.mode}
        if self.means is not None:
            data["means"] = [list(m) for m in self.means]
        return data

    @classmethod
    def _from_dict(cls, data: dict) -> "PruneHeads":
        _unknown_keys(data, {"heads", "mode", "means"}, "PruneHeads")
        return cls(data["heads"], data.get("mode", "zero"), data.get("means"))


@dataclass(frozen=True)
class ScaleValues(Intervention):
    head: Head
    alpha: float

    def __init__(self, head: HeadLike, alpha: float):
        alpha = float(alpha)
        if not math.isfinite(alpha):
            raise ValueError(f"ScaleValues alpha must be a finite number, got {alpha}")
        object.__setattr__(self, "head", Head.parse(head))
        object.__setattr__(self, "alpha", alpha)

    def edits(self, model) -> list[Edit]:
        check_heads([self.head], model.n_layers, model.n_heads)
        return [Edit(self.head.layer, "z", _scale_fn(self.head.head, self.alpha))]

    def to_dict(self) -> dict:
        return {"type": "ScaleValues", "head": str(self.head), "alpha": self.alpha}

    @classmethod
    def _from_dict(cls, data: dict) -> "ScaleValues":
        _unknown_keys(data, {"head", "alpha"}, "ScaleValues")
        return cls(data["head"], data["alpha"])


@dataclass(frozen=True)
class PatchHeads(Intervention):
    """Overwrite heads' z with values from a source run.

    source: a prompt (or list of prompts, one per batch row, or one for all rows), run first
    without interventions; or a mapping ``{(layer, "z"): tensor [batch, pos, n_heads, d_head]}``
    such as the cache returned by `Model.run_with_cache`. Positions are matched from the start
    of the sequence; positions beyond the source's length are left as they are.
    """

    heads: tuple[Head, ...]
    source: Any = field(compare=False)

    def __init__(self, heads, source):
        object.__setattr__(self, "heads", _heads_field(heads))
        if source is None or (isinstance(source, (str, list, tuple)) and len(source) == 0):
            raise ValueError("PatchHeads needs a source: a prompt, a list of prompts, or a z cache")
        object.__setattr__(self, "source", source)

    def _source_z(self, model) -> dict[int, torch.Tensor]:
        layers = sorted({h.layer for h in self.heads})
        if isinstance(self.source, (str, list, tuple)):
            _, cache = model.run_with_cache(self.source, sites=("z",), layers=layers,
                                            use_interventions=False)
            return {layer: cache[layer, "z"] for layer in layers}
        try:
            return {layer: torch.as_tensor(self.source[layer, "z"]) for layer in layers}
        except KeyError as err:
            raise ValueError(f"PatchHeads source has no z for layer {err}; capture it with "
                             "model.run_with_cache(prompt, sites=('z',))") from None

    def edits(self, model) -> list[Edit]:
        check_heads(self.heads, model.n_layers, model.n_heads)
        source = self._source_z(model)
        return [Edit(h.layer, "z", _patch_fn(h.head, source[h.layer][:, :, h.head])) for h in self.heads]

    def to_dict(self) -> dict:
        if isinstance(self.source, (str, list, tuple)):
            source = self.source if isinstance(self.source, str) else list(self.source)
        else:
            layers = sorted({h.layer for h in self.heads})
            source = {"z": {str(layer): torch.as_tensor(self.source[layer, "z"]).tolist() for layer in layers}}
        return {"type": "PatchHeads", "heads": [str(h) for h in self.heads], "source": source}

    @classmethod
    def _from_dict(cls, data: dict) -> "PatchHeads":
        _unknown_keys(data, {"heads", "source"}, "PatchHeads")
        source = data["source"]
        if isinstance(source, dict):
            source = {(int(layer), "z"): torch.tensor(values) for layer, values in source["z"].items()}
        return cls(data["heads"], source)

    def __eq__(self, other) -> bool:
        return isinstance(other, PatchHeads) and self.to_dict() == other.to_dict()

    __hash__ = None


@dataclass(frozen=True)
class Compose(Intervention):
    items: tuple[Intervention, ...]

    def __init__(self, items: Iterable[Intervention]):
        flat: list[Intervention] = []
        for item in items:
            if not isinstance(item, Intervention):
                raise TypeError(f"Compose takes interventions, got {type(item).__name__}")
            flat.extend(item.parts())
        object.__setattr__(self, "items", tuple(flat))

    def parts(self) -> tuple[Intervention, ...]:
        return self.items

    def edits(self, model) -> list[Edit]:
        return [edit for item in self.items for edit in item.edits(model)]

    def to_dict(self) -> dict:
        return {"type": "Compose", "items": [item.to_dict() for item in self.items]}

    @classmethod
    def _from_dict(cls, data: dict) -> "Compose":
        _unknown_keys(data, {"items"}, "Compose")
        return cls(Intervention.from_dict(item) for item in data["items"])


_TYPES = {"PruneHeads": PruneHeads, "ScaleValues": ScaleValues, "PatchHeads": PatchHeads, "Compose": Compose}


# --- edit functions (canonical layouts: z [b, pos, head, d], pattern [b, head, q, k]) ---

def _scale_fn(head: int, alpha: float):
    def scale(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        z = z.clone()
        z[:, :, head] *= alpha
        return z
    return scale


def _set_fn(head: int, value: torch.Tensor):
    def set_value(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        z = z.clone()
        z[:, :, head] = value.to(device=z.device, dtype=z.dtype)
        return z
    return set_value


def _patch_fn(head: int, source: torch.Tensor):
    def patch(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        start, stop = ctx.q_offset, min(ctx.q_offset + z.shape[1], source.shape[1])
        if stop <= start:
            return z
        if source.shape[0] not in (1, z.shape[0]):
            raise ValueError(f"PatchHeads source has batch {source.shape[0]}, the run has {z.shape[0]}")
        z = z.clone()
        z[:, : stop - start, head] = source[:, start:stop].to(device=z.device, dtype=z.dtype)
        return z
    return patch


def _uniform_fn(head: int):
    def uniform(pattern: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        q_len, k_len = pattern.shape[-2:]
        allowed = ctx.causal_key_mask(q_len, k_len, pattern.device)[:, 0].to(pattern.dtype)
        allowed = allowed.expand(pattern.shape[0], q_len, k_len)
        pattern = pattern.clone()
        pattern[:, head] = allowed / allowed.sum(-1, keepdim=True).clamp(min=1)
        return pattern
    return uniform
