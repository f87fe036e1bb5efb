"""Cross-check with TransformerLens: do its induction scores rank the heads as ours do?

`detect_head(model, seq, "induction_head")` (transformer-lens 4) runs on the model's
TransformerBridge through a thin adapter whose ``to_tokens`` hands over our token ids
unchanged (no decode / re-tokenize round trip; the bridge built by `interp` has no tokenizer).
Both scores use the same rows. TL's score is the attention mass on *every* query-key pair
whose key follows an earlier copy of the query's token, divided by *all* attention (every
query, BOS and first copy included), so it is diluted by the share of queries with no target;
ours averages second-copy queries only. The agreement is a rank correlation.

    >>> tl_agreement(
    ...     model, make_sequences(model, Config())
    ... )["spearman_prefix_matching"]  # doctest: +SKIP
    0.986
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from interp.data.repeats import RepeatSet
from interp.stats import spearman

from .scoring import score_heads
from .summary import min_over_lengths

__all__ = ["tl_agreement", "IdsBridge"]

NOTE = (
    "TL divides by all attention (every query) so its scores are ~ our prefix-matching x the "
    "share of queries in the second copy, plus attention to chance repeats in the prefix/filler; "
    "TL marks unscored heads with -1; we keep unscored heads out of HeadScores (mask)."
)


class IdsBridge:
    """head_detector's model protocol (cfg, to_tokens, run_with_cache) over a bridge, for token
    ids."""

    def __init__(self, bridge):
        self.bridge, self.cfg = bridge, bridge.cfg

    def to_tokens(self, ids):
        return ids

    def run_with_cache(self, tokens, **kwargs):
        return self.bridge.run_with_cache(tokens, **kwargs)


def _kept_rows(seqs: RepeatSet, max_seqs: int) -> list[int]:
    step = max(1, len(seqs) // max_seqs)
    return list(range(0, len(seqs), step))[:max_seqs]


def _tl_scores(model, seqs: RepeatSet, kept: list[int]) -> torch.Tensor:
    """[L, H] TL's induction score, averaged over the kept rows."""
    # transformer-lens takes seconds to import and only this cross-check needs it
    from transformer_lens.head_detector import detect_head

    adapter = IdsBridge(model.bridge)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.stack(
            [
                detect_head(adapter, seqs.input_ids[i][None].to(model.device), "induction_head")
                .float()
                .cpu()
                for i in kept
            ]
        ).mean(0)


def tl_agreement(model, seqs: RepeatSet, *, max_seqs: int = 24) -> dict:
    """Rank agreement of our induction scores with transformer-lens 4's `head_detector` on up
    to `max_seqs` rows of `seqs` (spread evenly); see the module docstring for how they differ."""
    kept = _kept_rows(seqs, max_seqs)
    if seqs.seq_len >= model.bridge.cfg.n_ctx:  # head_detector asserts seq_len < n_ctx
        return {
            "n_seqs": 0,
            "note": f"head_detector needs sequences shorter than n_ctx={model.bridge.cfg.n_ctx}",
        }
    tl = _tl_scores(model, seqs, kept)
    rows = seqs.select(kept)
    ours = score_heads(model, rows)
    prefix, induction = ours["prefix"].mean(0), min_over_lengths(ours["prefix"], rows)
    share = float(rows.span_len.float().mean() / seqs.seq_len)
    keep = prefix.flatten() > 0.02
    return {
        "n_seqs": len(kept),
        "spearman_prefix_matching": spearman(tl.flatten(), prefix.flatten()),
        "spearman_induction_min_over_lengths": spearman(tl.flatten(), induction.flatten()),
        "pearson_prefix_matching": float(np.corrcoef(tl.flatten(), prefix.flatten())[0, 1]),
        "tl_max": float(tl.max()),
        "ours_max": float(prefix.max()),
        "second_copy_share_of_queries": share,
        "tl_over_ours_median": float(torch.median(tl.flatten()[keep] / prefix.flatten()[keep]))
        if keep.any()
        else None,
        "tl_scores": tl.tolist(),
        "our_scores": prefix.tolist(),
        "note": NOTE,
    }
