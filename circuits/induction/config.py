"""What the induction analyzer measures: `Config` (every knob, seeds included) and the seeded
repeated-span sequences it is measured on.

    >>> Config(n=4).span_lengths
    (8, 13, 21)
    >>> from interp.testing import tiny_model
    >>> Config().for_model(tiny_model("llama")).n, Config(n=5).for_model(tiny_model("llama")).n
    (16, 5)
    >>> Config.from_dict(Config(n=3).to_dict()) == Config(n=3)
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Optional

from interp.cost import is_large
from interp.data.repeats import RepeatSet, repeat_sequences_for
from interp.errors import InvalidArgumentError

from .sweep import SWEEPS

__all__ = ["Config", "InductionConfig", "ABLATIONS", "RANKINGS", "make_sequences", "config_record"]

ABLATIONS = ("mean", "zero", "uniform")
RANKINGS = ("effect", "pattern")
_POSITIVE_INTS = ("batch_size", "n_boot", "top_k", "shortlist")
ZOO_N, LARGE_N = 16, 4
"""Sequences per (span length, offset) when `Config.n` is None: 16 on the zoo's models (96
sequences), 4 on large ones (`interp.cost.is_large`: 24 sequences, so that each of the causal
check's ~80 forwards over them stays a few seconds on a CPU)."""


@dataclass(frozen=True)
class Config:
    """What to measure. `n` rows per (span length, offset) (None: `ZOO_N` on small models,
    `LARGE_N` on large ones, resolved by `for_model`); seeds make every number repeatable.

    ablation: "mean" (each head's mean z over every position of the sequences), "zero" or
      "uniform". rank_by: which heads the causal check ablates (see `top_heads_by_effect`):
      "effect" or "pattern". located_ratio: the single-head ablation ratio that puts a head in
      the located circuit. behaviour_ratio: the second/first copy loss ratio at or below which
      the model shows induction behaviour. token_ids: the ids random spans are drawn from
      (default: the model's vocabulary without special tokens). sweep: how the single-head
      ablation sweep runs (`circuits.induction.sweep`): "exact" (every head ablated), "attribution"
      (every head estimated from one backward, the `shortlist` highest ablated exactly) or "auto"
      (exact on small models, attribution on large ones).
    """

    n: Optional[int] = None
    span_lengths: tuple = (8, 13, 21)
    offsets: tuple = (0, 17)
    seed: int = 0
    batch_size: int = 32
    threshold: float = 0.4
    n_boot: int = 500
    ci: float = 0.95
    top_k: int = 2
    n_random: int = 20
    ablation: str = "mean"
    rank_by: str = "effect"
    causal: bool = True
    located_ratio: float = 1.2
    behaviour_ratio: float = 0.8
    token_ids: Optional[tuple] = None
    sweep: str = "auto"
    shortlist: int = 12

    def __post_init__(self):
        object.__setattr__(self, "span_lengths", tuple(int(x) for x in self.span_lengths))
        object.__setattr__(self, "offsets", tuple(int(x) for x in self.offsets))
        if self.token_ids is not None:
            object.__setattr__(self, "token_ids", tuple(int(x) for x in self.token_ids))
        self._check()

    def _check(self) -> None:
        for name in _POSITIVE_INTS + (() if self.n is None else ("n",)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(
                    f"InductionConfig.{name} must be a positive int, got {value!r}"
                )
        if len(set(self.span_lengths)) < 2:
            raise InvalidArgumentError(
                f"give at least two different span lengths (to tell induction from "
                f"positional heads), got {self.span_lengths}"
            )
        if not 0 < self.behaviour_ratio <= 1:
            raise InvalidArgumentError(
                f"behaviour_ratio must be in (0, 1], got {self.behaviour_ratio}"
            )
        if not 0 < self.threshold <= 1 or not 0 < self.ci < 1:
            raise InvalidArgumentError(
                f"threshold must be in (0, 1] and ci in (0, 1), got {self.threshold}, " f"{self.ci}"
            )
        if self.ablation not in ABLATIONS:
            raise InvalidArgumentError(
                f"ablation must be one of {ABLATIONS}, got {self.ablation!r}"
            )
        if self.sweep not in SWEEPS:
            raise InvalidArgumentError(f"sweep must be one of {SWEEPS}, got {self.sweep!r}")
        if self.rank_by not in RANKINGS:
            raise InvalidArgumentError(f"rank_by must be one of {RANKINGS}, got {self.rank_by!r}")

    def for_model(self, model) -> "Config":
        """This config with `n` resolved for `model` (`ZOO_N`, or `LARGE_N` on a large model),
        once `top_k` is known to fit the model's heads (a larger one is refused, not clamped:
        the causal check would ablate fewer heads than asked and say nothing)."""
        total = model.n_layers * model.n_heads
        if self.top_k > total:
            raise InvalidArgumentError(
                f"top_k={self.top_k} (--top-k) asks for more heads than {model.name} has: "
                f"{model.n_layers} layers x {model.n_heads} heads = {total}; give 1..{total}"
            )
        if self.n is not None:
            return self
        return replace(self, n=LARGE_N if is_large(model) else ZOO_N)

    @property
    def n_seqs(self) -> int:
        """Rows of the sequence set: `n` per (span length, offset)."""
        if self.n is None:
            raise InvalidArgumentError(
                "Config.n is None (sized per model): resolve it with cfg.for_model(model)"
            )
        return self.n * len(self.span_lengths) * len(self.offsets)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        """The config of `data`; unknown keys are refused (with the known ones listed)."""
        known = {f.name for f in fields(cls)}
        extra = set(data) - known
        if extra:
            raise InvalidArgumentError(
                f"unknown InductionConfig key(s) {sorted(extra)}; known: {sorted(known)}"
            )
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)


InductionConfig = Config
"""The name this config had before the analyzer became a package (kept for callers)."""


def make_sequences(model, cfg: Config) -> RepeatSet:
    """The seeded repeated-span set of `cfg` for `model` (its vocab, BOS, specials, context)."""
    cfg = cfg.for_model(model)
    return repeat_sequences_for(
        model,
        token_ids=cfg.token_ids,
        n=cfg.n,
        span_lengths=cfg.span_lengths,
        offsets=cfg.offsets,
        seed=cfg.seed,
    )


def config_record(cfg: Config) -> dict:
    """The config as summary.json records it (a long token-id list is summarised by its size)."""
    d = cfg.to_dict()
    if d["token_ids"] is not None:
        d["token_ids"] = f"{len(d['token_ids'])} ids (the zoo world's content tokens)"
    return d
