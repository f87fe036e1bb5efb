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
import numbers
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence, Union

import torch

from .backends.plan import Edit, EditContext
from .errors import ArgumentTypeError, InterventionError
from .heads import Head, HeadLike, check_heads, parse_heads
from .jsonio import read_json_text, write_json_text
from .patch_source import check_source, patch_fn, real_aligned

__all__ = [
    "Intervention",
    "PruneHeads",
    "ScaleValues",
    "PatchHeads",
    "Compose",
    "PRUNE_MODES",
    "InterventionError",
    "MAX_ALPHA",
]

PRUNE_MODES = ("zero", "mean", "uniform")
MAX_ALPHA = 1e4
"""The largest |alpha| ScaleValues takes: beyond it fp32 activations overflow downstream (1e38
passes a finiteness check and turns every logit into NaN or 0), and no paper's sweep goes near."""


class Intervention:
    """Base class: compile to edits, combine with ``+``, serialise to JSON."""

    def edits(self, model) -> list[Edit]:
        raise NotImplementedError

    def parts(self) -> tuple["Intervention", ...]:
        return (self,)

    def __add__(self, other: "Intervention") -> "Compose":
        if not isinstance(other, Intervention):
            raise ArgumentTypeError(
                f"an intervention combines with + only with another intervention, got "
                f"{type(other).__name__} {other!r}; e.g. PruneHeads(['L1H0']) + "
                "ScaleValues('L2H3', 2.0)"
            )
        return Compose(self.parts() + other.parts())

    def to_dict(self) -> dict:
        raise NotImplementedError

    def to_json(self, path=None, indent: int = 2) -> str:
        """JSON text of this intervention (written to `path` too, if given)."""
        return write_json_text(self.to_dict(), path, indent)

    @staticmethod
    def from_dict(data: dict) -> "Intervention":
        if not isinstance(data, dict) or "type" not in data:
            raise InterventionError(
                f"an intervention must be a JSON object with a 'type' field; got {data!r:.200}"
            )
        kind = data["type"]
        if not isinstance(kind, str) or kind not in _TYPES:
            raise InterventionError(
                f"unknown intervention type {kind!r}; known: {', '.join(_TYPES)}"
            )
        return _TYPES[kind]._from_dict(data)

    @staticmethod
    def from_json(text_or_path: str) -> "Intervention":
        """Read an intervention from JSON text or from a file path."""
        return Intervention.from_dict(
            read_json_text(text_or_path, InterventionError, "intervention recipe")
        )


def _heads_field(heads) -> tuple[Head, ...]:
    parsed = parse_heads(heads)
    if not parsed:
        raise InterventionError("an intervention needs at least one head, e.g. ['L0H1']")
    return parsed


def _one_head(spec) -> Head:
    """One head; a list of heads gets an error that shows how to scale several."""
    if isinstance(spec, (list, tuple)) and (
        len(spec) != 2
        or any(
            isinstance(x, (Head, list, tuple)) or (isinstance(x, str) and not x.strip().isdigit())
            for x in spec
        )
    ):
        raise InterventionError(
            f"ScaleValues scales one head, got {spec!r}; for several heads add them: "
            "ScaleValues('L1H0', 2.0) + ScaleValues('L2H3', 2.0)"
        )
    return Head.parse(spec)


def _unknown_keys(data: dict, allowed: set[str], kind: str, required: tuple[str, ...] = ()) -> None:
    """Refuse a recipe with fields `kind` does not have, or without the `required` ones."""
    extra = set(data) - allowed - {"type"}
    if extra:
        raise InterventionError(
            f"{kind} got unknown field(s) {sorted(extra)}; allowed: {sorted(allowed)}"
        )
    missing = [key for key in required if key not in data]
    if missing:
        raise InterventionError(
            f"{kind} recipe is missing the field(s) {missing}; e.g. " f"{_EXAMPLES.get(kind, '{}')}"
        )


