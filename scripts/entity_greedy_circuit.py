"""How many heads does entity tracking need?  Greedy backward elimination over head sets.

Prints the trajectory of `circuits.entity_tracking.greedy_circuit` (heads kept, faithfulness on
the selection prompts, head dropped) down to `--stop-below`, and the smallest set that kept
`--target`, measured again on held-out prompts.  The same search runs inside the analyzer with
`interp entity MODEL --greedy`.

    .venv/bin/python scripts/entity_greedy_circuit.py world-base --ablation position-mean
    .venv/bin/python scripts/entity_greedy_circuit.py world-wide --ablation mean --n-select 100 \
        --drop-fraction 0.1 --stop-below 0.9      # 96 heads: about 800 evaluations instead of 4,600
    # see the issue notes for the numbers
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
    ap.add_argument("--n-select", type=int, default=150)
    ap.add_argument("--n-eval", type=int, default=300)
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--stop-below", type=float, default=0.5)
    ap.add_argument(
        "--drop-fraction",
        type=float,
        default=0.0,
        help="drop this share of the kept heads per round (0: one head per round)",
    )
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = interp.load(a.model)
    cfg = et.Config(n_boxes=a.n_boxes, n_prompts=a.n_select, n_eval=a.n_eval, n_reference=100)
    select, _, evaluation, reference = et._datasets(model, cfg)
    print(
        f"{a.model}: {a.n_boxes} boxes, {a.n_select} selection / {a.n_eval} held-out prompts, "
        f"{a.ablation} ablation"
    )
    g = et.greedy_circuit(
        model,
        select,
        evaluation,
        reference,
        target=a.target,
        stop_below=a.stop_below,
        ablation=a.ablation,
        drop_fraction=a.drop_fraction,
    )
    for step in g["trajectory"]:
        print(
            f"{step['n_heads']:3d} heads  faithfulness {step['faithfulness_select']:.3f}  "
            f"(dropped {step['dropped']})",
            flush=True,
        )
    print(
        f"smallest set keeping {a.target} on the selection prompts: {g['n_heads']} heads "
        f"({' '.join(g['smallest_at_target'])}); "
        f"held-out faithfulness {g['faithfulness_held_out']:.3f}"
    )


if __name__ == "__main__":
    main()
