"""PH3: prune located heads and measure how the model's answers move between memory and context.

- `usage_rates`: share of conflict prompts whose greedy next token is o_m / o_c / other;
- `choose_k`: the fewest heads within 10 points of the best k on the validation split;
- `validation_order`: located heads ordered by what pruning each alone does (the default order);
- `prune_eval`: rates before / after pruning, in points;
- `random_control`: as many random heads pruned, drawn by `interp.controls` outside given heads;
- `ph3_direction`: all of it for one direction (toward memory or toward context).
"""

from __future__ import annotations

from typing import Sequence

import torch

from interp.controls import control_pool, random_head_control
from interp.data.conflict import ConflictSet
from interp.heads import Head
from interp.interventions import PruneHeads
from interp.progress import track
from interp.results import HeadScores
from interp.stats import draw_spread

from .config import K_GRID, Config, KTooLargeError, check_k
from .locate import located, ranked

__all__ = [
    "usage_rates",
    "choose_k",
    "prune_eval",
    "random_control",
    "validation_order",
    "ph3_direction",
    "RATES",
]

RATES = ("memory", "context")
"""The two rates a control's move is measured on (in points)."""


def usage_rates(model, data: ConflictSet, interventions=None, batch_size: int = 256) -> dict:
    """Share of conflict prompts whose greedy next token is o_m / o_c / something else."""
    prompts, picks = data.prompts(), []
    for start in range(0, len(prompts), batch_size):
        logits = model.forward(
            prompts[start : start + batch_size],
            interventions=interventions,
            use_interventions=False,
        )
        picks.append(logits[:, -1].argmax(-1).cpu())
    pick = torch.cat(picks)
    mem = pick == torch.tensor(data.memory_ids)
    ctx = pick == torch.tensor(data.context_ids)
    n = len(prompts)
    return {
        "memory": float(mem.float().mean()),
        "context": float(ctx.float().mean()),
        "other": float((~(mem | ctx)).float().mean()),
        "n": n,
    }


def choose_k(
    model,
    val: ConflictSet,
    heads: list[Head],
    target: str,
    k_grid=K_GRID,
    batch_size: int = 256,
    within: float = 0.10,
) -> tuple[int, dict]:
    """The smallest k in `k_grid` (capped by len(heads)) whose target rate on the validation
    split is within `within` of the best k's: the fewest heads that do (nearly) the whole job,
    since every extra head pruned is a chance to hit something else."""
    n_total = model.n_layers * model.n_heads
    grid = sorted({k for k in k_grid if k <= min(len(heads), n_total)})
    for k in k_grid:
        if k > n_total:
            raise KTooLargeError(
                f"k={k} in the k grid is larger than the model's {n_total} heads; "
                f"use k <= {n_total}"
            )
    if not grid:
        raise KTooLargeError(f"no k in {tuple(k_grid)} fits the {len(heads)} located heads")
    curve = {
        k: usage_rates(model, val, PruneHeads(heads[:k]), batch_size)[target]
        for k in track(grid, f"k grid ({target} rate)", unit="k")
    }
    top = max(curve.values())
    return min(k for k in grid if curve[k] >= top - within), curve


def prune_eval(model, data: ConflictSet, heads: list[Head], batch_size: int = 256) -> dict:
    """Usage rates before and after pruning `heads`, and the change in points."""
    before = usage_rates(model, data, None, batch_size)
    after = usage_rates(model, data, PruneHeads(heads), batch_size)
    delta = {r: 100 * (after[r] - before[r]) for r in ("memory", "context", "other")}
    return {"before": before, "after": after, "delta_points": delta}