_EXAMPLES = {
    "PruneHeads": '{"type": "PruneHeads", "heads": ["L0H1"]}',
    "ScaleValues": '{"type": "ScaleValues", "head": "L1H0", "alpha": 2.0}',
    "PatchHeads": '{"type": "PatchHeads", "heads": ["L1H0"], "source": "a prompt"}',
    "Compose": '{"type": "Compose", "items": [{"type": "PruneHeads", "heads": ["L0H1"]}]}',
}


@dataclass(frozen=True)
class PruneHeads(Intervention):
    heads: tuple[Head, ...]
    mode: str = "zero"
    means: Optional[tuple[tuple[float, ...], ...]] = field(default=None, repr=False)

    def __init__(
        self,
        heads: Union[HeadLike, Iterable[HeadLike]],
        mode: str = "zero",
        means: Optional[Sequence[Sequence[float]]] = None,
    ):
        if mode not in PRUNE_MODES:
            raise InterventionError(f"PruneHeads mode must be one of {PRUNE_MODES}, got {mode!r}")
        object.__setattr__(self, "heads", _heads_field(heads))
        object.__setattr__(self, "mode", mode)
        if means is not None:
            means = tuple(tuple(float(x) for x in row) for row in means)
            if not all(math.isfinite(x) for row in means for x in row):
                raise InterventionError(
                    "PruneHeads means hold NaN or inf, which would make every later logit NaN; "
                    "build them with PruneHeads.with_means(model, heads, texts)"
                )
            if len(means) != len(self.heads):
                raise InterventionError(
                    f"PruneHeads got {len(means)} mean vectors for {len(self.heads)} heads; "
                    "give one per head, or build them with "
                    "PruneHeads.with_means(model, heads, texts)"
                )
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
        if self.means is not None and any(len(row) != model.d_head for row in self.means):
            lengths = sorted({len(row) for row in self.means})
            raise InterventionError(
                f"PruneHeads means have length {lengths}, {model.name} has d_head "
                f"{model.d_head}; build them with PruneHeads.with_means(model, heads, texts)"
            )
        if self.mode == "mean" and self.means is None:
            raise InterventionError(
                "PruneHeads(mode='mean') needs reference means: build it with "
                "PruneHeads.with_means(model, heads, texts)"
            )
        if self.mode == "uniform":
            by_layer: dict[int, list[int]] = {}
            for h in self.heads:  # one pattern copy per layer, not one per head
                by_layer.setdefault(h.layer, []).append(h.head)
            return [
                Edit(layer, "pattern", _uniform_fn(tuple(heads)))
                for layer, heads in by_layer.items()
            ]
        if self.mode == "mean":
            return [
                Edit(h.layer, "z", _set_fn(h.head, torch.tensor(m)))
                for h, m in zip(self.heads, self.means)
            ]
        return [Edit(h.layer, "z", _scale_fn(h.head, 0.0)) for h in self.heads]

    def to_dict(self) -> dict:
        data = {"type": "PruneHeads", "heads": [str(h) for h in self.heads], "mode": self.mode}
        if self.means is not None:
            data["means"] = [list(m) for m in self.means]
        return data

    @classmethod
    def _from_dict(cls, data: dict) -> "PruneHeads":
        _unknown_keys(data, {"heads", "mode", "means"}, "PruneHeads", ("heads",))
        return cls(data["heads"], data.get("mode", "zero"), data.get("means"))


