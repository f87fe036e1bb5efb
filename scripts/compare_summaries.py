"""Compare two trees of analyzer summaries (written by scripts/record_summaries.sh) field by field.

    python scripts/compare_summaries.py BEFORE AFTER [--tol 1e-9] [--ignore KEY ...]

Every ``summary.json`` under BEFORE is matched with the same path under AFTER. Fields that say
when or how long (``created``, ``versions``, ``command``, ``cost``, any key holding "seconds" or
"timings") are skipped; paths are compared relative to each tree's root (a figure written to
BEFORE/x.html matches AFTER/x.html); every other number must agree within ``--tol`` (relative),
every other value exactly.
Prints each difference with its path and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

SKIP = {"created", "versions", "command", "cost"}
ROOTS: list = []
"""The BEFORE and AFTER roots (set by main), so paths inside each tree compare equal."""


def _relative(text: str, side: int) -> str:
    root = str(ROOTS[side]).rstrip("/") + "/"
    return text[len(root) :] if text.startswith(root) else text


def _skipped(key: str, ignore: set) -> bool:
    return key in SKIP or key in ignore or "seconds" in key or "timings" in key


def diff(a, b, path: str, tol: float, ignore: set, out: list) -> int:
    """Append the differences between `a` and `b` to `out`; return how many leaves were compared."""
    if isinstance(a, dict) and isinstance(b, dict):
        n = 0
        for key in sorted(set(a) | set(b)):
            if _skipped(key, ignore):
                continue
            if key not in a or key not in b:
                out.append(f"{path}.{key}: only in {'after' if key not in a else 'before'}")
                continue
            n += diff(a[key], b[key], f"{path}.{key}", tol, ignore, out)
        return n
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items before, {len(b)} after")
            return 1
        return sum(
            diff(x, y, f"{path}[{i}]", tol, ignore, out) for i, (x, y) in enumerate(zip(a, b))
        )
    numbers = (int, float)
    if (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        if not math.isclose(a, b, rel_tol=tol, abs_tol=tol):
            out.append(f"{path}: {a!r} -> {b!r}")
    elif isinstance(a, str) and isinstance(b, str) and ROOTS and _relative(a, 0) == _relative(b, 1):
        pass
    elif a != b:
        out.append(f"{path}: {json.dumps(a)[:120]} -> {json.dumps(b)[:120]}")
    return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tol", type=float, default=1e-9)
    parser.add_argument(
        "--ignore", nargs="*", default=[], help="more keys to skip wherever they occur"
    )
    args = parser.parse_args(argv)
    ROOTS[:] = [args.before, args.after]
    paths = sorted(args.before.rglob("summary.json"))
    if not paths:
        print(f"no summary.json under {args.before}", file=sys.stderr)
        return 2
    total, problems = 0, []
    for path in paths:
        rel = path.relative_to(args.before)
        other = args.after / rel
        if not other.exists():
            problems.append(f"{rel}: missing after")
            continue
        found: list = []
        total += diff(
            json.loads(path.read_text()),
            json.loads(other.read_text()),
            str(rel.parent),
            args.tol,
            set(args.ignore),
            found,
        )
        problems += found
    for line in problems:
        print(line)
    print(f"{len(paths)} summaries, {total} fields compared, {len(problems)} differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
