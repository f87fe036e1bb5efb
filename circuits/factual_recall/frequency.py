"""Frequency: the context-use rate per quantile bin of the queried subject's training frequency,
and where the frequencies come from (a user table, the items' own field, or the zoo's counts).
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

from interp.data.conflict import ConflictSet
from interp.data.defaults import default_counts

from .behaviour import rates

__all__ = ["frequency_bins", "frequency_counts"]


def frequency_bins(
    data: ConflictSet, labels: Sequence[str], counts: dict, n_bins: int = 4
) -> list[dict]:
    """Context-use rate per quantile bin of the queried subject's training frequency."""
    subjects = sorted({i.subject for i in data.items}, key=lambda s: (counts.get(s, 0.0), s))
    missing = [s for s in subjects if s not in counts]
    if missing:
        warnings.warn(
            f"{len(missing)} subjects have no frequency in the count table (taken as 0): "
            f"{missing[:5]}",
            stacklevel=2,
        )
    n_bins = max(1, min(n_bins, len(subjects)))
    out = []
    for b in range(n_bins):
        members = set(subjects[b * len(subjects) // n_bins : (b + 1) * len(subjects) // n_bins])
        labs = [l for item, l in zip(data.items, labels) if item.subject in members]
        freqs = [counts.get(s, 0.0) for s in members]
        r = rates(labs)
        out.append(
            {
                "bin": b,
                "n_subjects": len(members),
                "freq_min": min(freqs),
                "freq_max": max(freqs),
                "context_rate": r["in_context"],
                "context_ci": r["in_context_ci"],
                "memorised_rate": r["memorised"],
                "other_rate": r["other"],
                "n_prompts": r["n"],
            }
        )
    return out


def frequency_counts(model, items, counts: Optional[dict]) -> tuple[dict, str]:
    """(subject -> frequency, where it came from): the user's table, else the zoo model's
    training counts (zoo items; none for the built-in English facts), else the items' own
    frequency field."""
    if counts is not None:
        return counts, "user count table"
    if items is None:
        return default_counts(model)
    return {
        i.subject: i.frequency for i in items if i.frequency is not None
    }, "items' frequency field"
