"""The causal check: do the located heads carry the copy, and do random heads not?

Ablation (``mode``): "mean" sets each head's z to its mean over every position of the
sequences (`Model.head_means`, cached on the model), so the rest of the model sees no shift of
scale, only the loss of what the head says about this input; "zero" zeroes z; "uniform"
replaces the head's attention by a uniform one. Every ratio is the mean second-copy loss with
the heads ablated over the clean one, with a bootstrap interval over sequences.

- `single_head_ratios`: each head ablated alone: which heads the copy needs one at a time
  (`causal_check` runs it through `sweep.single_head_sweep`: exact on the zoo, ranked by
  attribution and exact on a shortlist on real models);
- `top_heads_by_effect`: the top-k of the prefix-matching heads by that need, chosen on a second,
  independent sequence set (seed + 1), so choosing and measuring do not share data;
- `ablation_check`: the top-k together vs random sets of as many heads (`interp.controls`),
  drawn outside the top-k and, given the located circuit, also outside the circuit;
- `causal_check`: all of it, as `run` reports it.

    >>> ablation_check(model, seqs, ["L1H3", "L1H5"])["top_ratio"]   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional, Sequence

import torch

from interp.controls import control_pool, random_head_control
from interp.data.repeats import RepeatSet
from interp.errors import InvalidArgumentError
from interp.progress import track
from interp.stats import bootstrap_means, interval

from .config import Config, make_sequences
from .result import Result
from .scoring import sequence_losses
from .sweep import exact_single_head_ratios, prune, single_head_sweep

__all__ = [
    "causal_check",
    "top_heads_by_effect",
    "single_head_ratios",
    "ablation_check",
    "prune",
    "ratio_ci",
]

CANDIDATE_ROLES = ("induction", "prefix-matching (no copying)")


def ratio_ci(
    base: torch.Tensor, new: torch.Tensor, n_boot: int, ci: float, seed: int
) -> list[float]:
    """Bootstrap interval of mean(new) / mean(base) over sequences (rows resampled together)."""
    b = bootstrap_means(torch.stack([base, new], -1), n_boot, seed)
    lo, hi = interval(b[:, 1] / b[:, 0], ci)
    return [float(lo), float(hi)]


def single_head_ratios(
    model,
    seqs: RepeatSet,
    *,
    mode: str = "mean",
    batch_size: int = 32,
    base=None,
    heads: Optional[Sequence] = None,
) -> dict:
    """{head name: second-copy loss with that head alone ablated / clean}, for every head (or
    `heads`), each ablated exactly: which heads the copying needs one at a time, whatever role
    their attention pattern suggests. `base`: the clean (first, second) losses, when already
    measured. `circuits.induction.sweep` has the attribution-ranked sweep real models use."""
    second = (base if base is not None else sequence_losses(model, seqs, batch_size=batch_size))[1]
    names = [h.name for h in (model.all_heads() if heads is None else model.heads(list(heads)))]
    return exact_single_head_ratios(
        model, seqs, names, mode=mode, batch_size=batch_size, second=second
    )


def _draw_measure(
    model, seqs: RepeatSet, second: torch.Tensor, *, mode, batch_size, n_boot, ci, seed, name
):
    """The control's measure: each head set ablated, its second-copy loss and ratio to clean."""

    def measure(sets: list) -> list[dict]:
        out = []
        for i, pick in enumerate(track(sets, name, unit="draw")):
            _, s_r = sequence_losses(model, seqs, prune(model, pick, mode, seqs), batch_size)
            out.append(
                {
                    "second": float(s_r.mean()),
                    "ratio": float(s_r.mean() / second.mean()),
                    "ratio_ci": ratio_ci(second, s_r, n_boot, ci, seed + i + 1),
                }
            )
        return out

    return measure