@dataclass(frozen=True)
class ScaleValues(Intervention):
    head: Head
    alpha: float

    def __init__(self, head: HeadLike, alpha: float):
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise ArgumentTypeError(
                f"ScaleValues alpha must be a number, got {type(alpha).__name__} {alpha!r}"
            )
        alpha = float(alpha)
        if not math.isfinite(alpha) or abs(alpha) > MAX_ALPHA:
            raise InterventionError(
                f"ScaleValues alpha must be a finite number with |alpha| <= {MAX_ALPHA:g}, "
                f"got {alpha}"
            )
        object.__setattr__(self, "head", _one_head(head))
        object.__setattr__(self, "alpha", alpha)

    def edits(self, model) -> list[Edit]:
        check_heads([self.head], model.n_layers, model.n_heads)
        return [Edit(self.head.layer, "z", _scale_fn(self.head.head, self.alpha, self.head.layer))]

    def to_dict(self) -> dict:
        return {"type": "ScaleValues", "head": str(self.head), "alpha": self.alpha}

    @classmethod
    def _from_dict(cls, data: dict) -> "ScaleValues":
        _unknown_keys(data, {"head", "alpha"}, "ScaleValues", ("head", "alpha"))
        return cls(data["head"], data["alpha"])


@dataclass(frozen=True)
class PatchHeads(Intervention):
    """Overwrite heads' z with values from a source run.

    source: a prompt (or list of prompts, one per batch row, or one for all rows), run first
    without interventions; or a mapping ``{(layer, "z"): tensor [batch, pos, n_heads, d_head]}``
    such as the cache returned by `Model.run_with_cache`. Positions are matched by real token:
    the i-th real token of a target row takes the i-th real token of its source row, whatever
    left padding either side has (a text source's padding is known; a z mapping is taken as
    unpadded unless it is an `ActivationCache`, whose tokens say). Target tokens beyond the
    source's length are left as they are. Shapes are checked against the model when applied.
    """

    heads: tuple[Head, ...]
    source: Any = field(compare=False)

    def __init__(self, heads, source):
        object.__setattr__(self, "heads", _heads_field(heads))
        if source is None or (isinstance(source, (str, list, tuple)) and len(source) == 0):
            raise InterventionError(
                "PatchHeads needs a source: a prompt, a list of prompts, or a z cache"
            )
        if not isinstance(source, (str, list, tuple)) and not hasattr(source, "keys"):
            raise ArgumentTypeError(
                f"PatchHeads source must be a prompt, a list of prompts, or a z cache keyed by "
                f"(layer, 'z') (from model.run_with_cache), got {type(source).__name__} {source!r}"
            )
        object.__setattr__(self, "source", source)

    def _source_z(self, model) -> tuple[dict[int, torch.Tensor], Optional[torch.Tensor]]:
        """({layer: z [b, pos, n_heads, d_head]}, the source's key mask [b, pos] or None)."""
        layers = sorted({h.layer for h in self.heads})
        source = self.source
        if isinstance(source, (str, list, tuple)):
            _, source = model.run_with_cache(
                source, sites=("z",), layers=layers, use_interventions=False
            )
        zs = {}
        for layer in layers:
            try:
                zs[layer] = torch.as_tensor(source[layer, "z"])
            except KeyError:
                keys = list(source.keys())[:4] if hasattr(source, "keys") else type(source).__name__
                raise InterventionError(
                    f"PatchHeads source has no z for layer {layer} (it is keyed by "
                    f"(layer, 'z'); got "
                    f"{keys}); capture it with model.run_with_cache(prompt, sites=('z',))"
                ) from None
        tokens = getattr(source, "tokens", None)
        mask = None if tokens is None else tokens.attention_mask.bool()
        for layer, z in zs.items():
            check_source(z, model, layer, mask)
        return zs, mask

    def edits(self, model) -> list[Edit]:
        check_heads(self.heads, model.n_layers, model.n_heads)
        source, mask = self._source_z(model)
        return [
            Edit(h.layer, "z", patch_fn(h.head, *real_aligned(source[h.layer][:, :, h.head], mask)))
            for h in self.heads
        ]

    def to_dict(self) -> dict:
        if isinstance(self.source, (str, list, tuple)):
            source = self.source if isinstance(self.source, str) else list(self.source)
        else:
            layers = sorted({h.layer for h in self.heads})
            source = {
                "z": {
                    str(layer): torch.as_tensor(self.source[layer, "z"]).tolist()
                    for layer in layers
                }
            }
        return {"type": "PatchHeads", "heads": [str(h) for h in self.heads], "source": source}

    @classmethod
    def _from_dict(cls, data: dict) -> "PatchHeads":
        _unknown_keys(data, {"heads", "source"}, "PatchHeads", ("heads", "source"))
        source = data["source"]
        if isinstance(source, dict):
            source = {
                (int(layer), "z"): torch.tensor(values) for layer, values in source["z"].items()
            }
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
                raise ArgumentTypeError(
                    f"Compose takes Intervention objects, got {type(item).__name__} {item!r}; "
                    "e.g. Compose([PruneHeads(['L1H0']), ScaleValues('L2H3', 2.0)])"
                )
            flat.extend(item.parts())
        if not flat:
            raise InterventionError(
                "Compose needs at least one intervention, e.g. " "Compose([PruneHeads(['L0H1'])])"
            )
        object.__setattr__(self, "items", tuple(flat))

    def parts(self) -> tuple[Intervention, ...]:
        return self.items

    def edits(self, model) -> list[Edit]:
        return [edit for item in self.items for edit in item.edits(model)]

    def to_dict(self) -> dict:
        return {"type": "Compose", "items": [item.to_dict() for item in self.items]}

    @classmethod
    def _from_dict(cls, data: dict) -> "Compose":
        _unknown_keys(data, {"items"}, "Compose", ("items",))
        if not isinstance(data["items"], list):
            raise InterventionError(
                f"Compose items must be a list of interventions, got {data['items']!r:.200}"
            )
        return cls(Intervention.from_dict(item) for item in data["items"])


