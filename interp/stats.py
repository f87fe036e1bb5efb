"""Statistics every analyzer shares: rank correlation, bootstrap intervals, binomial intervals,
and how typical a random control's draws are.

One definition each, so that "Spearman 0.98" or "CI 8.4-9.9" means the same thing in every
summary.json:

- `spearman(a, b)`: Pearson correlation of average ranks over the pairs where both values are
  finite; None when fewer than two such pairs remain or a side is constant (no rank order to
  correlate), never NaN.
- `bootstrap_means(x, n_boot, seed)` / `interval(boot, ci)`: percentile bootstrap over rows.
- `wilson(k, n)`: Wilson score interval of a rate.
- `draw_spread(magnitudes)`: median and share within a limit of a random control's draws.

    >>> spearman([0.1, 0.5, 0.9], [1, 2, 3])
    1.0
    >>> spearman([1, 1, 1], [1, 2, 3]) is None
    True
"""

from __future__ import annotations

import math
import statistics
from typing import Optional, Sequence

import numpy as np
import torch

from .errors import InvalidArgumentError

__all__ = ["ranks", "spearman", "bootstrap_means", "interval", "wilson", "draw_spread"]


def ranks(x) -> np.ndarray:
    """Ranks 1..n of a 1-d series, ties given their average rank."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    order = np.argsort(x, kind="stable")
    out = np.empty(len(x))
    out[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tie = x == value
        out[tie] = out[tie].mean()
    return out


def _flat(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().double().reshape(-1).cpu().numpy()
    return np.asarray(
        list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64
    ).reshape(-1)


def spearman(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """Spearman rank correlation of two equal-length series (or equal-shape grids).

    Pairs where either value is NaN or infinite are dropped; ties get average ranks. Returns
    None when fewer than two pairs remain or either side is constant.
    """
    x, y = _flat(a), _flat(b)
    if x.shape != y.shape:
        raise InvalidArgumentError(
            f"spearman needs two series of equal length, got {x.size} and {y.size} values"
        )
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2:
        return None
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return None if den == 0 else float((rx * ry).sum()) / den


def bootstrap_means(x: torch.Tensor, n_boot: int, seed: int) -> torch.Tensor:
    """[n_boot, ...] means of `x` [n, ...] over resampled rows (bootstrap over examples)."""
    n = x.shape[0]
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(n, (n_boot, n), generator=g)
    ones = torch.ones(n_boot, n, dtype=torch.float64)
    weights = torch.zeros(n_boot, n, dtype=torch.float64).scatter_add_(1, idx, ones) / n
    return (weights @ x.reshape(n, -1).double()).reshape(n_boot, *x.shape[1:])


def interval(boot: torch.Tensor, ci: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Percentile interval (lo, hi) of bootstrap draws along their first dimension."""
    lo, hi = torch.quantile(boot.float(), torch.tensor([(1 - ci) / 2, (1 + ci) / 2]), dim=0)
    return lo, hi


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a rate k/n (95% by default).

    >>> [round(x, 3) for x in wilson(8, 10)]
    [0.49, 0.943]
    """
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def draw_spread(magnitudes, limit: float = 5.0) -> dict:
    """How typical is a random control's move? `magnitudes` holds one number per random draw
    (its largest absolute move, in points). A mean over a few draws is dominated by one head
    the model cannot do without; the median and the share of draws within `limit` say how
    the typical random head behaves. Reported beside the mean, never instead of it."""
    values = [float(v) for v in magnitudes]
    if not values:
        return {"median_abs_move_points": 0.0, f"share_of_draws_within_{limit:g}_points": 1.0}
    return {
        "median_abs_move_points": statistics.median(values),
        f"share_of_draws_within_{limit:g}_points": sum(v <= limit for v in values) / len(values),
    }