def _random_draws(
    model, measure, k: int, n_random: int, seed: int, located, tag: str, limit: float
) -> dict:
    """`interp.controls.random_head_control` outside `located`; no draws when the pool is smaller
    than k."""
    if len(control_pool(model.all_heads(), located)) < k:
        return {"draws": [], "mean": None, "median": None, "max": None, "share_within_limit": None}
    return random_head_control(
        model.all_heads(),
        measure,
        k,
        n_draws=n_random,
        seed=seed,
        located=located,
        tag=tag,
        magnitude=lambda d: d["ratio"],
        limit=limit,
    )


def _flat_draws(control: dict) -> list[dict]:
    return [{"heads": d["heads"], **d["value"]} for d in control["draws"]]


def ablation_check(
    model,
    seqs: RepeatSet,
    heads: Sequence,
    *,
    n_random: int = 20,
    seed: int = 0,
    mode: str = "mean",
    batch_size: int = 32,
    n_boot: int = 500,
    ci: float = 0.95,
    base=None,
    circuit: Sequence = (),
    control_ratio: float = 1.2,
) -> dict:
    """Second-copy loss when `heads` are ablated vs when as many random other heads are.

    Returns ratios (ablated / clean mean second-copy loss) with bootstrap CIs over sequences.
    Random sets come from every head outside `heads` (``random``) and, when `circuit` names
    the located circuit (`run` passes the induction and previous-token heads and every head
    whose single-head ablation raises the loss by `located_ratio`), also from the heads
    outside it (``random_outside_circuit``): in a small model the first control often hits
    other members of the circuit, which is a finding about redundancy, not about specificity.
    Beside the mean and max over draws: the median draw and the share of draws at most
    `control_ratio`, since one draw that hits a head the model cannot do without moves the mean.
    """
    heads = list(model.heads(list(heads)))
    if not heads:
        raise InvalidArgumentError("ablation_check needs at least one head")
    circuit = set(model.heads(list(circuit))) | set(heads)
    first, second = (
        base if base is not None else sequence_losses(model, seqs, batch_size=batch_size)
    )
    f_top, s_top = sequence_losses(model, seqs, prune(model, heads, mode, seqs), batch_size)
    opts = dict(mode=mode, batch_size=batch_size, n_boot=n_boot, ci=ci, seed=seed)
    measure = _draw_measure(model, seqs, second, name="induction: random head sets", **opts)
    control = _random_draws(
        model, measure, len(heads), n_random, seed, heads, "induction/top", control_ratio
    )
    out = {
        "heads": [h.name for h in heads],
        "mode": mode,
        "clean_second": float(second.mean()),
        "clean_first": float(first.mean()),
        "ablated_second": float(s_top.mean()),
        "ablated_first": float(f_top.mean()),
        "top_ratio": float(s_top.mean() / second.mean()),
        "top_ratio_ci": ratio_ci(second, s_top, n_boot, ci, seed),
        "random": _flat_draws(control),
        "random_ratio_max": control["max"],
        "random_ratio_mean": control["mean"],
        "random_ratio_median": control["median"],
        "random_share_within_control": control["share_within_limit"],
        "control_ratio": control_ratio,
        "n_seqs": len(seqs),
    }
    if len(circuit) > len(heads):
        measure = _draw_measure(
            model, seqs, second, name="induction: random heads outside the circuit", **opts
        )
        outside = _random_draws(
            model,
            measure,
            len(heads),
            n_random,
            seed,
            sorted(circuit),
            "induction/circuit",
            control_ratio,
        )
        out.update(
            circuit=sorted(h.name for h in circuit),
            random_outside_circuit=_flat_draws(outside),
            random_outside_circuit_ratio_max=outside["max"],
            random_outside_circuit_ratio_mean=outside["mean"],
        )
    return out


