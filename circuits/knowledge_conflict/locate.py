"""Locating memory and context heads: exact path patching to the logits, and its first-order
estimate by attribution patching.

The metric is LD = logit(o_m) - logit(o_c) at the last position (or the probability
difference). A head's score is ``LD(conflict) - LD(conflict with the head's direct path taken
from the reference run)``: positive = memory head, negative = context head (`SIGN_NOTE`).

Only the last position reaches the logits along this path, so base and reference prompts of
different token lengths are aligned at their last token (left padding). Prompts are patched in
groups that need no padding (base and reference of one token length), and the group scores
averaged weighted by size (`grouped_scores`).
"""

from __future__ import annotations

import warnings
from typing import Callable, Optional, Sequence

import torch

from interp.data.conflict import ConflictDataError, ConflictSet
from interp.errors import InvalidArgumentError
from interp.heads import Head
from interp.patching import attribution_patch, logit_diff, path_patch
from interp.progress import track
from interp.results import HeadScores, data_hash
from interp.tokens import Tokens

from .config import SIGN_NOTE

__all__ = [
    "conflict_metric",
    "aligned_tokens",
    "reference_prompts",
    "padding_free_groups",
    "grouped_scores",
    "locate_heads",
    "attribution_scores",
    "shortlisted",
    "ranked",
    "located",
]


