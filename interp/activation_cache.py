"""`ActivationCache`: the head sites a forward captured, keyed by (layer, site).

    >>> from interp.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> logits, cache = model.run_with_cache("once upon a time", sites="z")
    >>> cache[1, "z"].shape  # [batch, pos, n_heads, d_head]
    torch.Size([1, 5, 8, 8])
    >>> cache.head("z", "L1H3").shape  # one head: [batch, pos, d_head]
    torch.Size([1, 5, 8])

A key the forward did not capture is a `CacheKeyError` that lists what the cache holds and the
`run_with_cache` call that captures the missing one.
"""

from __future__ import annotations

import torch

from .errors import InvalidArgumentError
from .heads import Head, HeadIndexError, HeadLike
from .tokens import Tokens

__all__ = ["ActivationCache", "CacheKeyError"]


class CacheKeyError(InvalidArgumentError, KeyError):
    """A site or layer that the cache did not capture; the message says how to capture it."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ActivationCache(dict):
    """Captured head sites: ``cache[layer, site]`` -> tensor in the canonical layout.

    ``cache.head("z", "L1H3")`` slices one head. `tokens` is the batch that produced it.
    """

    def __init__(self, data, tokens: Tokens):
        super().__init__(data)
        self.tokens = tokens

    def __getitem__(self, key):
        if key not in self:
            captured = ", ".join(f"({layer}, {site!r})" for layer, site in sorted(self)[:8])
            more = " ..." if len(self) > 8 else ""
            raise CacheKeyError(
                f"this cache holds no {key!r} (it holds {captured}{more}); "
                "index it as cache[layer, site], and capture more with "
                "model.run_with_cache(prompts, sites=(...), layers=[...])"
            )
        return super().__getitem__(key)

    def head(self, site: str, head: HeadLike) -> torch.Tensor:
        head = Head.parse(head)
        if (head.layer, site) not in self:
            captured = sorted({f"{s}@L{layer}" for layer, s in self})
            raise CacheKeyError(
                f"this cache holds no {site!r} for layer {head.layer} (it holds "
                f"{', '.join(captured[:8])}{' ...' if len(captured) > 8 else ''}); capture it "
                f"with model.run_with_cache(prompts, sites=({site!r},), layers=[{head.layer}])"
            )
        tensor = self[head.layer, site]
        n_heads = tensor.shape[1] if site == "pattern" else tensor.shape[2]
        if not 0 <= head.head < n_heads:
            raise HeadIndexError(
                f"{head} is out of range: layer {head.layer} has heads 0..{n_heads - 1}"
            )
        if site == "pattern":
            return tensor[:, head.head]
        return tensor[:, :, head.head]
