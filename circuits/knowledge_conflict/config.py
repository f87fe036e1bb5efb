"""What one PH3 run measures: `Config` (every knob, the seed included), the k grid, the sign
convention of the head scores, and the checks on a number of heads to prune.

    >>> Config().k_grid is None, K_GRID
    (True, (1, 3, 5, 7, 9, 15))
    >>> resolve_formats(Config(), {"statement": None, "spaced": None, "qa": None}).formats
    ('statement', 'spaced')
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from interp.cost import is_large
from interp.data.conflict import ConflictDataError
from interp.errors import InvalidArgumentError

__all__ = [
    "Config",
    "KTooLargeError",
    "K_GRID",
    "LARGE_SHORTLIST",
    "SIGN_NOTE",
    "resolve_formats",
    "check_k",
    "check_k_grid",
    "shortlist_size",
]

K_GRID = (1, 3, 5, 7, 9, 15)
LARGE_SHORTLIST = 32
"""Heads path-patched exactly on a large model (`interp.cost.is_large`) by default: the 32 with
the largest attribution-patching estimate |score|. Exact path patching costs one forward per
head per locating prompt (SmolLM2-135M: 270 heads x 141 prompts = 38,352 of the run's 43,375
forwards, 40 minutes on a 2-core CPU); 32 leaves room for the k grid's largest k (15) of
either sign."""
SIGN_NOTE = (
    "score = LD(conflict) - LD(conflict with the head's path to the logits from the reference "
    "run), LD = logit(memory answer) - logit(context answer) at the last position: positive = "
    "memory head (its direct path favours the memorised answer), negative = context head "
    "(favours the context answer)"
)


class KTooLargeError(InvalidArgumentError):
    """A number of heads to prune larger than the model (or the located group) has."""


@dataclass(frozen=True)
class Config:
    """Settings of one PH3 run (seeded; same config and model -> same numbers).

    formats: (locating format, transfer format); None takes the first two of the model's templates.
    source: the reference run of path patching, "corrupted" (another subject and context answer)
      or "clean" (the prompt without context).
    metric: "logit_diff" or "prob_diff" of the memory answer over the context answer.
    k_grid: candidate numbers of heads to prune; None is `K_GRID` capped by the model's heads.
    split: fractions of subjects to locate on / choose k on / hold out.
    located_frac: |path effect| >= this x the largest makes a head located.
    shortlist: how many heads exact path patching scores, chosen by the attribution-patching
      estimate's |score| (the others stay unscored); None = every head on the zoo's small models,
      `LARGE_SHORTLIST` on large ones (`shortlist_size`); 0 = every head.
    order: which located heads are pruned first: "path" (by path effect, as the paper) or
      "validation" (by the target-rate change of pruning each alone, on the validation split).
    """

    formats: Optional[tuple[str, str]] = None
    n_per_subject: int = 3
    source: str = "corrupted"
    metric: str = "logit_diff"
    k_grid: Optional[tuple[int, ...]] = None
    split: tuple[float, float, float] = (0.4, 0.3, 0.3)
    n_random: int = 5
    located_frac: float = 0.1
    order: str = "validation"
    shortlist: Optional[int] = None
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self):
        if self.source not in ("corrupted", "clean"):
            raise InvalidArgumentError(
                f"Config.source must be 'corrupted' or 'clean', got {self.source!r}"
            )
        if self.formats is not None and (len(self.formats) != 2 or len(set(self.formats)) != 2):
            raise InvalidArgumentError(
                f"Config.formats takes two different formats, the locating one and the transfer "
                f"one (e.g. ('statement', 'qa'); --formats statement,qa), got {self.formats!r}"
            )
        if self.order not in ("path", "validation"):
            raise InvalidArgumentError(
                f"Config.order must be 'path' or 'validation', got {self.order!r}"
            )
        if self.metric not in ("logit_diff", "prob_diff"):
            raise InvalidArgumentError(
                f"Config.metric must be 'logit_diff' or 'prob_diff', got {self.metric!r}"
            )
        if self.k_grid is not None and (
            not self.k_grid
            or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in self.k_grid)
        ):
            raise InvalidArgumentError(f"Config.k_grid must be positive ints, got {self.k_grid!r}")
        if self.shortlist is not None and (
            not isinstance(self.shortlist, int)
            or isinstance(self.shortlist, bool)
            or self.shortlist < 0
        ):
            raise InvalidArgumentError(
                f"Config.shortlist must be a non-negative int (0 = every head) or None, "
                f"got {self.shortlist!r}"
            )
        if len(self.split) != 3 or abs(sum(self.split) - 1) > 1e-6 or min(self.split) <= 0:
            raise InvalidArgumentError(
                f"Config.split must be three positive fractions summing to 1, " f"got {self.split}"
            )


def resolve_formats(cfg: Config, templates: dict) -> Config:
    """``cfg`` with its formats set: by default the first two of the templates."""
    if cfg.formats is not None:
        return cfg
    if len(templates) < 2:
        raise ConflictDataError(
            f"PH3 needs two prompt formats (locate, transfer); templates: "
            f"{', '.join(templates)}"
        )
    return replace(cfg, formats=tuple(templates)[:2])


def shortlist_size(cfg: Config, model) -> int:
    """How many heads exact path patching scores: every head (0) on small models unless the
    config says otherwise, `LARGE_SHORTLIST` on large ones (`interp.cost.is_large`, a cost rule).

        >>> from interp.testing import tiny_model
        >>> shortlist_size(Config(), tiny_model("llama")), shortlist_size(Config(shortlist=3), None)
        (0, 3)
    """
    if cfg.shortlist is not None:
        return cfg.shortlist
    return LARGE_SHORTLIST if is_large(model) else 0


def check_k_grid(cfg: Config, model) -> None:
    """Refuse, before any forward, a k of `cfg.k_grid` (``--k``) above the model's heads: it
    would otherwise surface only after path patching has run."""
    n_total = model.n_layers * model.n_heads
    too_big = [k for k in cfg.k_grid or () if k > n_total]
    if too_big:
        raise KTooLargeError(
            f"--k / Config.k_grid {too_big} is larger than the model's {n_total} heads "
            f"({model.name}); give k in 1..{n_total}"
        )


def check_k(k: int, available: int, n_total: int, role: str) -> None:
    """Refuse a k that is not a positive int, exceeds the model's heads, or the `available`
    heads of `role`."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise KTooLargeError(f"k must be a positive int, got {k!r}")
    if k > n_total:
        raise KTooLargeError(
            f"k={k} is larger than the model's {n_total} heads; use k <= {n_total}"
        )
    if k > available:
        raise KTooLargeError(
            f"k={k} asks for more {role} heads than the {available} located; "
            f"use k <= {available}"
        )
