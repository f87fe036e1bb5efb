"""The whole factual-recall analysis: behaviour and head attribution on one split of subjects,
alpha sweeps on a second, the chosen settings and their controls on held-out subjects, and the
frequency bins over the whole set."""

from __future__ import annotations

import time
from typing import Optional

from interp.data.conflict import ConflictDataError, build_conflict_set, is_zoo_model, templates_for
from interp.data.defaults import default_items
from interp.heads import Head

from .attribution import head_attribution, top_heads
from .behaviour import behaviour, rates
from .checks import evaluate_settings, sign_agreement
from .config import Config
from .frequency import frequency_bins, frequency_counts
from .result import RecallResult
from .scaling import choose_settings, scale_sweep

__all__ = ["build_data", "run", "demo_config"]


def build_data(model, cfg: Config, items=None, templates=None) -> dict:
    """The conflict set in the chosen format (default: "statement" on zoo models, else "qa"),
    split by subject into attribution / sweep / held-out parts."""
    templates = templates or templates_for(model)
    fmt = cfg.format or ("statement" if is_zoo_model(model) else "qa")
    if fmt not in templates:
        raise ConflictDataError(f"unknown format {fmt!r}; templates: {', '.join(templates)}")
    if items is None:
        items = default_items(model, cfg.n_per_subject, seed=cfg.seed)
    full = build_conflict_set(model, items, templates[fmt], batch_size=cfg.batch_size)
    attr_s, sweep_s, test_s = full.split_subjects(cfg.split, cfg.seed)
    return {
        "full": full,
        "attribution": full.of_subjects(attr_s),
        "sweep": full.of_subjects(sweep_s),
        "test": full.of_subjects(test_s),
        "subjects": {"attribution": attr_s, "sweep": sweep_s, "test": test_s},
    }


def run(
    model, cfg: Config = Config(), items=None, templates=None, counts: Optional[dict] = None
) -> RecallResult:
    """Behaviour, head attribution, alpha sweeps, held-out evaluation, controls, frequency bins."""
    d = build_data(model, cfg, items, templates)
    for part in ("attribution", "sweep", "test"):
        if len(d[part]) == 0:
            raise ConflictDataError(
                f"the {part!r} split is empty; give more items or known subjects"
            )
    gen = dict(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    t0 = time.perf_counter()
    labels = behaviour(model, d["attribution"], **gen)
    attribution = head_attribution(
        model, d["attribution"], labels, min_group=cfg.min_group, seed=cfg.seed
    )
    memory_heads = top_heads(attribution, "memory", cfg.n_top)
    context_heads = top_heads(attribution, "in_context", cfg.n_top)
    t1 = time.perf_counter()
    sweeps = {}
    if memory_heads:
        sweeps["memory_head"] = scale_sweep(
            model, d["sweep"], memory_heads[0], cfg.memory_alphas, **gen
        )
    if context_heads:
        sweeps["in_context_head"] = scale_sweep(
            model, d["sweep"], context_heads[0], cfg.context_alphas, **gen
        )
    t2 = time.perf_counter()
    best = choose_settings(model, d["sweep"], sweeps, gen)
    located = [Head(l, h) for l, h in attribution["all"].strongest(0.1)]
    held_out, controls = evaluate_settings(
        model, d["test"], best, memory_heads + context_heads, cfg, gen, located=located
    )
    signs = sign_agreement(
        model, d["test"], memory_heads + context_heads, attribution["all"], cfg.batch_size
    )
    counts, source = frequency_counts(model, items, counts)
    freq = (
        frequency_bins(d["full"], behaviour(model, d["full"], **gen), counts, cfg.n_bins)
        if counts
        else []
    )
    info = {
        "set": d["full"].summary(),
        "subjects": d["subjects"],
        "frequency_source": source,
        **{f"n_{p}": len(d[p]) for p in ("attribution", "sweep", "test")},
    }
    return RecallResult(
        model.name,
        cfg,
        rates(labels),
        attribution,
        memory_heads,
        context_heads,
        sweeps,
        best,
        held_out,
        controls,
        signs,
        freq,
        info,
        {"behaviour_and_attribution": t1 - t0, "sweeps": t2 - t1},
    )


def demo_config(model=None) -> Config:
    """The Config the demo and the atlas run with: the defaults (zoo items, the paper's sweeps)."""
    return Config()
