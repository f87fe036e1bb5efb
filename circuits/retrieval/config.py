"""What the retrieval analyzer tests: `Config` (the NIAH grid, the scoring mode and route, and
the pruning check of the default run) and the prompts it builds for a model.

    >>> Config(lengths=(24, 40)).depths
    (0.0, 0.25, 0.5, 0.75, 1.0)
    >>> Config(mode="greedy")
    Traceback (most recent call last):
    ...
    interp.errors.InvalidArgumentError: Config.mode must be one of (...), got 'greedy'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from interp.cost import is_large
from interp.data.defaults import (
    default_haystack,
    default_needles,
    default_niah_template,
    restate_tokens,
)
from interp.data.niah import Needle, NiahPrompt, build_grid, prompt_overhead
from interp.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["Config", "MODES", "ROUTES", "PRUNE_MODES", "PRUNE_METRICS", "NoRetrievalWarning"]

MODES = ("teacher_forced", "decode")
ROUTES = ("rows", "pattern")
PRUNE_MODES = ("uniform", "zero")
PRUNE_METRICS = ("teacher_forced", "decode")


class NoRetrievalWarning(RuntimeWarning):
    """No test was solved, so retrieval scores are undefined (reported, not NaN-filled)."""


@dataclass(frozen=True)
class Config:
    """What to test. `lengths=None` picks four lengths up to the model's window (<= 512).

    haystack, needles and template default to the model's (`interp.data.defaults`): for zoo
    models the world's filler, `n_needles` world needles and a prefix to complete; for any
    other model the shipped English essays, the paper's needle (and its siblings) and the
    paper's "Based on the content of the book, Question: ..." template (inside the model's chat
    template when it has one). `extra_tokens`, the decode room beyond the answer, defaults to the
    longest needle's length for English models (they often restate the needle first) and to 0
    for the zoo's (`interp.data.defaults.restate_tokens`). `for_model` fills them.

    The pruning check of the full analysis (`circuits.retrieval.analyze`; `run` scores one mode
    and ignores these): `k` heads masked (None: every head above the threshold), `prune_mode`
    "uniform" (the paper's) or "zero", `prune_metric` how each head set's NIAH accuracy is read
    ("teacher_forced": one forward per prompt and head set, the answer fixed by the reference;
    "decode": the paper's greedy decoding, a decode loop per head set), `n_draws` random k-sets,
    `prune=False` skips the check, `curve=False` runs it at k only instead of at every k from 1
    to max(k, heads above), capped at 16; `curve=None` (the default) runs the curve on small
    models and the check at k alone
    on large ones (`interp.cost.is_large`: on SmolLM2-135M one check over the default grid is
    about a minute on a 2-core CPU, and the curve would be 16 x 6 checks).
    """

    lengths: Optional[tuple] = None
    depths: tuple = (0.0, 0.25, 0.5, 0.75, 1.0)
    needles: Optional[tuple] = None
    n_needles: int = 4
    haystack: Optional[str] = None
    template: Optional[str] = None
    mode: str = "teacher_forced"
    threshold: float = 0.1
    rouge_threshold: float = 0.5
    extra_tokens: Optional[int] = None
    batch_size: int = 16
    seed: int = 0
    backend: Optional[str] = None
    route: str = "rows"
    k: Optional[int] = None
    prune_mode: str = "uniform"
    prune_metric: str = "teacher_forced"
    n_draws: int = 5
    prune: bool = True
    curve: Optional[bool] = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        if self.mode not in MODES:
            raise InvalidArgumentError(f"Config.mode must be one of {MODES}, got {self.mode!r}")
        if self.route not in ROUTES:
            raise InvalidArgumentError(f"Config.route must be one of {ROUTES}, got {self.route!r}")
        if self.prune_mode not in PRUNE_MODES:
            raise InvalidArgumentError(
                f"Config.prune_mode must be 'uniform' (the paper's) or 'zero', "
                f"got {self.prune_mode!r}"
            )
        if self.prune_metric not in PRUNE_METRICS:
            raise InvalidArgumentError(
                f"Config.prune_metric must be one of {PRUNE_METRICS}, got {self.prune_metric!r}"
            )
        if self.lengths is not None:
            lengths = tuple(int(n) for n in self.lengths)
            if not lengths or min(lengths) < 8:
                raise InvalidArgumentError(
                    f"Config.lengths must be context lengths >= 8 tokens, got {self.lengths}"
                )
            set_("lengths", lengths)
        depths = tuple(float(d) for d in self.depths)
        if not depths or not all(0.0 <= d <= 1.0 for d in depths):
            raise InvalidArgumentError(
                f"Config.depths must be fractions in [0, 1], got {self.depths}"
            )
        set_("depths", depths)
        if self.needles is not None:
            needles = tuple(self.needles)
            if not needles or not all(isinstance(n, Needle) for n in needles):
                raise ArgumentTypeError(
                    "Config.needles must be a non-empty sequence of niah.Needle"
                )
            set_("needles", needles)
        for name, low in (("n_needles", 1), ("batch_size", 1), ("extra_tokens", 0), ("n_draws", 1)):
            value = getattr(self, name)
            if name == "extra_tokens" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidArgumentError(f"Config.{name} must be an int >= {low}, got {value!r}")
        if self.k is not None and (
            isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1
        ):
            raise InvalidArgumentError(
                f"Config.k (--k) must be None (the heads above threshold) or an int >= 1, "
                f"got {self.k!r}"
            )
        if not 0.0 <= self.threshold or not 0.0 <= self.rouge_threshold < 1.0:
            raise InvalidArgumentError(
                "Config.threshold must be >= 0 and rouge_threshold in [0, 1)"
            )

    def grid_lengths(self, model) -> tuple:
        if self.lengths is not None:
            return self.lengths
        top = min(model.n_ctx, 512) - max(16, self.max_new_tokens(model))
        return tuple(sorted({max(16, top * i // 4) for i in (1, 2, 3)} | {top}))

    def for_model(self, model) -> "Config":
        """This config with the data defaults of `model` filled in (what a run records), once
        `k` is known to leave heads outside the top k for the random control."""
        total = model.n_layers * model.n_heads
        if self.prune and self.k is not None and self.k >= total:
            raise InvalidArgumentError(
                f"Config.k={self.k} (--k) leaves no head outside the top k for the random "
                f"control: {model.name} has {total} heads; give 1..{total - 1}"
            )
        lengths = self.grid_lengths(model)
        needles = self.needles or tuple(default_needles(model, self.n_needles, seed=self.seed))
        haystack = (
            self.haystack
            if self.haystack is not None
            else default_haystack(model, max(lengths) * 2 + 64, seed=self.seed)
        )
        template = self.template if self.template is not None else default_niah_template(model)
        curve = (not is_large(model)) if self.curve is None else self.curve
        extra = restate_tokens(model, needles) if self.extra_tokens is None else self.extra_tokens
        return replace(
            self,
            needles=needles,
            haystack=haystack,
            template=template,
            curve=curve,
            extra_tokens=extra,
        )

    def prompts(self, model) -> list[NiahPrompt]:
        """The test prompts of this config for `model` (its tokenizer, its window)."""
        cfg = self.for_model(model)
        lengths = cfg.grid_lengths(model)
        bos = model.tokenizer.bos_token_id if model.prepends_bos else None
        if self.lengths is None:  # the default grid keeps lengths with room for 8 haystack tokens
            need = (
                max(prompt_overhead(model.tokenizer, n, cfg.template, bos) for n in cfg.needles) + 8
            )
            lengths = tuple(n for n in lengths if n >= need) or lengths
        return build_grid(
            model.tokenizer,
            cfg.haystack,
            cfg.needles,
            lengths,
            cfg.depths,
            template=cfg.template,
            bos_id=bos,
            n_ctx=model.n_ctx,
            max_new_tokens=cfg.max_new_tokens(model),
        )

    def max_new_tokens(self, model) -> int:
        """The decode budget of a test: the longest needle answer's tokens + `extra_tokens`."""
        needles = self.needles or tuple(default_needles(model, self.n_needles, seed=self.seed))
        longest = max(
            len(model.tokenizer(" " + n.answer, add_special_tokens=False)["input_ids"])
            for n in needles
        )
        extra = restate_tokens(model, needles) if self.extra_tokens is None else self.extra_tokens
        return longest + extra
