"""What one factual-recall run measures: `Config` (every knob, the seed included), the behaviour
labels and the paper's alpha sweeps.

    >>> len(MEMORY_ALPHAS), MEMORY_ALPHAS[0], MEMORY_ALPHAS[-1], len(CONTEXT_ALPHAS)
    (101, -5.0, 5.0, 41)
    >>> alpha_grid(-1, 1, 0.5)
    (-1.0, -0.5, 0.0, 0.5, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

from interp.errors import InvalidArgumentError

__all__ = [
    "Config",
    "LABELS",
    "MEMORY_ALPHAS",
    "CONTEXT_ALPHAS",
    "check_alphas",
    "alpha_grid",
    "config_record",
]

LABELS = ("memorised", "in_context", "other")
MEMORY_ALPHAS = tuple(round(-5 + 0.1 * i, 10) for i in range(101))
CONTEXT_ALPHAS = tuple(round(-10 + 0.5 * i, 10) for i in range(41))


@dataclass(frozen=True)
class Config:
    """Settings of one run (seeded; same config and model -> same numbers)."""

    format: Optional[str] = (
        None  # None: "statement" on zoo models (their training format), else "qa"
    )
    n_per_subject: int = 3
    max_new_tokens: int = 4
    memory_alphas: tuple[float, ...] = MEMORY_ALPHAS
    context_alphas: tuple[float, ...] = CONTEXT_ALPHAS
    split: tuple[float, float, float] = (
        0.4,
        0.3,
        0.3,
    )  # subjects: attribution / choose alpha / held out
    n_top: int = 3
    n_random: int = 5
    n_bins: int = 4
    min_group: int = 5  # fewest prompts of a behaviour to condition the attribution on it
    batch_size: int = 512
    seed: int = 0

    def __post_init__(self):
        check_alphas(self.memory_alphas)
        check_alphas(self.context_alphas)
        if len(self.split) != 3 or abs(sum(self.split) - 1) > 1e-6 or min(self.split) <= 0:
            raise InvalidArgumentError(
                f"Config.split must be three positive fractions summing to 1, got {self.split}"
            )
        if self.max_new_tokens < 1:
            raise InvalidArgumentError(
                f"Config.max_new_tokens must be >= 1, got {self.max_new_tokens}"
            )


def check_alphas(alphas) -> tuple[float, ...]:
    """Alphas as floats; NaN, inf or an empty list raise ValueError."""
    values = tuple(float(a) for a in alphas)
    if not values:
        raise InvalidArgumentError("give at least one alpha, e.g. (0.0, 1.0, 2.0)")
    bad = [a for a in values if not math.isfinite(a)]
    if bad:
        raise InvalidArgumentError(
            f"alphas must be finite numbers, got {bad[:3]}; drop NaN/inf from the sweep"
        )
    return values


def alpha_grid(lo: float, hi: float, step: float) -> tuple[float, ...]:
    """lo, lo + step, ..., hi (rounded to 10 decimals); `step` must be a positive number."""
    if not math.isfinite(step) or step <= 0:
        raise InvalidArgumentError(f"an alpha step must be a positive number, got {step}")
    n = int(round((hi - lo) / step))
    return tuple(round(lo + step * i, 10) for i in range(n + 1))


def config_record(cfg: Config) -> dict:
    """The config as summary.json records it: each alpha sweep as [min, max, count]."""
    record = asdict(cfg)
    for name in ("memory_alphas", "context_alphas"):
        record[name] = [min(record[name]), max(record[name]), len(record[name])]
    return record
