"""Replay every bad input of tests/bad_inputs and print the counts per family.

    .venv/bin/python scripts/replay_bad_inputs.py [--only SUBSTRING] [--json PATH] [--show KINDS]

Each case runs for real against a tiny random Llama, the zoo's world-base and the CLI, and is
classified as typed / warned / correct / silent / confusing (see tests/bad_inputs/replay.py).
After each case the models must hold no hook, no active intervention, and give a plain forward
equal bit for bit to the first; the zoo's files must be unchanged at the end. Exit status 1
when any case is silent, confusing or leaked.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bad_inputs import ALL_CASES, OUTCOMES, Context, replay  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose id holds this text")
    parser.add_argument("--json", type=Path, default=None, help="write every outcome here")
    parser.add_argument("--show", default="silent,confusing", help="outcomes to print in full")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    cases = [c for c in ALL_CASES if args.only.lower() in c.id.lower()]
    ctx = Context()
    ctx.tiny, ctx.world  # the fingerprints come before the first case
    start = time.perf_counter()
    outcomes = []
    for i, case in enumerate(cases, 1):
        outcome = replay(case, ctx)
        outcomes.append(outcome)
        mark = outcome.kind + (" LEAK" if outcome.leaked else "")
        print(f"[{i:>3}/{len(cases)}] {mark:<10} {case.id}", file=sys.stderr, flush=True)
    zoo_ok = ctx.zoo_untouched()
    show = set(args.show.split(","))
    for o in outcomes:
        if o.kind in show or o.leaked:
            print(f"\n{o.kind.upper()}{' + LEAK' if o.leaked else ''}  {o.case.id}\n    {o.detail}")
    families: dict[str, Counter] = defaultdict(Counter)
    for o in outcomes:
        families[o.case.family][o.kind] += 1
        families[o.case.family]["leaked"] += o.leaked
    header = (
        f"\n{'family':<26}{'cases':>6}" + "".join(f"{k:>10}" for k in OUTCOMES) + f"{'leaked':>8}"
    )
    print(header)
    total: Counter = Counter()
    for family, counts in families.items():
        n = sum(counts[k] for k in OUTCOMES)
        total.update(counts)
        print(
            f"{family:<26}{n:>6}"
            + "".join(f"{counts[k]:>10}" for k in OUTCOMES)
            + f"{counts['leaked']:>8}"
        )
    n = sum(total[k] for k in OUTCOMES)
    print(
        f"{'all':<26}{n:>6}"
        + "".join(f"{total[k]:>10}" for k in OUTCOMES)
        + f"{total['leaked']:>8}"
    )
    print(f"\nzoo files unchanged: {zoo_ok}; {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"zoo_files_unchanged": zoo_ok, "outcomes": [o.to_dict() for o in outcomes]},
                indent=1,
            )
        )
    bad = total["silent"] + total["confusing"] + total["leaked"]
    return 1 if bad or not zoo_ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
