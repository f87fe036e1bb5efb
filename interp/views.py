"""Figures of a model on a prompt: attention patterns of chosen heads.

>>> fig = attention_view(model, "the cat saw the cat", ["L1H2", "L0H0"])   # doctest: +SKIP
>>> interp.plots.save_html(fig, "figures/attention.html")                 # doctest: +SKIP
"""

from __future__ import annotations

from .plots import attention_pattern

__all__ = ["attention_view"]


def attention_view(model, prompt: str, heads, *, backend=None, title=None):
    """Plotly figure of the attention pattern of `heads` on one prompt (a dropdown per head)."""
    heads = model.heads(heads)
    layers = sorted({h.layer for h in heads})
    _, cache = model.run_with_cache(prompt, sites=("pattern",), layers=layers, backend=backend)
    patterns = {str(h): cache.head("pattern", h)[0].float() for h in heads}
    tokens = model.to_str(cache.tokens.input_ids[0])
    return attention_pattern(
        patterns, tokens, title=title or f"{model.name}: attention on the prompt"
    )