def conflict_metric(
    data: ConflictSet, kind: str = "logit_diff"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-prompt memory-minus-context metric on last-position logits [n, vocab]."""
    if kind == "logit_diff":
        return logit_diff(data.memory_ids, data.context_ids)
    mem, ctx = torch.tensor(data.memory_ids), torch.tensor(data.context_ids)

    def prob_diff(logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits.float(), -1)
        rows = torch.arange(probs.shape[0], device=probs.device)
        return probs[rows, mem.to(probs.device)] - probs[rows, ctx.to(probs.device)]

    return prob_diff


def aligned_tokens(model, base: Sequence[str], source: Sequence[str]) -> tuple[Tokens, Tokens]:
    """Both prompt lists left-padded to one width, so their last tokens share a position."""
    if len(base) != len(source):
        raise InvalidArgumentError(
            f"need one source prompt per base prompt, got {len(base)} and {len(source)}"
        )
    both = model.to_tokens(list(base) + list(source))
    n = len(base)
    return (
        Tokens(both.input_ids[:n], both.attention_mask[:n]),
        Tokens(both.input_ids[n:], both.attention_mask[n:]),
    )


def reference_prompts(data: ConflictSet, source: str, seed: int, model=None) -> list[str]:
    """The reference run's prompts: the corrupted set (seeded) or the no-context prompts."""
    return data.corrupted_prompts(seed, model) if source == "corrupted" else data.clean_prompts()


def padding_free_groups(model, base: list[str], ref: list[str]) -> list[list[int]]:
    """Prompt indices grouped so that each group needs no padding (base and reference of one
    token length); pairs of unequal lengths form the last group, patched with left padding."""
    lengths = [len(t) for t in model.tokenizer(base + ref, add_special_tokens=False)["input_ids"]]
    n = len(base)
    by_len: dict[int, list[int]] = {}
    padded = []
    for i in range(n):
        if lengths[i] == lengths[n + i]:
            by_len.setdefault(lengths[i], []).append(i)
        else:
            padded.append(i)
    return list(by_len.values()) + ([padded] if padded else [])


def grouped_scores(model, data: ConflictSet, source: str, seed: int, run_one) -> HeadScores:
    """Run a patching function per padding-free group; average the scores weighted by size.

    `run_one(base, reference, subset)` patches one group. Pairs that need padding are patched
    as one left-padded group when `interp.patching` takes padded `Tokens`; where it cannot yet,
    they are left out with a warning and counted."""
    base, ref = data.prompts(), reference_prompts(data, source, seed, model)
    total, parts, scores, used = None, [], None, 0
    for idx in track(padding_free_groups(model, base, ref), "patching groups", unit="group"):
        base_t, ref_t = aligned_tokens(model, [base[i] for i in idx], [ref[i] for i in idx])
        padded = base_t.has_padding or ref_t.has_padding
        if not padded:
            base_t, ref_t = base_t.input_ids, ref_t.input_ids  # plain ids: no mask needed
        try:
            scores = run_one(base_t, ref_t, data.subset(idx))
        except TypeError as err:
            if not padded or "data_hash" not in str(err):
                raise
            warnings.warn(
                f"{len(idx)} prompt pairs need padding, which this version of "
                "interp.patching cannot take; they are left out of the head scores",
                stacklevel=3,
            )
            parts.append({"n_prompts": len(idx), "padded": True, "left_out": True})
            continue
        weighted = scores.scores * len(idx)
        total = weighted if total is None else total + weighted
        used += len(idx)
        parts.append(
            {"n_prompts": len(idx), "padded": padded, "base_metric": scores.meta.get("base_metric")}
        )
    if total is None:
        raise ConflictDataError(
            "no prompt pair could be patched (all needed padding); use a "
            "reference of the same token length (source='corrupted')"
        )
    return HeadScores(
        total / used,
        model=model.name,
        method=scores.method,
        data_hash=data_hash([base, ref]),
        meta={"groups": parts, "n_prompts": used, "n_left_out": len(data) - used},
    )


def locate_heads(
    model,
    data: ConflictSet,
    *,
    source: str = "corrupted",
    metric: str = "logit_diff",
    batch_size: int = 256,
    seed: int = 0,
    senders: Optional[Sequence[Head]] = None,
) -> HeadScores:
    """Memory (+) / context (-) score of every head (or of `senders` only, the rest unscored)
    by exact path patching to the logits."""
    effects = grouped_scores(
        model,
        data,
        source,
        seed,
        lambda b, r, d: path_patch(
            model, b, r, conflict_metric(d, metric), senders=senders, batch_size=batch_size
        ),
    )
    which = "every head" if senders is None else f"{len(senders)} shortlisted heads"
    return _as_memory_scores(
        effects, f"path patching -> logits ({source} reference, {metric}; {which})", seed
    )


def attribution_scores(
    model,
    data: ConflictSet,
    *,
    source: str = "corrupted",
    metric: str = "logit_diff",
    seed: int = 0,
) -> HeadScores:
    """First-order (attribution patching, path to logits) estimate of `locate_heads`."""
    effects = grouped_scores(
        model,
        data,
        source,
        seed,
        lambda b, r, d: attribution_patch(model, b, r, conflict_metric(d, metric), path=True),
    )
    return _as_memory_scores(
        effects, f"attribution patching -> logits ({source} reference, {metric})", seed
    )


def shortlisted(estimate: HeadScores, n: int) -> Optional[list[Head]]:
    """The `n` heads with the largest |attribution estimate| (either sign: a first-order
    estimate can get a saturated head's sign wrong), in layer-then-head order; None when n is 0
    or covers every scored head (then every head is patched exactly)."""
    if n <= 0 or n >= estimate.n_scored:
        return None
    mag = torch.where(estimate.mask, estimate.scores.abs(), torch.full_like(estimate.scores, -1))
    flat = torch.sort(mag.reshape(-1), descending=True, stable=True).indices[:n]
    return sorted(Head(*divmod(int(i), estimate.n_heads)) for i in flat)


def _as_memory_scores(effects: HeadScores, method: str, seed: int) -> HeadScores:
    """Patching effects (LD(patched) - LD(conflict)) turned into memory scores (the opposite
    sign)."""
    return HeadScores(
        -effects.scores,
        model=effects.model,
        method=method,
        data_hash=effects.data_hash,
        seed=seed,
        meta={**effects.meta, "sign": SIGN_NOTE},
    )


def ranked(scores: HeadScores, role: str) -> list[Head]:
    """Heads of one sign, strongest first: role "memory" (> 0) or "context" (< 0)."""
    flat = [
        (Head(l, h), float(scores.scores[l, h]))
        for l in range(scores.n_layers)
        for h in range(scores.n_heads)
        if bool(scores.mask[l, h])
    ]
    if role == "memory":
        return [h for h, s in sorted(flat, key=lambda x: -x[1]) if s > 0]
    if role == "context":
        return [h for h, s in sorted(flat, key=lambda x: x[1]) if s < 0]
    raise InvalidArgumentError(f"role must be 'memory' or 'context', got {role!r}")


def located(scores: HeadScores, frac: float = 0.1) -> list[Head]:
    """Heads whose |path effect| is at least `frac` of the largest, of either sign: the heads
    path patching says carry the conflict (the pool that a specificity control must avoid)."""
    return [Head(l, h) for l, h in scores.strongest(frac)]
