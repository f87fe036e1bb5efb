"""Behaviour on counterfactual prompts: the greedy answer, cut at the template's stop strings,
labelled "memorised" (it contains the memorised answer gt), else "in_context" (the in-context
answer ct), else "other" (counted, never dropped). Rates carry Wilson 95% intervals
(`interp.stats.wilson`).
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

import torch

from interp.data.conflict import ConflictSet
from interp.progress import track
from interp.stats import wilson

from .config import LABELS
from .rowscale import RowScaleValues

__all__ = ["classify", "rates", "behaviour", "generated_labels"]


def classify(text: str, memorised: str, in_context: str, stop: Sequence[str] = (".",)) -> str:
    """'memorised' if the answer (text up to the first stop string) contains gt, else
    'in_context' if it contains ct, else 'other'. Whole-word, case-insensitive.

    >>> classify(" Paris. Q: What", "Paris", "Rome", stop=("Q:",))
    'memorised'
    >>> classify(" Rome is", "Paris", "Rome"), classify(" London", "Paris", "Rome")
    ('in_context', 'other')
    """
    cut = len(text)
    for s in stop:
        found = text.find(s)
        if found >= 0:
            cut = min(cut, found)
    answer = text[:cut]
    for label, target in (("memorised", memorised), ("in_context", in_context)):
        if re.search(
            r"(?<!\w)" + re.escape(target.strip()) + r"(?!\w)", answer, flags=re.IGNORECASE
        ):
            return label
    return "other"


def rates(labels: Sequence[str]) -> dict:
    """Rate and Wilson interval of each behaviour, and the counts."""
    n = len(labels)
    out = {"n": n}
    for label in LABELS:
        k = sum(1 for x in labels if x == label)
        out[label] = k / n if n else float("nan")
        out[f"{label}_ci"] = list(wilson(k, n))
        out[f"n_{label}"] = k
    return out


def behaviour(
    model, data: ConflictSet, *, interventions=None, max_new_tokens: int = 4, batch_size: int = 512
) -> list[str]:
    """Label of each conflict prompt under greedy generation (see `classify`)."""
    return generated_labels(
        model,
        data.prompts(),
        data,
        list(range(len(data))),
        interventions,
        max_new_tokens,
        batch_size,
    )


def generated_labels(
    model,
    prompts,
    data: ConflictSet,
    item_index,
    interventions,
    max_new_tokens: int,
    batch_size: int,
    row_scales: Optional[torch.Tensor] = None,
) -> list[str]:
    """Label of each generated continuation of `prompts`; row i is scored against the item
    ``data.items[item_index[i]]``. `row_scales` [rows, L, H] scales each row's heads
    (`RowScaleValues`), so one batched generation covers many settings."""
    labels = []
    starts = range(0, len(prompts), batch_size)
    for start in track(starts, "generation", unit="batch"):
        stop = start + batch_size
        iv = interventions
        if row_scales is not None:
            iv = RowScaleValues(row_scales[start:stop])
        gen = model.generate(
            prompts[start:stop],
            max_new_tokens=max_new_tokens,
            interventions=iv,
            use_interventions=False,
        )
        for text, i in zip(gen.texts, item_index[start:stop]):
            item = data.items[i]
            labels.append(
                classify(" " + text, item.memory_answer, item.context_answer, data.template.stop)
            )
    return labels
