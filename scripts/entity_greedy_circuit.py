"""How many heads does entity tracking need?  Greedy backward elimination over head sets.

Starting from every head, repeatedly drop the head whose mean-ablation costs the least box
accuracy, printing (heads kept, circuit accuracy / full accuracy) until faithfulness falls
below 0.5.  A reference point for the path-patching circuit of `circuits.entity_tracking`:
if no set of k heads keeps 90% here, no k-head circuit will.

    .venv/bin/python scripts/entity_greedy_circuit.py world-base --ablation position-mean
    # world-base, 4 boxes, 150 prompts: 13 heads keep 0.90 (position-mean), 20 heads (mean)
"""

from __future__ import annotations

import argparse

import torch

import interp
from circuits import entity_tracking as et


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="world-base")
    ap.add_argument("--ablation", default="position-mean", choices=et.ABLATIONS)
    ap.add_argument("--n-boxes", type=int, default=4)
    ap.add_argument("--n-eval", type=int, default=150)
    ap.add_argument("--stop-below", type=float, default=0.5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = interp.load(a.model)
    cfg = et.Config(n_boxes=a.n_boxes, n_prompts=8, n_eval=a.n_eval, n_reference=100)
    _, _, evaluation, reference = et._datasets(model, cfg)
    full = et.accuracy(model, evaluation)
    keep = list(model.all_heads())
    print(f"{a.model}: full accuracy {full:.3f} ({a.n_boxes} boxes, {a.n_eval} prompts, {a.ablation} ablation)")
    while len(keep) > 1:
        acc, head = max((et.circuit_accuracy(model, [x for x in keep if x != h], evaluation, reference,
                                             ablation=a.ablation), h) for h in keep)
        keep.remove(head)
        print(f"{len(keep):3d} heads  faithfulness {acc / full:.3f}  (dropped {head})", flush=True)
        if acc / full < a.stop_below:
            break
    print("last set:", " ".join(map(str, keep)))


if __name__ == "__main__":
    main()