_TYPES: dict[str, Any] = {
    "PruneHeads": PruneHeads,
    "ScaleValues": ScaleValues,
    "PatchHeads": PatchHeads,
    "Compose": Compose,
}


# --- edit functions (canonical layouts: z [b, pos, head, d], pattern [b, head, q, k]) ---


def _scale_fn(head: int, alpha: float, layer: Optional[int] = None):
    """Multiply one head's z by alpha; refuse a product that overflows the model's dtype (a
    float16 model turns z * 1e4 into inf, then NaN logits) instead of passing it on."""

    def scale(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        given = z
        z = z.clone()
        z[:, :, head] *= alpha
        if (
            abs(alpha) > 1
            and not bool(torch.isfinite(z[:, :, head]).all())
            and bool(torch.isfinite(given[:, :, head]).all())
        ):
            raise InterventionError(
                f"ScaleValues alpha {alpha:g} overflows {str(z.dtype).replace('torch.', '')} "
                f"at L{layer}H{head} (its z reaches "
                f"{float(given[:, :, head].abs().max()):.3g}); use a smaller |alpha|, or load "
                "the model in float32 (interp.load(..., dtype=torch.float32))"
            )
        return z

    return scale


def _set_fn(head: int, value: torch.Tensor):
    def set_value(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        z = z.clone()
        z[:, :, head] = value.to(device=z.device, dtype=z.dtype)
        return z

    return set_value


def _uniform_fn(heads):
    """Set the pattern of `heads` (an int or a tuple of one layer's heads) to uniform over each
    query's allowed keys."""
    head = list(heads) if isinstance(heads, tuple) else [heads]

    def uniform(pattern: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        q_len, k_len = pattern.shape[-2:]
        allowed = ctx.causal_key_mask(q_len, k_len, pattern.device)[:, 0].to(pattern.dtype)
        allowed = allowed.expand(pattern.shape[0], q_len, k_len)
        pattern = pattern.clone()
        pattern[:, head] = (allowed / allowed.sum(-1, keepdim=True).clamp(min=1))[:, None]
        return pattern

    return uniform
