"""Which heads two analyzers both name, against what chance alone would give.

Two roles found among N heads, with a and b heads, share a*b/N heads on average when one of
them is a random set of its size. `role_overlap` counts the heads each pair of roles shares,
that expected count, and the hypergeometric tail probability of sharing at least as many by
chance (`shared_by_chance_p`). A small p says the two analyzers point at the same heads more
often than their sizes explain; it says nothing about why.

    >>> from interp.atlas import RoleMap
    >>> retrieval = RoleMap("retrieval", "retrieval", {"L2H1": 0.8, "L2H3": 0.4, "L3H0": 0.2})
    >>> induction = RoleMap("induction", "induction", {"L2H1": 0.9, "L2H3": 0.7})
    >>> (row,) = role_overlap([retrieval, induction], n_heads_total=32)
    >>> row["shared"], row["expected_by_chance"], round(row["p_at_least_shared"], 4)
    (['L2H1', 'L2H3'], 0.1875, 0.006)
"""

from __future__ import annotations

from itertools import combinations
from math import comb
from typing import Sequence

from .errors import InvalidArgumentError
from .heads import Head

__all__ = ["shared_by_chance_p", "role_overlap", "overlap_lines"]


def shared_by_chance_p(n_total: int, n_a: int, n_b: int, shared: int) -> float:
    """P(a random set of `n_b` of `n_total` heads holds at least `shared` of a fixed `n_a`):
    the hypergeometric upper tail, exact (integer arithmetic)."""
    if not 0 <= n_a <= n_total or not 0 <= n_b <= n_total:
        raise InvalidArgumentError(
            f"role sizes {n_a} and {n_b} must lie between 0 and the {n_total} heads of the model"
        )
    top = min(n_a, n_b)
    ways = sum(comb(n_a, x) * comb(n_total - n_a, n_b - x) for x in range(max(shared, 0), top + 1))
    return ways / comb(n_total, n_b)


def _head_set(role_map) -> set[Head]:
    return set(role_map.parsed())


def role_overlap(roles: Sequence, n_heads_total: int) -> list[dict]:
    """One row per pair of roles (`interp.atlas.RoleMap`) that both name a head: the two
    roles, their sizes, the heads they share (layer order), the count expected by chance,
    and `shared_by_chance_p`, least likely by chance first. Pairs where either role is empty
    are left out."""
    rows = []
    for a, b in combinations([r for r in roles if r.heads], 2):
        heads_a, heads_b = _head_set(a), _head_set(b)
        shared = sorted(heads_a & heads_b)
        rows.append(
            {
                "roles": [a.role, b.role],
                "analyzers": [a.analyzer, b.analyzer],
                "sizes": [len(heads_a), len(heads_b)],
                "shared": [str(h) for h in shared],
                "expected_by_chance": len(heads_a) * len(heads_b) / n_heads_total,
                "p_at_least_shared": shared_by_chance_p(
                    n_heads_total, len(heads_a), len(heads_b), len(shared)
                ),
            }
        )
    return sorted(rows, key=lambda row: row["p_at_least_shared"])  # stable: ties keep order


def _heads(n: int) -> str:
    return f"{n} head" if n == 1 else f"{n} heads"


def overlap_lines(rows: Sequence[dict]) -> list[str]:
    """Each overlap row as one sentence a reader can quote."""
    lines = []
    for row in rows:
        (ra, rb), (na, nb) = row["roles"], row["sizes"]
        shared = row["shared"]
        names = f" ({', '.join(shared)})" if shared else ""
        lines.append(
            f"{ra} ({_heads(na)}) and {rb} ({_heads(nb)}) share {len(shared)}{names}; "
            f"chance {row['expected_by_chance']:.2f}, p(>= {len(shared)}) = "
            f"{row['p_at_least_shared']:.2g}"
        )
    return lines
