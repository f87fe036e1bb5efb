"""An eager attention function that exposes the attention pattern as a module.

Hugging Face models compute attention inside a function chosen by
``config._attn_implementation`` (sdpa by default), where no hook can reach the softmax
output. For a call that reads or writes the pattern, `interp` switches the model to
``"interp_eager"``: plain softmax attention that passes its weights through
``module.interp_pattern``, an identity submodule that nnsight (or a torch hook) can read and
overwrite. Calls that do not touch the pattern keep the model's own fast implementation.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

__all__ = [
    "PatternSite",
    "IMPLEMENTATION",
    "install_pattern_sites",
    "pattern_attention",
    "attention_implementation",
    "attention_configs",
]

IMPLEMENTATION = "interp_eager"


class PatternSite(torch.nn.Identity):
    """Identity module whose output is the attention pattern [batch, heads, q_pos, k_pos]."""


def interp_eager_attention(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, softcap=None, **kwargs
):
    """Softmax attention; query [b, h, q, d], key/value [b, kv_heads, k, d].

    `softcap` (Gemma 2's attention logit soft-capping) squashes the scores to
    ``softcap * tanh(scores / softcap)`` before the mask, as the model's own kernels do. Sliding
    windows need nothing here: they arrive inside `attention_mask`."""
    n_rep = query.shape[1] // key.shape[1]
    if n_rep > 1:
        key = key.repeat_interleave(n_rep, dim=1)
        value = value.repeat_interleave(n_rep, dim=1)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, : key.shape[-2]]
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = module.interp_pattern(weights)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


AttentionInterface.register(IMPLEMENTATION, interp_eager_attention)
AttentionMaskInterface.register(IMPLEMENTATION, ALL_MASK_ATTENTION_FUNCTIONS["eager"])


def install_pattern_sites(attn_modules) -> None:
    """Give each attention module an `interp_pattern` identity child (idempotent)."""
    for attn in attn_modules:
        if not hasattr(attn, "interp_pattern"):
            attn.add_module("interp_pattern", PatternSite())


@contextmanager
def attention_implementation(hf_model, name: str):
    """Run `hf_model` with the registered attention implementation `name`; restore it after."""
    configs = {id(c): c for c in attention_configs(hf_model)}.values()
    saved = [(c, c._attn_implementation) for c in configs]
    try:
        for config, _ in saved:
            config._attn_implementation = name
        yield
    finally:
        for config, previous in saved:
            config._attn_implementation = previous


@contextmanager
def pattern_attention(hf_model, active: bool = True):
    """Run `hf_model` with `interp_eager` attention inside the block; restore it after."""
    if not active:
        yield
        return
    with attention_implementation(hf_model, IMPLEMENTATION):
        yield


def attention_configs(hf_model):
    """Every config in ``hf_model`` that carries an attention implementation: the model's own and
    those of its submodules (a multimodal or composite model keeps one per part), possibly the
    same object more than once."""
    yield hf_model.config
    for module in hf_model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            yield config


_configs = attention_configs  # the old private name, kept for importers not yet switched
