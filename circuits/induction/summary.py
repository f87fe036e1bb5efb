"""From per-sequence statistics to means with bootstrap intervals, per-length scores and roles.

Every score is a mean over sequences with a percentile bootstrap interval (sequences
resampled, `interp.stats`). A head is an *induction head* only if it prefix-matches
(>= threshold) and copies (interval above 0) at *every* span length. A head that attends at
one fixed distance d matches the prefix target only when the span length is d + 1; it is
*positional*, with its offset.

    >>> import torch
    >>> prefix = torch.tensor([[[0.9, 0.9, 0.9]], [[0.8, 0.8, 0.1]]])  # [lengths, layers, heads]
    >>> copy_lo = torch.tensor([[[0.5, -0.1, 0.5]], [[0.4, 0.3, 0.4]]])
    >>> z = torch.zeros(1, 3)
    >>> head_roles(prefix, copy_lo, z, z, torch.zeros(1, 3, dtype=torch.long), z, 0.4)["L0H1"]
    'prefix-matching (no copying)'
"""

from __future__ import annotations

import torch

from interp.data.repeats import RepeatSet
from interp.results import HeadScores
from interp.stats import bootstrap_means, interval

from .config import Config
from .copying import ov_eigen_scores
from .result import Result

__all__ = ["summarize", "head_roles", "loss_stats", "min_over_lengths", "ROLES"]

ROLES = Result.ROLES

_LABELS = {
    "prefix": ("prefix_matching", "mean attention to the token after the earlier occurrence", True),
    "dup": ("duplicate_token", "mean attention to the earlier occurrence", True),
    "prev": ("previous_token", "mean attention to the previous position", True),
    "copy": ("copying", "direct effect on the logits of attended tokens (centred)", False),
}


def _head_scores(model, method, mean, lo, hi, threshold, data_hash, seed, meta=None) -> HeadScores:
    meta = dict(meta or {})
    meta.update({"ci_low": lo.tolist(), "ci_high": hi.tolist()})
    return HeadScores(
        mean.float(),
        model=model,
        method=method,
        data_hash=data_hash,
        seed=seed,
        threshold=threshold,
        meta=meta,
    )


def _role(p, copy_lo, prev, dup, offset, offset_mass, thr) -> str:
    if bool((p >= thr).all()):
        return "induction" if bool((copy_lo > 0).all()) else "prefix-matching (no copying)"
    if bool((p >= thr).any()):
        return "positional"
    if prev >= thr:
        return "previous-token"
    if dup >= thr:
        return "duplicate-token"
    if offset_mass >= thr and offset > 1:
        return "positional"
    return "other"


def head_roles(prefix_len, copy_lo_len, prev, dup, offset, offset_mass, thr) -> dict:
    """{"L1H2": role} from per-length prefix / copying-CI-low scores [lengths, L, H] and the
    [L, H] previous-token, duplicate-token and fixed-offset statistics."""
    n_layers, n_heads = prev.shape
    return {
        f"L{l}H{h}": _role(
            prefix_len[:, l, h],
            copy_lo_len[:, l, h],
            prev[l, h],
            dup[l, h],
            offset[l, h],
            offset_mass[l, h],
            thr,
        )
        for l in range(n_layers)
        for h in range(n_heads)
    }


def _loss_block(f, s, seed, cfg: Config) -> dict:
    bf, bs = bootstrap_means(f, cfg.n_boot, seed), bootstrap_means(s, cfg.n_boot, seed)
    gap = interval(bf - bs, cfg.ci)
    ratio = interval(bs / bf, cfg.ci)
    return {
        "first": float(f.mean()),
        "second": float(s.mean()),
        "ratio": float(s.mean() / f.mean()),
        "first_ci": [float(x) for x in interval(bf, cfg.ci)],
        "second_ci": [float(x) for x in interval(bs, cfg.ci)],
        "gap_ci": [float(gap[0]), float(gap[1])],
        "ratio_ci": [float(ratio[0]), float(ratio[1])],
        "n_seqs": int(len(f)),
    }


def loss_stats(first, second, seqs: RepeatSet, cfg: Config) -> dict:
    """First / second-copy losses, their ratio and gap with intervals, overall and per span
    length."""
    out = _loss_block(first, second, cfg.seed, cfg)
    out["by_length"] = {
        L: _loss_block(first[seqs.span_len == L], second[seqs.span_len == L], cfg.seed + L, cfg)
        for L in seqs.lengths
    }
    return out


def min_over_lengths(prefix: torch.Tensor, seqs: RepeatSet) -> torch.Tensor:
    """[L, H] the smallest per-span-length mean of `prefix` [n, L, H]."""
    return torch.stack([prefix[seqs.span_len == L].mean(0) for L in seqs.lengths]).min(0).values


def _per_length(stats: dict, seqs: RepeatSet, cfg: Config):
    """Per span length: prefix / copying means, copying CI low, and the prefix bootstrap draws."""
    by_len, boots = {}, []
    for L in seqs.lengths:
        rows = seqs.span_len == L
        boots.append(bootstrap_means(stats["prefix"][rows], cfg.n_boot, cfg.seed + L))
        copy_lo = interval(bootstrap_means(stats["copy"][rows], cfg.n_boot, cfg.seed + L), cfg.ci)[
            0
        ]
        by_len[L] = {
            "prefix_matching": stats["prefix"][rows].mean(0),
            "copying": stats["copy"][rows].mean(0),
            "copying_ci_low": copy_lo,
        }
    return by_len, torch.stack(boots)


def summarize(model, seqs: RepeatSet, stats: dict, cfg: Config) -> Result:
    """Turn per-sequence statistics into means, CIs, per-length scores and roles."""
    dh, name, thr = seqs.hash(), model.name, cfg.threshold
    scores = {}
    for key, (label, method, thresholded) in _LABELS.items():
        lo, hi = interval(bootstrap_means(stats[key], cfg.n_boot, cfg.seed), cfg.ci)
        scores[label] = _head_scores(
            name, method, stats[key].mean(0), lo, hi, thr if thresholded else 0.0, dh, cfg.seed
        )
    by_len, boots = _per_length(stats, seqs, cfg)
    prefix_len = torch.stack([v["prefix_matching"] for v in by_len.values()])
    copy_lo_len = torch.stack([v["copying_ci_low"] for v in by_len.values()])
    lo, hi = interval(boots.min(0).values, cfg.ci)
    scores["induction"] = _head_scores(
        name,
        "min over span lengths of prefix-matching",
        prefix_len.min(0).values,
        lo,
        hi,
        thr,
        dh,
        cfg.seed,
        {"span_lengths": seqs.lengths},
    )
    scores["ov_eigen"] = ov_eigen_scores(model)
    offset_mass, offset = stats["offsets"].mean(0).max(-1)
    roles = head_roles(
        prefix_len,
        copy_lo_len,
        scores["previous_token"].scores,
        scores["duplicate_token"].scores,
        offset,
        offset_mass,
        thr,
    )
    data = {"n_seqs": len(seqs), "data_hash": dh, **seqs.config}
    return Result(
        name,
        cfg,
        data,
        scores,
        by_len,
        offset,
        offset_mass,
        roles,
        loss_stats(stats["loss_first"], stats["loss_second"], seqs, cfg),
    )
