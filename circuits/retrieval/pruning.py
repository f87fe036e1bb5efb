"""The causal check: mask the top-k retrieval heads (uniform attention, as the paper, or zero
output) and compare NIAH accuracy with k random heads drawn from outside the top set
(`interp.controls`), at one k (`prune_experiment`) or along k (`prune_curve`).

    >>> pr = prune_experiment(model, k=2, mode="uniform", result=res)   # doctest: +SKIP
    >>> pr.drop_top, pr.random_drops                                    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import plotly.graph_objects as go

from interp import plots
from interp.controls import control_pool, draw_head_sets
from interp.data.niah import NiahPrompt
from interp.errors import InvalidArgumentError
from interp.interventions import PruneHeads
from interp.progress import track
from interp.tokens import Tokens

from .config import PRUNE_METRICS, PRUNE_MODES, Config
from .modes import RetrievalResult, run
from .running import answer_groups, answer_text, left_pad, teacher_forced_answers
from .scoring import rouge1_recall

__all__ = [
    "niah_accuracy",
    "PruneResult",
    "prune_experiment",
    "prune_curve",
    "prune_curve_figure",
    "curve_numbers",
]

DRAW_TAG = "retrieval/prune"
"""The tag of the random k-sets' seed (`interp.controls.draw_head_sets`)."""


def niah_accuracy(
    model,
    prompts: Sequence[NiahPrompt],
    interventions=None,
    *,
    metric: str = "teacher_forced",
    batch_size: int = 16,
    backend: Optional[str] = None,
    extra_tokens: int = 0,
    rouge_threshold: float = 0.5,
) -> tuple[float, list[bool]]:
    """Share of prompts answered (ROUGE-1 recall of the answer > threshold) under `interventions`.

    metric="teacher_forced" (the pruning check's default) reads the answer from ONE forward over
    prompt + reference answer per batch, the argmax at each answer position; "decode" greedy-
    decodes it (the paper's generated text, a decode loop per head set). Teacher forcing gives
    each answer token the reference prefix, so it can only be kinder to a model that falters
    mid-answer; `analyze` reports both on the unpruned model, where decode comes free.
    """
    if metric not in PRUNE_METRICS:
        raise InvalidArgumentError(f"metric must be one of {PRUNE_METRICS}, got {metric!r}")
    prompts = list(prompts)
    solved = [False] * len(prompts)
    if metric == "teacher_forced":
        edits = model.edits(interventions, True)
        for idx in answer_groups(prompts, batch_size):
            batch = [prompts[i] for i in idx]
            for i, p, text in zip(idx, batch, teacher_forced_answers(model, batch, edits, backend)):
                solved[i] = rouge1_recall(p.answer, text) > rouge_threshold
        return sum(solved) / max(len(solved), 1), solved
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        ids, mask = left_pad([p.input_ids for p in batch], model.pad_token_id)
        n_new = max(len(p.answer_ids) for p in batch) + extra_tokens
        gen = model.generate(
            Tokens(ids, mask), max_new_tokens=n_new, interventions=interventions, backend=backend
        )
        for i, (p, row) in enumerate(zip(batch, gen.new_tokens)):
            solved[start + i] = (
                rouge1_recall(p.answer, answer_text(model, row.tolist())) > rouge_threshold
            )
    return sum(solved) / max(len(solved), 1), solved


@dataclass(frozen=True)
class PruneResult:
    """NIAH accuracy with the top-k retrieval heads masked vs k random heads (several draws)."""

    k: int
    mode: str
    top_heads: tuple
    baseline: float
    top: float
    random_draws: tuple  # ((heads, accuracy), ...)
    n_tests: int
    seed: int
    excluded: int
    metric: str = "teacher_forced"

    @property
    def drop_top(self) -> float:
        """Accuracy lost (points, 0-100) when the top-k heads are masked."""
        return 100 * (self.baseline - self.top)

    @property
    def random_drops(self) -> list[float]:
        return [100 * (self.baseline - acc) for _, acc in self.random_draws]

    @property
    def mean_random_drop(self) -> float:
        drops = self.random_drops
        return sum(drops) / len(drops)

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "mode": self.mode,
            "metric": self.metric,
            "top_heads": [str(h) for h in self.top_heads],
            "baseline_accuracy": self.baseline,
            "top_accuracy": self.top,
            "drop_top_points": self.drop_top,
            "mean_random_drop_points": self.mean_random_drop,
            "random_draws": [
                {
                    "heads": [str(h) for h in heads],
                    "accuracy": acc,
                    "drop_points": 100 * (self.baseline - acc),
                }
                for heads, acc in self.random_draws
            ],
            "n_tests": self.n_tests,
            "seed": self.seed,
            "random_heads_drawn_outside_top": self.excluded,
        }

    def figure(self):
        """Bar chart: NIAH accuracy unpruned, top-k masked, and each random draw."""
        labels = ["none", f"top-{self.k}"] + [
            f"random #{i + 1}" for i in range(len(self.random_draws))
        ]
        values = [self.baseline, self.top] + [acc for _, acc in self.random_draws]
        hover = ["no heads masked", ", ".join(map(str, self.top_heads))] + [
            ", ".join(map(str, heads)) for heads, _ in self.random_draws
        ]
        colors = ["#4c78a8", "#e45756"] + ["#9d9d9d"] * len(self.random_draws)
        fig = go.Figure(
            go.Bar(
                x=labels,
                y=values,
                marker_color=colors,
                hovertext=hover,
                hovertemplate="%{x}<br>accuracy %{y:.2f}<br>%{hovertext}<extra></extra>",
            )
        )
        fig.update_layout(
            title=f"NIAH accuracy with {self.k} heads masked ({self.mode})",
            yaxis=dict(title="accuracy", range=[0, 1.05]),
            xaxis_title="heads masked",
        )
        return fig


