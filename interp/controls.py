"""The random-head control, one function for every analyzer.

A located set of heads means something only if pruning (or scaling, or patching) as many random
heads does not do the same. `random_head_control` draws `n_draws` distinct sets of `k` heads,
seeded, from a pool, hands them to the analyzer's `measure` (which may batch them into one
forward), and reports every draw and the spread of their magnitudes the same way everywhere:

    {"k", "n_draws", "seed", "pool", "pool_size",
     "draws": [{"heads": ["L0H1", ...], "value": ...}, ...],
     "mean", "median", "max", "min", "limit", "share_within_limit"}

The pool is every head outside the located ones by default (`pool="outside"`: the control tests
specificity; drawing inside the circuit tests redundancy), every head but the measured ones
(`pool="others"`), or the located heads themselves (`pool="inside"`).

    >>> from interp.heads import Head
    >>> heads = [Head(l, h) for l in range(2) for h in range(4)]
    >>> sets = draw_head_sets(heads, 2, 3, seed=0, tag="doc")
    >>> len(sets), all(len(s) == 2 for s in sets), len(set(sets)) == 3
    (3, True, True)
"""

from __future__ import annotations

import math
import random
import statistics
from typing import Any, Callable, Optional, Sequence

from .errors import InvalidArgumentError
from .heads import Head

__all__ = ["POOLS", "draw_head_sets", "control_pool", "random_head_control", "per_set"]

POOLS = ("outside", "others", "inside")

Measure = Callable[[list[tuple[Head, ...]]], list[Any]]


def draw_head_sets(
    pool: Sequence[Head], k: int, n_draws: int, seed: int, tag: str = ""
) -> list[tuple[Head, ...]]:
    """Up to `n_draws` distinct sets of `k` heads from `pool`, each sorted, seeded by
    (`seed`, `k`, `tag`): the same arguments always give the same sets; fewer come back only
    when the pool has fewer distinct k-sets than asked."""
    pool = sorted(set(pool))
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidArgumentError(f"k must be a positive int, got {k!r}")
    if k > len(pool):
        raise InvalidArgumentError(
            f"cannot draw {k} heads from a pool of {len(pool)}; lower k or widen the pool"
        )
    rng = random.Random(f"random-heads/{tag}/{int(seed)}/{k}")
    wanted = min(int(n_draws), math.comb(len(pool), k))
    picks: list[tuple[Head, ...]] = []
    while len(picks) < wanted:
        pick = tuple(sorted(rng.sample(pool, k)))
        if pick not in picks:
            picks.append(pick)
    return picks


def control_pool(
    all_heads: Sequence[Head],
    located: Sequence[Head],
    pool: str = "outside",
    measured: Sequence[Head] = (),
) -> list[Head]:
    """The heads a control draws from: outside `located` (and `measured`), every head but
    `measured`, or inside `located`."""
    if pool not in POOLS:
        raise InvalidArgumentError(f"pool must be one of {POOLS}, got {pool!r}")
    located, measured = set(located), set(measured)
    if pool == "inside":
        return [h for h in all_heads if h in located and h not in measured]
    skip = measured if pool == "others" else located | measured
    return [h for h in all_heads if h not in skip]


def per_set(fn: Callable[[tuple[Head, ...]], Any]) -> Measure:
    """A `measure` that calls `fn` once per head set (when the analyzer cannot batch them)."""
    return lambda sets: [fn(s) for s in sets]


def random_head_control(
    all_heads: Sequence[Head],
    measure: Measure,
    k: int,
    *,
    n_draws: int,
    seed: int,
    located: Sequence[Head] = (),
    measured: Sequence[Head] = (),
    pool: str = "outside",
    tag: str = "",
    magnitude: Optional[Callable[[Any], float]] = None,
    limit: Optional[float] = None,
) -> dict:
    """Measure `n_draws` random sets of `k` heads and report them the same way everywhere.

    all_heads: every head of the model (`model.all_heads()`).
    measure: head sets -> one value per set (a number or a dict); may batch the sets.
    located / measured: the heads the analysis named, and those the causal check itself used;
        see the module docstring for `pool`.
    magnitude: value -> the number whose spread is reported (default: the value itself).
    limit: the control's stated bound on that number; `share_within_limit` counts the draws
        at most `limit` (None when no limit is given).
    """
    heads = control_pool(all_heads, located, pool, measured)
    sets = draw_head_sets(heads, k, n_draws, seed, tag)
    values = list(measure(sets)) if sets else []
    if len(values) != len(sets):
        raise InvalidArgumentError(
            f"measure returned {len(values)} values for {len(sets)} head sets"
        )
    size = magnitude or float
    mags = [float(size(v)) for v in values]
    return {
        "k": k,
        "n_draws": len(sets),
        "seed": seed,
        "pool": pool,
        "pool_size": len(heads),
        "draws": [{"heads": [h.name for h in s], "value": v} for s, v in zip(sets, values)],
        "mean": statistics.fmean(mags) if mags else None,
        "median": statistics.median(mags) if mags else None,
        "max": max(mags, default=None),
        "min": min(mags, default=None),
        "limit": limit,
        "share_within_limit": (sum(m <= limit for m in mags) / len(mags))
        if mags and limit is not None
        else None,
    }
