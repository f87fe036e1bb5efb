"""How many heads does entity tracking need?  Learned hard-concrete gates over all heads.

Runs `circuits.entity_tracking.learned_circuit` for several sparsity weights: each learns a gate
per head (a closed head's z is replaced by its mean) on the selection prompts, keeps the heads
whose gate is >= 0.5, prunes that set by backward elimination while a separate validation set
keeps the target, and measures the result with hard ablation on held-out prompts.
Compare `scripts/entity_greedy_circuit.py` (backward elimination from every head).

    .venv/bin/python scripts/entity_learned_circuit.py world-wide --ablation position-mean \
        --json results/world-wide/entity_tracking/learned_position_mean.json
    # about 25 min on a CPU core; results/world-wide/README.md has the numbers
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

import interp
from circuits import entity_tracking as et


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="world-wide")
    ap.add_argument("--ablation", default="mean", choices=et.ABLATIONS)
    ap.add_argument("--n-boxes", type=int, default=4)
    ap.add_argument("--n-select", type=int, default=200)
    ap.add_argument("--n-eval", type=int, default=300)
    ap.add_argument("--n-validation", type=int, default=300)
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 0.15, 0.2, 0.25, 0.3])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--loss", default="ce", choices=et.MASK_LOSSES)
    ap.add_argument(
        "--no-refine",
        action="store_true",
        help="report the learned sets without backward elimination",
    )
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0, help="seed of the gates' noise and batch order")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--json", default=None, help="write the result here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = interp.load(a.model, device=a.device)
    cfg = et.Config(n_boxes=a.n_boxes, n_prompts=a.n_select, n_eval=a.n_eval, n_reference=100)
    select, _, evaluation, reference = et._datasets(model, cfg)
    validation = et.validation_dataset(model, et.Config(n_boxes=a.n_boxes, n_eval=a.n_validation))
    print(
        f"{a.model}: {a.n_boxes} boxes, {a.n_select} selection / "
        f"{a.n_validation} validation / {a.n_eval} held-out "
        f"prompts, {a.ablation} ablation, loss {a.loss}, {model.n_layers * model.n_heads} heads",
        flush=True,
    )
    out = et.learned_circuit(
        model,
        select,
        evaluation,
        reference,
        validation=validation,
        lambdas=a.lambdas,
        target=a.target,
        ablation=a.ablation,
        epochs=a.epochs,
        loss=a.loss,
        refine=not a.no_refine,
        seed=a.seed,
    )
    for r in out["runs"]:
        print(
            f"lambda {r['lambda']:<6g} learned {r['n_heads_learned']:3d} heads (validation "
            f"{r['faithfulness_validation_learned']:.3f}) -> kept {r['n_heads']:3d}: validation "
            f"{r['faithfulness_validation']:.3f}, held out {r['faithfulness_held_out']:.3f}  "
            f"{' '.join(r['heads'])}",
            flush=True,
        )
    best = out["best"]
    print(
        "smallest at target on validation: "
        + (
            f"{best['n_heads']} heads (lambda {best['lambda']:g}), "
            f"validation {best['faithfulness_validation']:.3f}, "
            f"held out {best['faithfulness_held_out']:.3f}"
            if best
            else "none"
        )
    )
    if best and best.get("random_faithfulness"):
        rand = best["random_faithfulness"]
        print(
            f"random sets of {best['n_heads']} heads: mean {sum(rand) / len(rand):.3f}, "
            f"max {max(rand):.3f} "
            f"({len(rand)} draws)"
        )
    if a.json:
        out.update(command="python " + " ".join(sys.argv), device=a.device, model=a.model)
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
