"""Value scaling: one head's z (= its value vectors) times alpha at every position and generation
step, swept over alphas (paper defaults: memory head alpha in [-5, 5] step 0.1, in-context head
alpha in [-10, 10] step 0.5) and re-scored by generation. Prompts and alphas are batched
together: each batch row carries its own alpha (`RowScaleValues`). The best alpha is chosen on
one split (`choose_settings`) and reported on held-out prompts (`circuits.factual_recall.checks`).
"""

from __future__ import annotations

from interp.data.conflict import ConflictSet

from .behaviour import behaviour, generated_labels, rates
from .config import check_alphas
from .rowscale import head_scales

__all__ = ["scale_sweep", "best_alpha", "choose_settings", "GOALS"]

GOALS = ("in_context", "memorised")
"""The behaviours a scaling recipe is chosen to raise."""


def scale_sweep(
    model, data: ConflictSet, head, alphas, *, max_new_tokens: int = 4, batch_size: int = 512
) -> dict:
    """Behaviour rates at every alpha for one head, prompts x alphas batched together."""
    (head,) = model.heads([head])
    alphas = check_alphas(alphas)
    prompts = data.prompts()
    n = len(prompts)
    rows_prompts = prompts * len(alphas)
    rows_items = list(range(n)) * len(alphas)
    row_alpha = [a for a in alphas for _ in range(n)]
    scales = head_scales(model.n_layers, model.n_heads, len(rows_prompts), head, row_alpha)
    labels = generated_labels(
        model, rows_prompts, data, rows_items, None, max_new_tokens, batch_size, row_scales=scales
    )
    per_alpha = [rates(labels[i * n : (i + 1) * n]) for i in range(len(alphas))]
    return {
        "head": str(head),
        "alphas": list(alphas),
        "rates": per_alpha,
        "n_prompts": n,
        "n_rows": len(rows_prompts),
    }


def best_alpha(sweep: dict, target: str, within: float = 0.10) -> tuple[float, dict]:
    """The least change (alpha closest to 1) whose `target` rate is within `within` of the best
    rate of the sweep: large scalings of any head disturb the model, so among settings that do
    about as well the mildest one is the steering recipe (and the fairest random-head control)."""
    pairs = [(a, r) for a, r in zip(sweep["alphas"], sweep["rates"]) if a != 1.0] or list(
        zip(sweep["alphas"], sweep["rates"])
    )  # alpha 1 is no change at all
    top = max(r[target] for _, r in pairs)
    alpha, r = min(
        ((a, r) for a, r in pairs if r[target] >= top - within - 1e-9), key=lambda p: abs(p[0] - 1)
    )
    return alpha, r


def choose_settings(model, data: ConflictSet, sweeps: dict, gen: dict) -> dict:
    """Per goal (in-context, memorised): the head and alpha with the highest rate on `data`."""
    base = rates(behaviour(model, data, **gen)) if sweeps else {}
    best = {}
    for goal in GOALS:
        candidates = [(best_alpha(s, goal), s["head"], name) for name, s in sweeps.items()]
        if candidates:
            (alpha, r), head, name = max(candidates, key=lambda c: c[0][1][goal])
            best[goal] = {
                "head": head,
                "alpha": alpha,
                "sweep": name,
                "rate_on_sweep_split": r[goal],
                "baseline_on_sweep_split": base[goal],
                "raises_rate_on_sweep_split": r[goal] > base[goal],
            }
    return best
