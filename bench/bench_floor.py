"""Every analyzer's default run on one model: its cost against its floor, side by side.

For each analyzer in `circuits.registry` (induction_damage aside: it takes a trained family, not a
model) and for `circuits.kv_compression`, this runs ``run(model, Config())`` (what the CLI's
``interp <command> MODEL`` runs with no flags) under `interp.analysis.run_with_cost`, one after
another in one process, and prints:

  seconds        wall time of the analysis (the model loaded once, before)
  forwards       forward equivalents it ran (`interp.cost`: a decode step counts its share)
  floor          the fewest it needs, derived per analyzer (`floor()`), and how
  ratio          forwards / floor: target <= 1.5
  minutes        target <= 10 on a large model (`interp.cost.is_large`), info on the zoo's

    python bench/bench_floor.py --model world-wide [--analyzers retrieval,induction]
        [--threads T] [--json PATH]

Informational: always exits 0. The CLI's summaries carry the same ``cost`` object.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing as T  # noqa: E402
import torch  # noqa: E402

import circuits  # noqa: E402
from circuits import kv_compression  # noqa: E402
from interp.analysis import run_with_cost  # noqa: E402
from interp.cost import is_large  # noqa: E402
from interp.progress import quiet  # noqa: E402

RATIO_TARGET, MINUTES_TARGET = 1.5, 10.0
NOT_A_MODEL = ("induction_damage",)  # runs on a trained family of models


def analyzers() -> dict:
    """name -> (run, Config class) of every analyzer that takes one model."""
    out = {
        e.name: (e.run, e.config) for e in circuits.registry.entries() if e.name not in NOT_A_MODEL
    }
    out["kv_compression"] = (kv_compression.run, kv_compression.Config)
    return out


def measure(model, name: str, run, config) -> dict:
    start = time.perf_counter()
    with warnings.catch_warnings(), quiet(not sys.stderr.isatty()):  # bars only on a terminal
        warnings.simplefilter("ignore")
        _, cost = run_with_cost(run, model, config())
    row = cost.to_dict() | {"analyzer": name, "wall_seconds": time.perf_counter() - start}
    ratio = cost.ratio
    row["ratio_result"] = "?" if ratio is None else ("PASS" if ratio <= RATIO_TARGET else "FAIL")
    minutes = cost.seconds / 60
    row["minutes_result"] = (
        ("PASS" if minutes <= MINUTES_TARGET else "FAIL") if is_large(model) else "info"
    )
    return row


def print_row(row: dict) -> None:
    ratio = row["ratio_to_floor"]
    print(
        f"{row['analyzer']:<20}{row['seconds']:>9.1f}{row['forward_passes']:>12.1f}"
        f"{row['floor_forward_passes'] or 0:>12.1f}{ratio or 0:>8.3f}x {row['ratio_result']:<5}"
        f"{row['seconds'] / 60:>8.1f} {row['minutes_result']}",
        flush=True,
    )


def main(argv=None) -> int:
    p = T.parser(__doc__.splitlines()[0])
    p.add_argument("--model", default="world-wide", help="model spec (default world-wide)")
    p.add_argument("--analyzers", default=None, help="comma-separated subset (default: all)")
    args = p.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model = T.model_from_args(args)
    chosen = analyzers()
    if args.analyzers:
        chosen = {n: chosen[n] for n in args.analyzers.split(",")}
    print(
        f"bench_floor: {model.name} ({model.n_layers}L x {model.n_heads}H, large: "
        f"{is_large(model)}), {torch.get_num_threads()} threads"
    )
    print(
        f"{'analyzer':<20}{'seconds':>9}{'forwards':>12}{'floor':>12}{'ratio':>9} "
        f"{'':<5}{'minutes':>8}"
    )
    rows = []
    for name, (run, config) in chosen.items():
        rows.append(measure(model, name, run, config))
        print_row(rows[-1])
    for row in rows:
        print(f"  {row['analyzer']}: floor = {row['floor_note']}")
    T.write_json(
        args.json,
        {
            "bench": "floor",
            "model": model.name,
            "large": is_large(model),
            "environment": T.environment(),
            "targets": {"ratio": RATIO_TARGET, "minutes_on_large_models": MINUTES_TARGET},
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    T.run_main(main, "bench_floor")
