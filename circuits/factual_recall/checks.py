"""The causal checks behind the attributed heads and the chosen scalings.

- `sign_agreement`: does each head's DLA sign match the sign of its causal effect?
- `random_head_control`: a random other head at the same alpha (`interp.controls`, drawn
  outside the top heads, or outside every located head), the change in rates in points;
- `evaluate_settings`: held-out rates under each chosen setting, with both controls.
"""

from __future__ import annotations

from typing import Sequence

import torch

from interp.controls import control_pool
from interp.controls import random_head_control as draw_control
from interp.data.conflict import ConflictSet
from interp.heads import Head
from interp.interventions import ScaleValues
from interp.progress import track
from interp.results import HeadScores
from interp.stats import draw_spread

from .behaviour import behaviour, generated_labels, rates
from .config import LABELS, Config
from .rowscale import RowScaleValues

__all__ = ["sign_agreement", "random_head_control", "evaluate_settings", "mean_logit_diff"]


def mean_logit_diff(
    model, data: ConflictSet, row_scales: torch.Tensor, n_blocks: int, batch_size: int
):
    """Mean logit(ct) - logit(gt) of each block of rows (block b = all prompts under setting b)."""
    prompts = data.prompts() * n_blocks
    ct = torch.tensor(data.context_ids * n_blocks)
    gt = torch.tensor(data.memory_ids * n_blocks)
    values = []
    for start in track(range(0, len(prompts), batch_size), "scaled forwards", unit="batch"):
        sl = slice(start, start + batch_size)
        logits = model.forward(
            prompts[sl], interventions=RowScaleValues(row_scales[sl]), use_interventions=False
        )[:, -1]
        rows = torch.arange(logits.shape[0])
        values.append((logits[rows, ct[sl]] - logits[rows, gt[sl]]).float())
    return torch.cat(values).reshape(n_blocks, len(data)).mean(1)


def sign_agreement(
    model, data: ConflictSet, heads: Sequence[Head], attribution: HeadScores, batch_size: int = 512
) -> dict:
    """Does each head's DLA sign match the sign of its causal effect, LD(alpha=1) - LD(alpha=0),
    with LD = logit(in-context) - logit(memorised)? (Ablating the head = scaling it to 0.)"""
    heads = list(heads)
    if not heads:
        return {"heads": {}, "agree": 0, "n": 0}
    n = len(data)
    scales = torch.ones(n * (len(heads) + 1), model.n_layers, model.n_heads)
    for b, head in enumerate(heads):
        scales[(b + 1) * n : (b + 2) * n, head.layer, head.head] = 0.0
    means = mean_logit_diff(model, data, scales, len(heads) + 1, batch_size)
    table, agree = {}, 0
    for b, head in enumerate(heads):
        effect = float(means[0] - means[b + 1])
        dla = float(attribution.scores[head.layer, head.head])
        ok = (effect > 0) == (dla > 0)
        agree += ok
        table[str(head)] = {
            "dla": dla,
            "causal_effect_of_scaling_0_to_1": effect,
            "signs_agree": ok,
        }
    return {"heads": table, "agree": agree, "n": len(heads)}


def random_head_control(
    model,
    data: ConflictSet,
    head: Head,
    alpha: float,
    n_draws: int,
    seed: int,
    max_new_tokens: int,
    batch_size: int,
    exclude=(),
) -> dict:
    """Rates with a random other head (outside `exclude`, never `head`) at the same alpha,
    `n_draws` distinct heads drawn by `interp.controls`; the change in points per draw and
    summarised. The unscaled prompts and every draw run as one batched generation."""
    n, base = len(data), {}

    def measure(sets) -> list[dict]:
        scales = torch.ones(n * (len(sets) + 1), model.n_layers, model.n_heads)
        for b, (h,) in enumerate(sets):
            scales[(b + 1) * n : (b + 2) * n, h.layer, h.head] = alpha
        labels = generated_labels(
            model,
            data.prompts() * (len(sets) + 1),
            data,
            list(range(n)) * (len(sets) + 1),
            None,
            max_new_tokens,
            batch_size,
            row_scales=scales,
        )
        base.update(rates(labels[:n]))
        moved = [rates(labels[(b + 1) * n : (b + 2) * n]) for b in range(len(sets))]
        return [{x: 100 * (r[x] - base[x]) for x in LABELS} for r in moved]

    all_heads = model.all_heads()
    if control_pool(all_heads, exclude, measured=[head]):
        control = draw_control(
            all_heads,
            measure,
            1,
            n_draws=n_draws,
            seed=seed,
            located=exclude,
            measured=[head],
            tag=f"factual_recall/{head}/{alpha}",
            magnitude=lambda d: max(abs(v) for v in d.values()),
        )
        draws = control["draws"]
    else:
        measure([])
        draws = []
    rows = [{"head": d["heads"][0], "delta_points": d["value"]} for d in draws]
    per_draw = [max(abs(d["delta_points"][x]) for x in LABELS) for d in rows]
    mean = {x: sum(d["delta_points"][x] for d in rows) / max(len(rows), 1) for x in LABELS}
    return {
        "alpha": alpha,
        "baseline": base,
        "draws": rows,
        "mean_delta_points": mean,
        "max_abs_delta_points": max(per_draw, default=0.0),
        **draw_spread(per_draw),
    }


def evaluate_settings(
    model,
    data: ConflictSet,
    best: dict,
    exclude,
    cfg: Config,
    gen: dict,
    located: Sequence[Head] = (),
):
    """Held-out rates under each chosen setting, and the random-head control at its alpha: heads
    outside `exclude` (the top heads), and, when `located` is given, also heads outside every
    head attribution locates (``outside_located``: a specificity check in redundant models)."""
    held_out, controls = {"baseline": rates(behaviour(model, data, **gen))}, {}
    for goal, b in best.items():
        head = Head.parse(b["head"])
        held_out[goal] = rates(
            behaviour(model, data, interventions=ScaleValues(head, b["alpha"]), **gen)
        )
        controls[goal] = random_head_control(
            model,
            data,
            head,
            b["alpha"],
            cfg.n_random,
            cfg.seed,
            cfg.max_new_tokens,
            cfg.batch_size,
            exclude=exclude,
        )
        outside = set(located) | set(exclude)
        if located and len(model.all_heads()) - len(outside | {head}) >= 1:
            controls[goal]["outside_located"] = random_head_control(
                model,
                data,
                head,
                b["alpha"],
                cfg.n_random,
                cfg.seed,
                cfg.max_new_tokens,
                cfg.batch_size,
                exclude=sorted(outside),
            )
    return held_out, controls