def top_heads_by_effect(model, result: Result, cfg: Config) -> dict:
    """The top-k induction heads by need: among the heads whose prefix-matching clears the
    threshold at every span length (direct copiers or not), the k whose ablation alone raises
    the second-copy loss most, measured on sequences of seed ``cfg.seed + 1`` so that choosing
    the heads and measuring them do not share data. With the attribution sweep only the
    shortlist is ablated exactly; the other candidates follow it in order of their estimate.
    Fewer candidates than k are topped up from the pattern ranking."""
    candidates = [
        n
        for n in result.ranked_induction(len(result.head_roles))
        if result.head_roles[n] in CANDIDATE_ROLES
    ]
    select = make_sequences(model, replace(cfg, seed=cfg.seed + 1))
    second = sequence_losses(model, select, batch_size=cfg.batch_size)[1]
    sweep = (
        single_head_sweep(
            model,
            select,
            mode=cfg.ablation,
            batch_size=cfg.batch_size,
            second=second,
            sweep=cfg.sweep,
            shortlist=cfg.shortlist,
            heads=candidates,
        )
        if candidates
        else {"method": "exact", "ratios": {}}
    )
    ratios = sweep["ratios"]
    estimates = sweep.get("estimates", {})
    ranked = sorted(ratios, key=lambda n: -ratios[n])
    ranked += sorted((n for n in estimates if n not in ratios), key=lambda n: -estimates[n])
    heads = (
        ranked + [n for n in result.ranked_induction(cfg.top_k + len(ranked)) if n not in ranked]
    )[: cfg.top_k]
    out = {
        "heads": heads,
        "selection_seed": cfg.seed + 1,
        "n_seqs": len(select),
        "candidate_ratios": ratios,
    }
    if sweep["method"] != "exact":
        out["candidate_sweep"] = {k: v for k, v in sweep.items() if k != "ratios"}
    return out


def _top_by_pattern(model, seqs: RepeatSet, pattern: list, base, cfg: Config) -> dict:
    second = (base or sequence_losses(model, seqs, batch_size=cfg.batch_size))[1]
    s_pat = sequence_losses(model, seqs, prune(model, pattern, cfg.ablation, seqs), cfg.batch_size)[
        1
    ]
    return {
        "heads": pattern,
        "ratio": float(s_pat.mean() / second.mean()),
        "ratio_ci": ratio_ci(second, s_pat, cfg.n_boot, cfg.ci, cfg.seed),
    }


def causal_check(model, seqs: RepeatSet, result: Result, cfg: Config, stats=None) -> dict:
    """Ablate the top-k induction heads (``cfg.rank_by``), random head sets, and each head alone.

    stats: the clean scoring statistics of `seqs` (their losses are the clean baseline), or None
    to measure the baseline again, once for every check below (when the scoring ran under
    interventions)."""
    if stats is not None:
        base = (stats["loss_first"], stats["loss_second"])
    else:
        base = sequence_losses(model, seqs, batch_size=cfg.batch_size)
    pattern = result.ranked_induction(cfg.top_k)
    selection = top_heads_by_effect(model, result, cfg) if cfg.rank_by == "effect" else None
    heads = selection["heads"] if selection else pattern
    sweep = single_head_sweep(
        model,
        seqs,
        mode=cfg.ablation,
        batch_size=cfg.batch_size,
        second=base[1],
        sweep=cfg.sweep,
        shortlist=cfg.shortlist,
    )
    single = sweep["ratios"]
    by_role = [
        n for n, role in result.head_roles.items() if role in ("induction", "previous-token")
    ]
    by_effect = [n for n, r in single.items() if r >= cfg.located_ratio]
    causal = ablation_check(
        model,
        seqs,
        heads,
        n_random=cfg.n_random,
        seed=cfg.seed,
        mode=cfg.ablation,
        batch_size=cfg.batch_size,
        n_boot=cfg.n_boot,
        ci=cfg.ci,
        base=base,
        circuit=sorted(set(by_role) | set(by_effect)),
    )
    if set(pattern) != set(heads):
        causal["top_by_pattern"] = _top_by_pattern(model, seqs, pattern, base, cfg)
    causal.update(
        rank_by=cfg.rank_by,
        selection=selection,
        single_head_ratios=single,
        single_head_sweep={k: v for k, v in sweep.items() if k != "ratios"},
        located_by_role=sorted(by_role),
        located_by_effect=sorted(by_effect),
        located_ratio=cfg.located_ratio,
    )
    return causal