def random_control(
    model,
    data: ConflictSet,
    k: int,
    exclude: Sequence[Head],
    n_draws: int,
    seed: int,
    batch_size: int = 256,
) -> dict:
    """Prune k random heads outside `exclude`, `n_draws` distinct sets (`interp.controls`):
    the change in the memory and context rates, in points, per draw and summarised."""
    all_heads = model.all_heads()
    check_k(k, len(control_pool(all_heads, exclude)), len(all_heads), "non-located")
    before = usage_rates(model, data, None, batch_size)

    def measure(sets):
        moves = []
        for heads in track(sets, f"random heads (k={k})", unit="draw"):
            after = usage_rates(model, data, PruneHeads(list(heads)), batch_size)
            moves.append({r: 100 * (after[r] - before[r]) for r in RATES})
        return moves

    control = random_head_control(
        all_heads,
        measure,
        k,
        n_draws=n_draws,
        seed=seed,
        located=exclude,
        tag="knowledge_conflict",
        magnitude=lambda d: max(abs(v) for v in d.values()),
    )
    draws = [{"heads": d["heads"], "delta_points": d["value"]} for d in control["draws"]]
    n = max(len(draws), 1)
    mean = {r: sum(d["delta_points"][r] for d in draws) / n for r in RATES}
    per_draw = [max(abs(d["delta_points"][r]) for r in RATES) for d in draws]
    return {
        "k": k,
        "n_draws": len(draws),
        "mean_delta_points": mean,
        "max_abs_delta_points": max(per_draw, default=0.0),
        **draw_spread(per_draw),
        "draws": draws,
    }


def validation_order(
    model,
    val: ConflictSet,
    scores: HeadScores,
    role: str,
    target: str,
    frac: float,
    batch_size: int = 256,
) -> list[Head]:
    """The located `role` heads (|path effect| >= `frac` of the largest), ordered by how much
    pruning each one alone raises the `target` rate on the validation split (path rank breaks
    ties). Path patching measures a head's direct path to the logits; pruning also removes its
    effect through later heads, which is what PH3 acts on (a layer-0 head can matter far more
    than its direct path shows)."""
    keep = set(located(scores, frac))
    candidates = [h for h in ranked(scores, role) if h in keep]
    gain = {
        h: usage_rates(model, val, PruneHeads([h]), batch_size)[target]
        for h in track(candidates, f"single {role} heads pruned", unit="head")
    }
    return sorted(candidates, key=lambda h: -gain[h])  # stable: path rank among equals


def ph3_direction(
    model, scores: HeadScores, data: dict, role: str, target: str, cfg: Config
) -> dict:
    """Prune the first k `role` heads (order: `cfg.order`; k chosen on the validation split for
    the `target` rate): rates before/after on held-out subjects and on the other format,
    random-heads controls (outside the pruned heads, and outside every located head)."""
    heads = ranked(scores, role)
    if cfg.order == "validation" and heads:
        heads = validation_order(
            model, data["val"], scores, role, target, cfg.located_frac, cfg.batch_size
        )
    if not heads:
        return {"error": f"no {role} heads located (no head of that sign)"}
    grid = cfg.k_grid or tuple(k for k in K_GRID if k <= model.n_layers * model.n_heads)
    k, curve = choose_k(model, data["val"], heads, target, grid, cfg.batch_size)
    pruned = heads[:k]
    out = {
        "pruned": [str(h) for h in pruned],
        "k": k,
        "k_validation_curve": curve,
        "order": cfg.order,
        "candidates": [str(h) for h in heads],
    }
    circuit = sorted(set(located(scores, cfg.located_frac)) | set(pruned))
    out["located_heads"] = [str(h) for h in circuit]
    for part, key in (("held_out", "test"), ("other_format", "test_other_format")):
        if len(data[key]) == 0:  # a real model may know none of the held-out facts in format 2
            out[part] = {
                "skipped": f"no held-out subject is known in the {cfg.formats[1]!r} format"
            }
            continue
        out[part] = prune_eval(model, data[key], pruned, cfg.batch_size)
        out[f"random_heads_{part}"] = random_control(
            model, data[key], k, pruned, cfg.n_random, cfg.seed, cfg.batch_size
        )
        # specificity: random heads that path patching says carry nothing (outside every located
        # head)
        if len(model.all_heads()) - len(circuit) >= k:
            out[f"random_outside_located_{part}"] = random_control(
                model, data[key], k, circuit, cfg.n_random, cfg.seed, cfg.batch_size
            )
    return out
