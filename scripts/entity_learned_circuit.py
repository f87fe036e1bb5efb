"""How many heads does entity tracking need?  A learned keep-mask over all heads.

Runs `circuits.entity_tracking.learned_circuit` for several sparsity weights: each learns a mask
in [0, 1] per head (the rest of each head's z replaced by its mean) on the selection prompts and
reports the heads with mask >= 0.5 and their faithfulness with hard ablation on held-out prompts.
Compare `scripts/entity_greedy_circuit.py` (backward elimination).

    .venv/bin/python scripts/entity_learned_circuit.py world-wide --ablation position-mean \
        --lambdas 0.1 0.3 0.5 0.6 0.65 --epochs 10 --json results/world-wide/entity_tracking/learned_position_mean.json
    # about 4 min on a CPU core; results/world-wide/README.md has the numbers
"""

from __future__ import annotations

import argparse
import json

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
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--json", default=None, help="write the result here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = interp.load(a.model)
    cfg = et.Config(n_boxes=a.n_boxes, n_prompts=a.n_select, n_eval=a.n_eval, n_reference=100)
    select, _, evaluation, reference = et._datasets(model, cfg)
    print(f"{a.model}: {a.n_boxes} boxes, {a.n_select} selection / {a.n_eval} held-out prompts, {a.ablation} "
          f"ablation, {model.n_layers * model.n_heads} heads", flush=True)
    out = et.learned_circuit(model, select, evaluation, reference, lambdas=a.lambdas, target=a.target,
                             ablation=a.ablation, epochs=a.epochs)
    for r in out["runs"]:
        print(f"lambda {r['lambda']:<6g} {r['n_heads']:3d} heads  held-out faithfulness "
              f"{r['faithfulness_held_out']:.3f}  {' '.join(r['heads'])}", flush=True)
    best = out["best"]
    print("smallest at target: " + (f"{best['n_heads']} heads (lambda {best['lambda']:g}), held-out "
                                     f"{best['faithfulness_held_out']:.3f}" if best else "none"))
    if best and best.get("random_faithfulness"):
        rand = best["random_faithfulness"]
        print(f"random sets of {best['n_heads']} heads: mean {sum(rand) / len(rand):.3f}, max {max(rand):.3f} "
              f"({len(rand)} draws)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
