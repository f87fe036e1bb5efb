"""The SDPA calls behind `headkv_attention`: one group of query heads over its part of the cache.

Each part has a general route (an explicit boolean mask, which handles padding, a local layer's
window and any query offset) and a fast route for the common case of a prompt with no padding:

- full kv heads in the prefill: SDPA's own causal kernel (`is_causal`), which skips the masked
  half of the score matrix that an explicit mask makes it compute;
- streaming kv heads in the prefill: queries in chunks of `chunk_size(window)` positions, each
  attending only to the sink and the window before it, so the cost is about
  T x (sink + window + chunk) instead of T x T;
- a decode step with no padding: no mask at all (every cached position is visible).

The fast routes compute the same attention as the general one (tested against it); they change
the cost, not the result. Grouped-query heads use SDPA's ``enable_gqa`` instead of copying keys.

    >>> import torch
    >>> q, k = torch.randn(1, 2, 2, 6, 4), torch.randn(1, 2, 6, 4)
    >>> pos = torch.arange(6)
    >>> fast = window_prefill(q, k, k, pos, sink=1, window=2, scaling=None)
    >>> band = allowed(None, 6, 6, "cpu") & near(pos, 6, 6, sink=1, window=2)
    >>> slow = attend(q, k, k, band, None)
    >>> bool(torch.allclose(fast, slow, atol=1e-6))
    True
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["allowed", "attend", "near", "window_prefill", "chunk_size", "MIN_CHUNK", "FAST_ROUTES"]

FAST_ROUTES = True
"""False sends every call down the general masked route: for checks and benches that compare."""

MIN_CHUNK = 64
"""The fewest query positions per chunk of a streaming prefill (fewer: more SDPA calls)."""


def chunk_size(window: int) -> int:
    """Query positions per chunk of a streaming prefill: the window, at least `MIN_CHUNK`."""
    return max(MIN_CHUNK, window)


def allowed(attention_mask: Optional[torch.Tensor], q_len: int, total: int, device) -> torch.Tensor:
    """Boolean [b or 1, 1, q, total]: the model's mask (causal and padding) as booleans."""
    if attention_mask is None:
        q_pos = torch.arange(total - q_len, total, device=device)[:, None]
        return (torch.arange(total, device=device)[None, :] <= q_pos)[None, None]
    mask = attention_mask[..., -q_len:, :total]
    return mask if mask.dtype == torch.bool else mask == 0


def near(key_pos: torch.Tensor, q_len: int, total: int, sink: int, window: int) -> torch.Tensor:
    """Boolean [q, k]: which keys at `key_pos` a streaming head's queries (the last `q_len` of
    `total` positions) read: the first `sink` positions and the `window` before each query
    (the query itself included)."""
    q_pos = torch.arange(total - q_len, total, device=key_pos.device)[:, None]
    return (key_pos[None, :] < sink) | (q_pos - key_pos[None, :] <= window)


def attend(query, keys, values, mask: Optional[torch.Tensor], scaling, causal: bool = False):
    """SDPA of query [b, n_kv, G, q, d] over keys/values [b, n_kv, k, d] under `mask`
    [b|1, 1, q, k] (None: every key visible), or SDPA's causal kernel when `causal` (q = k)."""
    b, n_kv, groups, q_len, d = query.shape
    out = torch.nn.functional.scaled_dot_product_attention(
        query.reshape(b, n_kv * groups, q_len, d),
        keys,
        values,
        attn_mask=mask,
        is_causal=causal,
        scale=scaling,
        enable_gqa=groups > 1,
    )
    return out.view(b, n_kv, groups, q_len, values.shape[-1])


def window_prefill(query, keys, values, key_pos, sink: int, window: int, scaling):
    """`attend` for streaming heads over a whole unpadded prompt (queries at positions
    0..T-1, keys at `key_pos` = 0..T-1), chunk by chunk: each chunk of queries reads only the
    sink and the band of `window` positions before it."""
    total = query.shape[-2]
    step = chunk_size(window)
    pieces = []
    for start in range(0, total, step):
        end = min(total, start + step)
        low = max(0, start - window)
        keep = torch.cat(
            [
                torch.arange(min(sink, low), device=key_pos.device),
                torch.arange(low, end, device=key_pos.device),
            ]
        )
        k_pos = key_pos[keep]
        causal = k_pos[None, :] <= torch.arange(start, end, device=k_pos.device)[:, None]
        mask = causal & near(k_pos, end - start, end, sink, window)
        pieces.append(
            attend(
                query[..., start:end, :],
                keys[:, :, keep],
                values[:, :, keep],
                mask[None, None],
                scaling,
            )
        )
    return torch.cat(pieces, dim=-2)
