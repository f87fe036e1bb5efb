"""Head-aware KV-cache policies: which kv heads keep the whole context, and how much the rest keep.

Retrieval heads (Wu et al. 2024) are few; the other heads mostly read a few "sink" positions at
the start and the recent past (DuoAttention, RazorAttention, HeadKV build serving-time savings on
this). A `HeadKVPolicy` says, per kv head, "full" (every position cached) or "streaming" (only the
first `sink` and the `window` most recent positions). Under grouped-query attention the unit that
owns a cache is the kv head: the query heads of a group share it, so a policy is stated over kv
heads and `policy_from` maps query-head scores to kv heads by the max or the mean over the group.

    >>> policy = HeadKVPolicy(full=((0, 1),), n_layers=2, n_kv_heads=2, sink=4, window=16)
    >>> policy.share_full, policy.is_full(0, 1), policy.is_full(1, 0)
    (0.25, True, False)
    >>> HeadKVPolicy.from_dict(policy.to_dict()) == policy
    True

Models with sliding-window layers (Gemma 3: five local layers of 512 positions per global one)
already keep only a window in those layers; `spans` records each layer's own span (0: the whole
context) so that a "full" kv head of a local layer keeps that layer's window, a streaming one
the part of sink + window the layer can still see, and the byte counts compare with the model's
own cache, not with a cache no layer would hold.

A policy is applied at generation: ``model.generate(prompt, kv_policy=policy)`` (see
`interp.kv.cache`); it composes with interventions (they edit activations, it edits the cache).
"""

from __future__ import annotations

import json
import math
import numbers
import random
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ..errors import ArgumentTypeError, InvalidArgumentError, MissingFileError
from ..jsonio import read_user_file

__all__ = [
    "HeadKVPolicy",
    "PolicyLayoutError",
    "KVPolicyWarning",
    "GROUPINGS",
    "policy_from",
    "random_policy",
    "streaming_policy",
    "full_policy",
    "kv_head_scores",
    "layer_spans",
]

GROUPINGS = ("max", "mean")
TIES = ("position", "random")
SCHEMA = "interp.kv_policy/1"


class PolicyLayoutError(InvalidArgumentError):
    """A policy built for another head layout (layers x kv heads) than the model's."""


class KVPolicyWarning(UserWarning):
    """A KV policy that was built as asked but is likely not what was meant (scores or a policy
    of another model, a budget that rounds to no kv head)."""


_MEANING = {  # what each count of a policy is, for the error that refuses a bad one
    "n_layers": "the model's layer count",
    "n_kv_heads": "the model's kv heads per layer",
    "sink": "the first positions every streaming kv head keeps; 4 by default",
    "window": "the most recent positions every streaming kv head keeps; 256 by default",
    "spans entry": "a layer's attention span, 0 for a global layer",
    "full layer/kv head": "zero-based (layer, kv head) indices",
}


def _count(value: Any, name: str, minimum: int) -> int:
    meaning = f" ({_MEANING[name]})" if name in _MEANING else ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(
            f"{name} must be an int >= {minimum}{meaning}, got {type(value).__name__} {value!r}"
        )
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}{meaning}, got {value}")
    return value


