"""Streaming attention statistics: each layer's [batch, head, query, key] pattern is reduced, inside
its hook, to a few numbers per sequence and head, and the pattern itself is dropped.

For a row with its first copy at ``first`` and second at ``second``, the query at second-copy
position ``second + i`` holds token r_i; the earlier occurrence is at ``first + i`` (duplicate
key) and the token to predict follows it at ``first + i + 1`` (prefix key).

- prefix / dup: mean attention from second-copy queries to the prefix / duplicate key;
- prev: mean attention from every position to the one before it;
- offsets[..., d]: mean attention from second-copy queries to the key d positions back;
- rows[layer]: the second-copy query rows of the pattern, kept only until the copying score
  (`circuits.induction.copying`) has used them.
"""

from __future__ import annotations

import torch

from interp.backends.plan import Edit
from interp.data.repeats import RepeatSet

__all__ = ["query_index", "Observer"]


def query_index(seqs: RepeatSet):
    """[b, Lmax] second-copy query positions, their prefix / duplicate keys, and a validity mask."""
    lmax = int(seqs.span_len.max())
    i = torch.arange(lmax)[None]
    valid = i < seqs.span_len[:, None]
    q = (seqs.second[:, None] + i).clamp(max=seqs.seq_len - 1)
    dup = (seqs.first[:, None] + i).clamp(max=seqs.seq_len - 1)
    return q, dup + 1, dup, valid


class Observer:
    """Pattern edits that reduce each layer's [b, H, T, T] pattern to per-sequence statistics."""

    def __init__(self, seqs: RepeatSet, n_layers: int, n_heads: int):
        self.q, self.k_pref, self.k_dup, self.valid = query_index(seqs)
        b, t = len(seqs), seqs.seq_len
        self.second_mask = seqs.copy_mask("second").float()
        self.prefix = torch.zeros(b, n_layers, n_heads)
        self.dup = torch.zeros(b, n_layers, n_heads)
        self.prev = torch.zeros(b, n_layers, n_heads)
        self.offsets = torch.zeros(b, n_layers, n_heads, t)  # [.., d]: mean attention to q - d
        self.rows: dict[int, torch.Tensor] = {}  # layer -> pattern rows of second-copy queries

    def edit(self, layer: int) -> Edit:
        """An edit that observes `layer`'s pattern and returns it unchanged."""

        def observe(pattern: torch.Tensor, ctx) -> torch.Tensor:
            self._reduce(layer, pattern.detach().float().cpu())
            return pattern

        return Edit(layer, "pattern", observe)

    def masked_mean(self, values: torch.Tensor) -> torch.Tensor:
        """Mean over the valid second-copy queries: values [b, Lmax, H] -> [b, H]."""
        w = self.valid.float()[:, :, None]
        return (values * w).sum(1) / w.sum(1)

    def _reduce(self, layer: int, a: torch.Tensor) -> None:
        bi = torch.arange(a.shape[0])[:, None]
        self.prefix[:, layer] = self.masked_mean(a[bi, :, self.q, self.k_pref])
        self.dup[:, layer] = self.masked_mean(a[bi, :, self.q, self.k_dup])
        self.prev[:, layer] = torch.diagonal(a, offset=-1, dim1=-2, dim2=-1).mean(-1)
        self._reduce_offsets(layer, a)
        self.rows[layer] = a[bi, :, self.q].permute(0, 2, 1, 3)  # [b, H, Lmax, T]

    def _reduce_offsets(self, layer: int, a: torch.Tensor) -> None:
        m = self.second_mask
        for d in range(1, a.shape[-1]):
            diag = torch.diagonal(a, offset=-d, dim1=-2, dim2=-1)  # queries d .. T-1
            w = m[:, d:]
            self.offsets[:, layer, :, d] = (diag * w[:, None]).sum(-1) / w.sum(-1).clamp(min=1)[
                :, None
            ]
