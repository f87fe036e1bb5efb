"""How few heads suffice, whatever path patching finds: backward elimination from every head
(or from a start set), selected on one prompt split, stopped on another, measured on a third.
"""

from __future__ import annotations

from typing import Optional, Sequence

from interp.data.boxes import BoxDataset
from interp.progress import stage

from .ablation import circuit_accuracy
from .metrics import accuracy

__all__ = ["greedy_circuit"]


def greedy_circuit(
    model,
    select: BoxDataset,
    evaluation: BoxDataset,
    reference: BoxDataset,
    *,
    target: float = 0.9,
    stop_below: Optional[float] = None,
    ablation: str = "mean",
    drop_fraction: float = 0.0,
    start: Optional[Sequence] = None,
    validation: Optional[BoxDataset] = None,
    **kw,
) -> dict:
    """How many heads does the behaviour need? Backward elimination from every head on the
    `select` prompts: repeatedly drop the head whose ablation costs the least accuracy (others
    ablated as in `circuit_accuracy`), until faithfulness falls below `stop_below` (default
    `target`). The smallest set that kept `target` on `select` is then measured on the held-out
    `evaluation` prompts (selection flatters the prompts it was chosen on). A reference for
    path-patching circuits: when no k-head set keeps the target here, a k-head circuit is unlikely
    (greedy, so an upper bound on the true minimum). About n_heads^2 / 2 accuracy evaluations.

    `drop_fraction` > 0 drops that share of the kept heads per round (at least one), the ones
    whose single removal costs least, and measures the new set: about 1 / drop_fraction times
    fewer evaluations, for models with many heads. Heads that are cheap one at a time can be
    needed together (redundant copies), so a batch that falls below `stop_below` is halved
    until it holds or is a single head.

    `start` begins the elimination from those heads instead of every head (e.g. a learned
    circuit, `learned_circuit`). With `validation` prompts, each set on the way is also measured
    there, and the answer is the smallest set that keeps `target` on them, so that neither the
    prompts that chose the heads nor the held-out ones decide where to stop."""
    stop = target if stop_below is None else stop_below
    full_select = accuracy(model, select, **kw)
    full_val = None if validation is None else accuracy(model, validation, **kw)
    keep, trajectory = list(model.all_heads() if start is None else model.heads(list(start))), []
    best, best_val = list(keep), None

    def acc_without(drop) -> float:
        return circuit_accuracy(
            model, [x for x in keep if x not in drop], select, reference, ablation=ablation, **kw
        )

    with stage("entity: greedy elimination", total=max(len(keep) - 1, 0), unit="head") as bar:
        while len(keep) > 1:
            costs = sorted(((acc_without({h}), h) for h in keep), key=lambda t: -t[0])
            n_drop = min(
                max(1, int(len(keep) * drop_fraction)) if drop_fraction > 0 else 1, len(keep) - 1
            )
            while True:
                dropped = [h for _, h in costs[:n_drop]]
                acc = costs[0][0] if n_drop == 1 else acc_without(set(dropped))
                if n_drop == 1 or acc / max(full_select, 1e-12) >= stop:
                    break
                n_drop //= 2
            keep = [h for h in keep if h not in dropped]
            bar.update(len(dropped))
            faith = acc / max(full_select, 1e-12)
            step = {
                "n_heads": len(keep),
                "faithfulness_select": faith,
                "dropped": " ".join(str(h) for h in dropped),
            }
            if full_val is not None and faith >= stop:
                step["faithfulness_validation"] = circuit_accuracy(
                    model, keep, validation, reference, ablation=ablation, **kw
                ) / max(full_val, 1e-12)
            trajectory.append(step)
            if step.get("faithfulness_validation", faith) >= target and faith >= stop:
                best, best_val = list(keep), step.get("faithfulness_validation")
            if faith < stop:
                break
    full_eval = accuracy(model, evaluation, **kw)
    held_out = circuit_accuracy(model, best, evaluation, reference, ablation=ablation, **kw) / max(
        full_eval, 1e-12
    )
    return {
        "target": target,
        "ablation": ablation,
        "drop_fraction": drop_fraction,
        "n_heads_total": model.n_layers * model.n_heads,
        "n_select": len(select),
        "n_eval": len(evaluation),
        "n_validation": None if validation is None else len(validation),
        "n_start": None if start is None else len(list(start)),
        "smallest_at_target": [str(h) for h in best],
        "n_heads": len(best),
        "faithfulness_validation": best_val,  # None: no validation, or the start set
        "faithfulness_held_out": held_out,
        "trajectory": trajectory,
    }