def prune_experiment(
    model,
    k: int,
    mode: str = "uniform",
    *,
    result: Optional[RetrievalResult] = None,
    cfg: Optional[Config] = None,
    n_draws: int = 5,
    seed: int = 0,
    exclude: Optional[int] = None,
    baseline: Optional[float] = None,
) -> PruneResult:
    """Mask the top-k retrieval heads vs `n_draws` draws of k random heads; NIAH accuracy of each.

    Random heads come from outside the top `exclude` heads (default: the top-k and every head
    above the threshold), as the paper draws from outside its top 100; the k-sets are distinct,
    seeded by (`seed`, k) through `interp.controls.draw_head_sets`.
    """
    if mode not in PRUNE_MODES:
        raise InvalidArgumentError(
            f"prune mode must be 'uniform' (the paper's) or 'zero', got {mode!r}"
        )
    result = result if result is not None else run(model, cfg)
    cfg = result.config
    total = model.n_layers * model.n_heads
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < total:
        raise InvalidArgumentError(f"k must be an int in 1..{total - 1}, got {k!r}")
    if n_draws < 1:
        raise InvalidArgumentError(f"n_draws must be >= 1, got {n_draws}")
    top = tuple(result.top(k))
    n_out = max(k, len(result.heads)) if exclude is None else max(int(exclude), k)
    outside = control_pool(model.all_heads(), result.top(min(n_out, result.scores.n_scored)))
    if len(outside) < k:
        raise InvalidArgumentError(
            f"only {len(outside)} heads lie outside the top {n_out}; lower k or exclude"
        )
    opts = dict(
        metric=cfg.prune_metric,
        batch_size=cfg.batch_size,
        backend=cfg.backend,
        extra_tokens=cfg.extra_tokens,
        rouge_threshold=cfg.rouge_threshold,
    )
    if baseline is None:  # unpruned accuracy (a curve over k passes it once)
        baseline, _ = niah_accuracy(model, result.prompts, **opts)
    top_acc, _ = niah_accuracy(model, result.prompts, PruneHeads(list(top), mode=mode), **opts)
    draws = []
    for heads in track(
        draw_head_sets(outside, k, n_draws, seed, DRAW_TAG),
        f"retrieval: random {k}-sets",
        unit="draw",
    ):
        acc, _ = niah_accuracy(model, result.prompts, PruneHeads(list(heads), mode=mode), **opts)
        draws.append((heads, acc))
    return PruneResult(
        k,
        mode,
        top,
        baseline,
        top_acc,
        tuple(draws),
        len(result.prompts),
        seed,
        n_out,
        cfg.prune_metric,
    )


def prune_curve(
    model,
    ks: Sequence[int],
    mode: str = "uniform",
    *,
    result: RetrievalResult,
    n_draws: int = 5,
    seed: int = 0,
) -> list[PruneResult]:
    """`prune_experiment` at every k in `ks`: how the top-k drop and the random-k drops grow with k.

    One k can flatter or hide a finding (in a small model, random k-sets soon include heads the
    retrieval path needs); the curve shows the whole picture.

    >>> curve = prune_curve(model, range(1, 5), result=res)             # doctest: +SKIP
    >>> [(c.k, c.drop_top, c.mean_random_drop) for c in curve]          # doctest: +SKIP
    """
    ks = sorted({int(k) for k in ks})
    if not ks:
        raise InvalidArgumentError("prune_curve needs at least one k")
    curve: list[PruneResult] = []
    for k in track(ks, "retrieval: pruning curve", unit="k"):
        baseline = curve[0].baseline if curve else None
        curve.append(
            prune_experiment(
                model, k, mode, result=result, n_draws=n_draws, seed=seed, baseline=baseline
            )
        )
    return curve


def prune_curve_figure(curve: Sequence[PruneResult]):
    """NIAH accuracy against k: top-k masked, and the mean and worst of the random k-sets."""
    ks = [c.k for c in curve]
    series = {
        "top-k masked": [c.top for c in curve],
        "random k (mean)": [sum(a for _, a in c.random_draws) / len(c.random_draws) for c in curve],
        "random k (worst draw)": [min(a for _, a in c.random_draws) for c in curve],
    }
    return plots.line_curves(
        ks,
        series,
        title=f"NIAH accuracy vs heads masked ({curve[0].mode})",
        x_title="k",
        y_title="accuracy",
    )


def curve_numbers(curve: Sequence[PruneResult]) -> list[dict]:
    """The curve as summary.json's ``prune_curve`` rows."""
    return [
        {
            "k": c.k,
            "drop_top_points": c.drop_top,
            "mean_random_drop_points": c.mean_random_drop,
            "random_drop_points": c.random_drops,
            "top_heads": [str(h) for h in c.top_heads],
        }
        for c in curve
    ]
