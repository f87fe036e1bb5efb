"""`analyze`: the whole default run, what ``interp retrieval`` and the demo run: both scoring
modes on the same prompts, their rank agreement, the no-needle control, and the pruning check
at k and (with ``Config.curve``) at every k from 1 to max(k, heads above threshold), capped at 16.

    >>> res = analyze(interp.load("world-base"), Config())             # doctest: +SKIP
    >>> res.primary.heads, res.prune.drop_top, res.floor()             # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Optional

from interp.stats import spearman

from .config import Config, NoRetrievalWarning
from .data import without_needle
from .modes import RetrievalResult, run
from .pruning import niah_accuracy, prune_curve, prune_experiment
from .result import Result

__all__ = ["analyze", "compare_modes", "demo_config", "MAX_CURVE_K"]

MAX_CURVE_K = 16
"""The pruning curve stops at this k (random k-sets of a small model soon hit needed heads)."""


def compare_modes(primary: RetrievalResult, other: RetrievalResult) -> dict:
    """Spearman rank agreement of two modes' scores: on the heads above threshold, and on all
    heads."""
    out = {"modes": [primary.config.mode, other.config.mode]}
    if not (primary.retrieves and other.retrieves):
        out["note"] = "a mode kept no test: no rank agreement to compute"
        return out
    a, b = primary.scores.scores.flatten().tolist(), other.scores.scores.flatten().tolist()
    above = sorted(set(primary.scores.heads()) | set(other.scores.heads()))
    n_heads = primary.scores.n_heads
    idx = [l * n_heads + h for l, h in above]
    out["heads_above_either"] = [f"L{l}H{h}" for l, h in above]
    out["spearman_above_threshold"] = (
        spearman([a[i] for i in idx], [b[i] for i in idx]) if len(idx) >= 2 else None
    )
    out["spearman_all_heads"] = spearman(a, b)
    out["same_heads_above"] = set(primary.scores.heads()) == set(other.scores.heads())
    return out


def analyze(
    model,
    cfg: Optional[Config] = None,
    *,
    k: Optional[int] = None,
    prune_mode: Optional[str] = None,
    n_draws: Optional[int] = None,
    prune: Optional[bool] = None,
    curve: Optional[bool] = None,
) -> Result:
    """Both modes, their agreement, the no-needle control and the pruning check of `cfg`: the
    registry's entry point. The keyword arguments, when given, override the config's pruning
    fields (``k``, ``prune_mode``, ``n_draws``, ``prune``, ``curve``)."""
    cfg = cfg or Config()
    given = dict(k=k, prune_mode=prune_mode, n_draws=n_draws, prune=prune, curve=curve)
    cfg = replace(cfg, **{name: value for name, value in given.items() if value is not None})
    cfg = cfg.for_model(model)  # the data defaults, recorded by the result
    primary = run(model, cfg)
    other_mode = "decode" if cfg.mode == "teacher_forced" else "teacher_forced"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoRetrievalWarning)
        other = run(model, replace(cfg, mode=other_mode), prompts=primary.prompts)
    controls = [without_needle(model, p) for p in primary.prompts]
    control, _ = niah_accuracy(
        model,
        controls,
        metric="decode",
        batch_size=cfg.batch_size,
        backend=cfg.backend,
        extra_tokens=cfg.extra_tokens,
        rouge_threshold=cfg.rouge_threshold,
    )
    at_k, curve_run = (
        _pruning(model, cfg, primary) if cfg.prune and primary.retrieves else (None, None)
    )
    return Result(
        primary,
        other,
        compare_modes(primary, other),
        control,
        model.n_layers * model.n_heads,
        at_k,
        curve_run,
        tuple((p.n_tokens, len(p.answer_ids)) for p in controls),
    )


def _pruning(model, cfg: Config, primary: RetrievalResult):
    """(the check at k, the curve over k or None): k defaults to the heads above threshold."""
    k = cfg.k if cfg.k is not None else max(1, len(primary.heads))
    top_k = min(max(k, len(primary.heads)), MAX_CURVE_K, model.n_layers * model.n_heads - 1)
    curve = None
    if cfg.curve and top_k > 1:
        curve = tuple(
            prune_curve(
                model,
                range(1, top_k + 1),
                cfg.prune_mode,
                result=primary,
                n_draws=cfg.n_draws,
                seed=cfg.seed,
            )
        )
    done = [c for c in curve or () if c.k == k]  # the curve already ran k
    at_k = (
        done[0]
        if done
        else prune_experiment(
            model, k, cfg.prune_mode, result=primary, n_draws=cfg.n_draws, seed=cfg.seed
        )
    )
    return at_k, curve


def demo_config(model) -> Config:
    """The demo's config: the default grid, both modes, the pruning check and curve."""
    return Config()
