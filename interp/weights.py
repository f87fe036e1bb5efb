"""Weight access for analyzers: the matrices of the residual-stream picture, read once, here.

Weight-based analyses (OV circuits, direct logit effects) read the same few matrices of every
architecture. Each is returned detached, as float32 on the CPU, in one canonical layout
whatever the storage convention (`interp.arch`'s site tables say where each part lives):

==================  ================================  =========================================
function            shape                             what it is
==================  ================================  =========================================
value_weight        [n_kv_heads, d_model, d_head]     W_V per kv head (x @ W_V = v), or None
output_weight       [n_heads, d_head, d_model]        W_O per query head (z @ W_O = out)
unembed_weight      [vocab, d_model]                  W_U rows (logits = x @ W_U.T)
final_norm_parts    (weight [d_model], eps, is_ln)    the final norm's gain and epsilon
folded_unembed      [vocab, d_model]                  W_U seen through the final norm's gain
input_norm_weight   [d_model] or None                 the gain of a layer's attention-input norm
==================  ================================  =========================================

Folding a norm: RMSNorm and LayerNorm compute ``g * (x - c) / s(x)`` (c = 0 for RMSNorm, the
mean over d_model for LayerNorm). The gain ``g`` is linear and folds into the next matrix
(``W_U * g``); the centring is a projection and folds too (subtract the row mean over d_model);
the scale ``s(x)`` depends on the input, so a weight-only analysis leaves it out and a
per-input one divides by it (`norm_scale`).

    >>> from interp.testing import tiny_model
    >>> model = tiny_model("llama")        # 8 query heads share 4 kv heads, d_head 8, d_model 64
    >>> tuple(value_weight(model, 0).shape), tuple(output_weight(model, 0).shape)
    ((4, 64, 8), (8, 8, 64))
    >>> folded_unembed(model).shape == unembed_weight(model).shape
    True
"""

from __future__ import annotations

from typing import Optional

import torch

from .arch import split_qkv
from .errors import InvalidArgumentError

__all__ = [
    "value_weight",
    "output_weight",
    "unembed_weight",
    "final_norm_parts",
    "folded_unembed",
    "norm_scale",
    "input_norm_weight",
    "NORM_NAMES",
]

NORM_NAMES = ("input_layernorm", "ln_1", "attention_norm")
"""Attribute names of the attention-input norm inside a block, across the supported families."""


def _cpu(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach().float().cpu()


def value_weight(model, layer: int) -> Optional[torch.Tensor]:
    """W_V of one layer as [n_kv_heads, d_model, d_head], or None where the layout is unknown.

    Separate projections store ``v_proj.weight`` as [kv * d_head, d_model]; fused ones are split
    with `interp.arch.split_qkv`, treating the d_model input rows of the weight as positions (the
    projection is linear, so splitting its weight splits its output the same way). Under
    grouped-query attention query head h reads kv head ``h // (n_heads // n_kv_heads)``.
    """
    spec, attn = model.spec, model.attention_modules()[layer]
    kv, dh = model.n_kv_heads, model.d_head
    if spec.qkv_layout == "separate":
        w = _cpu(getattr(attn, spec.qkv[2]).weight)  # [kv * dh, d_model]
        return w.T.reshape(-1, kv, dh).permute(1, 0, 2)
    if spec.qkv_layout not in ("concat", "per_head"):
        return None
    w = _cpu(getattr(attn, spec.qkv[0]).weight)
    if not (spec.qkv_layout == "concat" and spec.conv1d_out):  # Linear: [features, d_model]
        w = w.T
    _, _, v = split_qkv(spec, w[None], model.n_heads, kv, dh)  # v: [1, d_model, kv, d_head]
    return v[0].permute(1, 0, 2)


def output_weight(model, layer: int) -> torch.Tensor:
    """W_O of one layer as [n_heads, d_head, d_model] (`Model.w_out`, detached on the CPU)."""
    return _cpu(model.w_out(layer))


def unembed_weight(model) -> torch.Tensor:
    """W_U as [vocab, d_model] (HF's output embedding where the arch table's name is stale)."""
    try:
        module = model.unembed
    except AttributeError:
        module = model.hf.get_output_embeddings()
    return _cpu(module.weight)


def final_norm_parts(model) -> tuple[torch.Tensor, float, bool]:
    """(gain [d_model], eps, is_layernorm) of the final norm; a norm without a gain is refused."""
    norm = model.final_norm
    weight = getattr(norm, "weight", None)
    if weight is None:
        raise InvalidArgumentError(
            f"the final norm {type(norm).__name__} has no weight; a norm fold needs one"
        )
    eps = float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-5)))
    return _cpu(weight) + model.spec.norm_offset, eps, isinstance(norm, torch.nn.LayerNorm)


def folded_unembed(model, *, centre: bool = True) -> torch.Tensor:
    """W_U [vocab, d_model] with the final norm's gain folded in; with `centre`, LayerNorm's
    centring over d_model is folded in too (RMSNorm does not centre)."""
    weight, _, layernorm = final_norm_parts(model)
    u = unembed_weight(model) * weight
    if centre and layernorm:
        u = u - u.mean(-1, keepdim=True)
    return u


def norm_scale(x: torch.Tensor, eps: float, layernorm: bool) -> torch.Tensor:
    """The input-dependent divisor s(x) of a norm over the last dim: RMS, or the standard
    deviation for LayerNorm (both with `eps` inside the root)."""
    x = x.float()
    if layernorm:
        return (x.var(-1, unbiased=False) + eps).sqrt()
    return (x.pow(2).mean(-1) + eps).sqrt()


def input_norm_weight(model, layer: int) -> Optional[torch.Tensor]:
    """The gain [d_model] of the norm in front of a layer's attention, or None where there is
    none."""
    block = model.layer_modules()[layer]
    for name in NORM_NAMES:
        norm = getattr(block, name, None)
        if norm is not None and getattr(norm, "weight", None) is not None:
            return _cpu(norm.weight) + model.spec.norm_offset
    return None