def _check_seed(seed: Any, what: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ArgumentTypeError(
            f"seed must be an int ({what}, so the same seed gives the same policy), got "
            f"{type(seed).__name__} {seed!r}"
        )
    return int(seed)


def _warn_other_model(what: str, of: Any, model) -> None:
    """Warn when `what` names a model other than `model` (an empty or missing name: no word)."""
    if isinstance(of, str) and of and of != model.name:
        warnings.warn(
            f"{what} {of!r}, not {model.name!r}: a policy keeps the heads that model scored high; "
            f"build the policy from {model.name!r}'s own scores (or, if it is the same model "
            "under another name, ignore this)",
            KVPolicyWarning,
            stacklevel=3,
        )


@dataclass(frozen=True)
class HeadKVPolicy:
    """Full cache for the kv heads in `full` ((layer, kv_head) pairs); `sink` first and `window`
    most recent positions for every other kv head. `kind` and `budget` record how it was chosen
    ("retrieval", "random", "streaming", "full" or "custom"; the share of kv heads kept whole)."""

    full: tuple
    n_layers: int
    n_kv_heads: int
    sink: int = 4
    window: int = 256
    kind: str = "custom"
    budget: Optional[float] = None
    model: str = ""
    spans: tuple = ()  # per layer: positions it attends over (0: all); () = every layer global

    def __post_init__(self):
        _count(self.n_layers, "n_layers", 1)
        _count(self.n_kv_heads, "n_kv_heads", 1)
        _count(self.sink, "sink", 0)
        _count(self.window, "window", 1)
        if self.budget is not None:
            object.__setattr__(self, "budget", _check_budget(self.budget))
        for name, holds in (("full", "(layer, kv_head) pairs, e.g. [(0, 1)]"), ("spans", "ints")):
            if not isinstance(getattr(self, name), (tuple, list)):
                raise ArgumentTypeError(
                    f"{name} must be a list or tuple of {holds}, got {getattr(self, name)!r}"
                )
        spans = tuple(_count(x, "spans entry", 0) for x in self.spans)
        if spans and len(spans) != self.n_layers:
            raise InvalidArgumentError(
                f"spans holds one span per layer ({self.n_layers}), got {len(spans)}"
            )
        object.__setattr__(self, "spans", spans if any(spans) else ())
        pairs = []
        for pair in self.full:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ArgumentTypeError(
                    f"full holds (layer, kv_head) index pairs such as (0, 1), got {pair!r} "
                    "(kv heads, not query-head names: see interp.kv.kv_head_scores)"
                )
            layer, head = (_count(x, "full layer/kv head", 0) for x in pair)
            if layer >= self.n_layers or head >= self.n_kv_heads:
                raise InvalidArgumentError(
                    f"kv head ({layer}, {head}) is outside {self.n_layers} layers x "
                    f"{self.n_kv_heads} kv heads: give zero-based (layer, kv head) indices "
                    "below those (query head h shares kv head h // (heads per kv head))"
                )
            pairs.append((layer, head))
        object.__setattr__(self, "full", tuple(sorted(set(pairs))))

    # --- what it keeps ------------------------------------------------------------------------

    def is_full(self, layer: int, kv_head: int) -> bool:
        return (layer, kv_head) in self.full

    def full_heads(self, layer: int) -> list[int]:
        """The kv heads of `layer` that keep every position."""
        return [h for l, h in self.full if l == layer]

    def streaming_heads(self, layer: int) -> list[int]:
        full = set(self.full_heads(layer))
        return [h for h in range(self.n_kv_heads) if h not in full]

    @property
    def share_full(self) -> float:
        return len(self.full) / (self.n_layers * self.n_kv_heads)

    def span(self, layer: int) -> int:
        """Positions `layer` attends over (0: the whole context)."""
        return self.spans[layer] if self.spans else 0

    def kept_positions(self, seq_len: int, layer: int, full: bool) -> int:
        """Positions one kv head of `layer` keeps after `seq_len` tokens: those the next query
        may still see (all, or sink + window), within the layer's own span."""
        span = self.span(layer)
        low = max(0, seq_len - span + 1) if span else 0  # the layer sees no position below
        if full:
            return seq_len - low
        sink_end, recent = min(self.sink, seq_len), max(0, seq_len - self.window)
        parts = [(0, seq_len)] if sink_end >= recent else [(0, sink_end), (recent, seq_len)]
        return sum(max(0, end - max(start, low)) for start, end in parts)

    def kv_positions(self, seq_len: int) -> int:
        """Cached (kv head, position) pairs over all layers for a sequence of `seq_len` tokens."""
        total = 0
        for layer in range(self.n_layers):
            n_full = len(self.full_heads(layer))
            total += n_full * self.kept_positions(seq_len, layer, True)
            total += (self.n_kv_heads - n_full) * self.kept_positions(seq_len, layer, False)
        return total

    def kv_bytes(self, seq_len: int, d_head: int, batch: int = 1, bytes_per_value: int = 4) -> int:
        """Theoretical bytes of the kept cache (keys and values) after `seq_len` tokens."""
        return 2 * batch * d_head * bytes_per_value * self.kv_positions(seq_len)

    def check_model(self, model) -> None:
        """Refuse a model whose head layout is not the one this policy was built for; warn
        (`KVPolicyWarning`) when it has that layout but the policy names another model."""
        if (model.n_layers, model.n_kv_heads) != (self.n_layers, self.n_kv_heads):
            raise PolicyLayoutError(
                f"this KV policy is for {self.n_layers} layers x {self.n_kv_heads} kv heads"
                f"{f' ({self.model})' if self.model else ''}; {model.name} has {model.n_layers} x "
                f"{model.n_kv_heads}: build one for this model with "
                f"interp.kv.policy_from(result, model, ...)"
            )
        if self.spans != layer_spans(model):
            raise PolicyLayoutError(
                f"this KV policy is for layer spans {self.spans or 'all global'}; {model.name} "
                f"has {layer_spans(model) or 'all global'}: build one for this model with "
                "interp.kv.policy_from(result, model, ...)"
            )
        _warn_other_model("this KV policy was built for", self.model, model)

    # --- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        out = asdict(self)
        out["full"] = [list(pair) for pair in self.full]
        return {"schema": SCHEMA, **out}

    @classmethod
    def from_dict(cls, data: dict) -> "HeadKVPolicy":
        if not isinstance(data, dict):
            raise InvalidArgumentError(
                f"a KV policy is a JSON object (HeadKVPolicy.to_dict()), got "
                f"{type(data).__name__}; write policies with HeadKVPolicy.save"
            )
        data = dict(data)
        schema = data.pop("schema", SCHEMA)
        if schema != SCHEMA:
            raise InvalidArgumentError(
                f"unknown KV policy schema {schema!r}; this version reads {SCHEMA!r}"
            )
        known = set(cls.__dataclass_fields__)
        if set(data) - known:
            raise InvalidArgumentError(
                f"unknown KV policy key(s) {sorted(set(data) - known)}; known: {sorted(known)}"
            )
        missing = [k for k in ("full", "n_layers", "n_kv_heads") if k not in data]
        if missing:
            raise InvalidArgumentError(
                f"the KV policy has no {', '.join(missing)}: a policy holds full (the kv heads "
                "kept whole), n_layers and n_kv_heads; write policies with HeadKVPolicy.save"
            )
        for key in ("full", "spans"):  # JSON lists back to the tuples the policy holds
            if isinstance(data.get(key), list):
                data[key] = tuple(tuple(x) if isinstance(x, list) else x for x in data[key])
        return cls(**data)

    def save(self, path: Union[str, Path]) -> Path:
        """Write the policy as JSON to `path` (its folder is made when missing)."""
        path = Path(path)
        if path.is_dir():
            raise InvalidArgumentError(
                f"{path} is a folder; give the path of the policy's .json file inside it"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Union[str, Path]) -> "HeadKVPolicy":
        text = read_user_file(path, MissingFileError, "KV policy")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InvalidArgumentError(
                f"KV policy {str(path)!r} is not JSON ({err}); give a file written by "
                "HeadKVPolicy.save (interp kv writes them under policies/)"
            ) from None
        return cls.from_dict(data)


# --- building policies --------------------------------------------------------------------------


def layer_spans(model) -> tuple:
    """Each layer's own attention span: its sliding window for a local layer, 0 for a global
    one; () when every layer is global (the model has no sliding window)."""
    config = getattr(getattr(model, "hf", None), "config", None)
    window = getattr(config, "sliding_window", None)
    if not window:
        return ()
    types = getattr(config, "layer_types", None) or ["sliding_attention"] * model.n_layers
    spans = tuple(int(window) if kind == "sliding_attention" else 0 for kind in types)
    return spans if any(spans) else ()


def _check_budget(budget: Any) -> float:
    if (
        isinstance(budget, bool)
        or not isinstance(budget, (int, float))
        or not math.isfinite(budget)
    ):
        raise ArgumentTypeError(
            f"budget must be a number in [0, 1] (the share of kv heads kept whole), got {budget!r}"
        )
    if not 0 <= budget <= 1:
        raise InvalidArgumentError(
            f"budget must be in [0, 1] (the share of kv heads kept whole), got {budget}"
        )
    return float(budget)


def _n_kept(budget: float, n_layers: int, n_kv_heads: int) -> int:
    total = n_layers * n_kv_heads
    kept = int(round(budget * total))
    if budget > 0 and kept == 0:
        warnings.warn(
            f"budget {budget} of {total} kv heads rounds to none kept whole: this is the "
            f"streaming policy; give budget >= {1 / total:.3g} to keep one kv head (or 0 to "
            "mean none)",
            KVPolicyWarning,
            stacklevel=3,
        )
    return kept


def kv_head_scores(scores: torch.Tensor, n_kv_heads: int, group: str = "max") -> torch.Tensor:
    """Query-head scores [layers, heads] -> kv-head scores [layers, kv_heads]: the max or mean
    over each group of query heads sharing a kv head (unscored NaN heads count as -inf for max
    and are left out of the mean)."""
    if group not in GROUPINGS:
        raise InvalidArgumentError(
            f"group must be one of {GROUPINGS} (how a kv head scores from its query heads), "
            f"got {group!r}"
        )
    _count(n_kv_heads, "n_kv_heads", 1)
    n_layers, n_heads = scores.shape
    if n_heads % n_kv_heads:
        raise InvalidArgumentError(
            f"{n_heads} query heads do not split into {n_kv_heads} kv groups"
        )
    grouped = scores.float().reshape(n_layers, n_kv_heads, n_heads // n_kv_heads)
    if group == "max":
        return torch.nan_to_num(grouped, nan=float("-inf")).max(-1).values
    out = torch.nanmean(grouped, -1)
    return torch.nan_to_num(out, nan=float("-inf"))


def policy_from(
    result,
    model,
    *,
    budget: Optional[float] = None,
    threshold: Optional[float] = None,
    group: str = "max",
    sink: int = 4,
    window: int = 256,
    ties: str = "position",
    seed: Optional[int] = None,
) -> HeadKVPolicy:
    """The policy that keeps the highest-scoring kv heads whole.

    `result`: a retrieval result (anything with ``.scores``, a `HeadScores`), or a `HeadScores`,
    or a [layers, heads] tensor. Give `budget` (share of kv heads kept whole, top by score) or
    `threshold` (every kv head whose grouped score exceeds it).

    A budget larger than the scored heads is filled from heads of equal score (often the many
    heads that scored 0): `ties="position"` takes them in (layer, kv head) order, earliest first,
    which carries a layer prior of its own (`layer_order_policy` is that order alone);
    `ties="random"` draws them at random (seeded by `seed`, 0 when not given), so only the
    scores choose. A `seed` with ``ties="position"`` draws nothing (`KVPolicyWarning`)."""
    holder = getattr(result, "scores", result)  # a retrieval result holds a HeadScores
    holder = result if isinstance(holder, torch.Tensor) else holder
    scores = getattr(holder, "scores", holder)
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        got = type(result).__name__
        if isinstance(scores, torch.Tensor):
            got = f"a {scores.dim()}-dim tensor of shape {tuple(scores.shape)}"
        raise ArgumentTypeError(
            f"policy_from needs a retrieval result, HeadScores or [layers, heads] tensor, "
            f"got {got}; for a list pass torch.tensor(scores), for a file "
            "HeadScores.from_json(path)"
        )
    if tuple(scores.shape) != (model.n_layers, model.n_heads):
        raise PolicyLayoutError(
            f"scores of shape {tuple(scores.shape)} are not for {model.name} "
            f"({model.n_layers} layers x {model.n_heads} heads): give scores of this model's "
            "query heads (e.g. its retrieval result)"
        )
    if bool(torch.isnan(scores.float()).all()):
        warnings.warn(
            "the scores hold no scored head (every entry is NaN), so this policy is layer "
            "order alone (budget=) or keeps no kv head whole (threshold=); give the scores of a "
            "run that scored heads (for that control on purpose: interp.kv.layer_order_policy)",
            KVPolicyWarning,
            stacklevel=2,
        )
    _warn_other_model("these scores are of", getattr(holder, "model", None), model)
    if (budget is None) == (threshold is None):
        raise InvalidArgumentError(
            "give exactly one of budget= (share of kv heads) or threshold= (score cut)"
        )
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or not math.isfinite(threshold)
    ):
        raise ArgumentTypeError(
            f"threshold must be a finite number (kv heads scoring above it are kept whole), "
            f"got {type(threshold).__name__} {threshold!r}"
        )
    if ties not in TIES:
        raise InvalidArgumentError(
            f"ties must be one of {TIES} (how heads of equal score are taken), got {ties!r}"
        )
    if seed is not None:
        seed = _check_seed(seed, "it orders the random ties")
        if ties == "position":
            warnings.warn(
                f"seed={seed} draws nothing with ties='position' (heads of equal score are "
                "taken in layer order); pass ties='random' for seeded ties, or leave seed out",
                KVPolicyWarning,
                stacklevel=2,
            )
    grouped = kv_head_scores(scores, model.n_kv_heads, group)
    flat = grouped.flatten()
    if budget is not None:
        budget = _check_budget(budget)
        tie_rank = list(range(flat.numel()))
        if ties == "random":
            random.Random(f"kv-ties/{seed or 0}/{budget}").shuffle(tie_rank)
        order = sorted(range(flat.numel()), key=lambda i: (-float(flat[i]), tie_rank[i]))
        chosen = order[: _n_kept(budget, model.n_layers, model.n_kv_heads)]
    else:
        chosen = [i for i in range(flat.numel()) if float(flat[i]) > float(threshold)]
        budget = len(chosen) / flat.numel()
    full = tuple(divmod(i, model.n_kv_heads) for i in chosen)
    kind = f"retrieval/{group}" + ("/random-ties" if ties == "random" else "")
    return _built(model, full, kind, budget, sink, window)


def _kv_heads(model) -> list[tuple[int, int]]:
    """Every (layer, kv head) of `model`, in layer order."""
    return [(l, h) for l in range(model.n_layers) for h in range(model.n_kv_heads)]


def _built(model, full, kind: str, budget: float, sink: int, window: int) -> HeadKVPolicy:
    """A policy for `model`'s layout that keeps the `full` (layer, kv head) pairs whole."""
    return HeadKVPolicy(
        tuple(full),
        model.n_layers,
        model.n_kv_heads,
        sink,
        window,
        kind=kind,
        budget=budget,
        model=model.name,
        spans=layer_spans(model),
    )


def layer_order_policy(model, budget: float, *, sink: int = 4, window: int = 256) -> HeadKVPolicy:
    """The first kv heads in (layer, kv head) order, as many as `budget` asks: no scores at all.
    A control for `policy_from`, whose ties fall back to this order: what it keeps beyond the
    scored heads is this policy's choice."""
    budget = _check_budget(budget)
    full = tuple(_kv_heads(model)[: _n_kept(budget, model.n_layers, model.n_kv_heads)])
    return _built(model, full, "layer_order", budget, sink, window)


def random_policy(
    model, budget: float, seed: int, *, sink: int = 4, window: int = 256
) -> HeadKVPolicy:
    """The same number of kv heads kept whole as `budget` asks, drawn at random (seeded)."""
    budget = _check_budget(budget)
    rng = random.Random(f"kv-random/{_check_seed(seed, 'it draws the kv heads')}/{budget}")
    full = tuple(rng.sample(_kv_heads(model), _n_kept(budget, model.n_layers, model.n_kv_heads)))
    return _built(model, full, "random", budget, sink, window)


def streaming_policy(model, *, sink: int = 4, window: int = 256) -> HeadKVPolicy:
    """Every kv head keeps only sink + window (StreamingLLM's cache, for all heads)."""
    return _built(model, (), "streaming", 0.0, sink, window)


def full_policy(model) -> HeadKVPolicy:
    """Every kv head keeps every position: the full cache, through the policy's code path."""
    return HeadKVPolicy(
        tuple(_kv_heads(model)),
        model.n_layers,
        model.n_kv_heads,
        kind="full",
        budget=1.0,
        model=model.name,
        spans=layer_spans(model),
    )
