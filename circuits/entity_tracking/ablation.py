"""Ablation, minimality and faithfulness: what a circuit does with every other head replaced by
its mean output.

Two ablations: ``"mean"``, each ablated head's z set to its mean over all tokens of the
reference prompts (`PruneHeads.with_means`), or ``"position-mean"``, its mean at each position
(box prompts of one size share their layout, so position t means the same thing in every
prompt). Faithfulness = circuit accuracy / full-model accuracy; `prune_minimal` drops the heads
a circuit does not need; `random_control` measures random circuits of the same size, drawn
outside the circuit by default (`interp.controls`).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Optional

import torch

from interp.backends.plan import Edit
from interp.controls import control_pool, random_head_control
from interp.data.boxes import BoxDataset
from interp.errors import InvalidArgumentError
from interp.heads import Head
from interp.interventions import Intervention, PruneHeads
from interp.patching import head_z
from interp.progress import track
from interp.results import data_hash

from .config import ABLATIONS
from .metrics import accuracy

__all__ = [
    "ablate_others",
    "position_means",
    "PositionMeans",
    "ablation_sources",
    "circuit_accuracy",
    "faithfulness",
    "prune_minimal",
    "random_control",
    "random_faithfulness",
]


def ablate_others(model, heads, reference: BoxDataset, ablation: str = "mean"):
    """The intervention that ablates every head not in `heads` (None when none is left out)."""
    if ablation not in ABLATIONS:
        raise InvalidArgumentError(f"ablation must be one of {ABLATIONS}, got {ablation!r}")
    keep = set(heads)
    others = [h for h in model.all_heads() if h not in keep]
    if not others:
        return None
    if ablation == "mean":
        return PruneHeads.with_means(model, others, list(reference.prompts))
    return PositionMeans(tuple(others), position_means(model, reference))


_POSITION_MEANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def position_means(model, reference: BoxDataset) -> dict:
    """{layer: [pos, H, d_head]} mean z of every head at each position over `reference`
    (computed once per model and prompt set)."""
    key = data_hash(list(reference.prompts))
    cache = _POSITION_MEANS.setdefault(model, {})
    if key not in cache:
        z = head_z(model, model.to_tokens(list(reference.prompts)))
        cache[key] = {layer: t.mean(0) for layer, t in z.items()}  # [pos, H, d]
    return cache[key]


@dataclass(frozen=True)
class PositionMeans(Intervention):
    """Set heads' z to a per-position mean ([pos, H, d] per layer); prompts must share that
    length."""

    heads: tuple
    means: dict = field(compare=False, repr=False)

    def edits(self, model):
        layers = sorted({h.layer for h in self.heads})
        return [
            Edit(
                l, "z", _set_positions([h.head for h in self.heads if h.layer == l], self.means[l])
            )
            for l in layers
        ]


def _set_positions(heads: list, mean: torch.Tensor):
    def fn(z: torch.Tensor, ctx) -> torch.Tensor:
        if z.shape[1] != mean.shape[0] or ctx.q_offset:
            raise InvalidArgumentError(
                f"position-mean ablation needs prompts of {mean.shape[0]} tokens, got {z.shape[1]}"
            )
        z = z.clone()
        z[:, :, heads] = mean[:, heads].to(device=z.device, dtype=z.dtype)
        return z

    return fn


def ablation_sources(model, reference: BoxDataset, ablation: str) -> dict:
    """What an ablated head's z becomes, per layer, broadcastable to [batch, pos, H, d]."""
    if ablation == "mean":
        table = model.head_means(list(reference.prompts))
        return {
            layer: table[layer][None, None].float().to(model.device)
            for layer in range(model.n_layers)
        }
    return {layer: t[None].float() for layer, t in position_means(model, reference).items()}


def circuit_accuracy(
    model,
    heads,
    data: BoxDataset,
    reference: BoxDataset,
    *,
    batch_size: int = 64,
    backend=None,
    ablation: str = "mean",
) -> float:
    """Accuracy with every head outside `heads` mean-ablated (means over `reference` prompts)."""
    return accuracy(
        model,
        data,
        ablate_others(model, heads, reference, ablation),
        batch_size=batch_size,
        backend=backend,
    )


def faithfulness(
    model,
    heads,
    data: BoxDataset,
    reference: BoxDataset,
    full: Optional[float] = None,
    ablation: str = "mean",
    **kw,
) -> float:
    """circuit accuracy / full-model accuracy."""
    full = accuracy(model, data, **kw) if full is None else full
    return circuit_accuracy(model, heads, data, reference, ablation=ablation, **kw) / max(
        full, 1e-12
    )


def prune_minimal(
    model,
    groups: dict,
    data: BoxDataset,
    reference: BoxDataset,
    cost: float,
    scores: dict,
    full: float,
    current: Optional[float] = None,
    **kw,
) -> tuple[dict, list[Head]]:
    """Drop, weakest first, each head whose removal lowers circuit accuracy by < cost * full."""
    groups = {k: list(v) for k, v in groups.items()}
    order = sorted(
        (
            (abs(float(scores[k].scores[h.layer, h.head])), k, h)
            for k, hs in groups.items()
            for h in hs
        ),
        key=lambda t: t[0],
    )
    if current is None:  # the circuit's accuracy before pruning (callers that have it pass it)
        current = circuit_accuracy(
            model, [h for hs in groups.values() for h in hs], data, reference, **kw
        )
    removed = []
    for _, key, head in track(order, "entity: minimality pruning", unit="head"):
        trial = [h for hs in groups.values() for h in hs if h != head]
        acc = circuit_accuracy(model, trial, data, reference, **kw)
        if current - acc < cost * full:
            groups[key].remove(head)
            removed.append(head)
            current = acc
    return groups, removed


def random_control(
    model,
    k: int,
    data: BoxDataset,
    reference: BoxDataset,
    full: float,
    n_draws: int,
    seed: int,
    *,
    located=(),
    pool: str = "outside",
    **kw,
) -> dict:
    """`interp.controls.random_head_control` over circuits of `k` random heads: each draw's value
    is its faithfulness on `data`. The pool is every head outside `located` by default (does the
    circuit matter more than as many other heads?); ``pool="inside"`` draws from the circuit
    itself and ``"others"`` from every head. A pool smaller than `k` gives no draws (the dict
    says so with ``n_draws == 0``) rather than an error."""

    def faith(heads) -> float:
        return circuit_accuracy(model, list(heads), data, reference, **kw) / max(full, 1e-12)

    def measure(sets):
        return [faith(s) for s in track(sets, "entity: random circuits", unit="circuit")]

    all_heads = model.all_heads()
    pool_size = len(control_pool(all_heads, located, pool))
    if not 1 <= k <= pool_size:
        return {
            "k": k,
            "n_draws": 0,
            "seed": seed,
            "pool": pool,
            "pool_size": pool_size,
            "draws": [],
        }
    return random_head_control(
        all_heads,
        measure,
        k,
        n_draws=n_draws,
        seed=seed,
        located=located,
        pool=pool,
        tag="entity_tracking",
    )


def random_faithfulness(
    model,
    sizes: dict,
    data: BoxDataset,
    reference: BoxDataset,
    full: float,
    n_draws: int,
    seed: int,
    *,
    located=(),
    pool: str = "outside",
    **kw,
) -> list[float]:
    """Faithfulness of `n_draws` random circuits as large as the groups `sizes` together
    (`random_control`'s draws)."""
    control = random_control(
        model,
        sum(sizes.values()),
        data,
        reference,
        full,
        n_draws,
        seed,
        located=located,
        pool=pool,
        **kw,
    )
    return [d["value"] for d in control["draws"]]
