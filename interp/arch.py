"""Architectures as declarative tables of sites.

Each supported Hugging Face architecture is described once, by where its parts live in the
module tree and how its fused projections are laid out. The backends read these tables;
no analyzer branches on the architecture.

Per-head sites (canonical layouts, the same on every backend):

========  =====================================  =================================================
site      shape                                  meaning
========  =====================================  =================================================
q         [batch, pos, n_heads, d_head]          query, before rotary embedding
k, v      [batch, pos, n_kv_heads, d_head]       key / value, before rotary (shared under GQA)
pattern   [batch, n_heads, q_pos, k_pos]         attention weights after softmax
z         [batch, pos, n_heads, d_head]          per-head output before the output projection
result    [batch, pos, n_heads, d_model]         the head's contribution to the residual stream
========  =====================================  =================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import InterpError, InvalidArgumentError

__all__ = ["ArchSpec", "ARCHITECTURES", "SITES", "arch_spec", "UnsupportedArchitectureError"]

SITES = ("q", "k", "v", "pattern", "z", "result")


class UnsupportedArchitectureError(InterpError, ValueError):
    """The model's architecture has no site table. The message lists the supported ones."""


@dataclass(frozen=True)
class ArchSpec:
    """Where an architecture keeps its parts.

    qkv: names of the separate q/k/v projections, or one fused projection name.
    qkv_layout: "separate"; "concat" (GPT-2: [q | k | v] along features);
      "per_head" (GPT-NeoX: [head, (q, k, v), d_head]).
    out: the output projection; its input is z.
    conv1d_out: the output projection stores its weight transposed (GPT-2 Conv1D).
    norm_offset: added to a norm's stored weight to give its gain (Gemma's RMSNorm multiplies
      by ``1 + weight``; 0 elsewhere).
    """

    family: str
    layers: str
    attn: str
    qkv: tuple[str, ...]
    qkv_layout: str
    out: str
    final_norm: str
    unembed: str
    conv1d_out: bool = False
    norm_offset: float = 0.0


ARCHITECTURES: dict[str, ArchSpec] = {
    "LlamaForCausalLM": ArchSpec(
        "llama",
        "model.layers",
        "self_attn",
        ("q_proj", "k_proj", "v_proj"),
        "separate",
        "o_proj",
        "model.norm",
        "lm_head",
    ),
    "MistralForCausalLM": ArchSpec(
        "mistral",
        "model.layers",
        "self_attn",
        ("q_proj", "k_proj", "v_proj"),
        "separate",
        "o_proj",
        "model.norm",
        "lm_head",
    ),
    "Qwen2ForCausalLM": ArchSpec(
        "qwen2",
        "model.layers",
        "self_attn",
        ("q_proj", "k_proj", "v_proj"),
        "separate",
        "o_proj",
        "model.norm",
        "lm_head",
    ),
    # Llama-like layouts; what differs (q/k norms, sliding windows, soft-capping, scaled
    # embeddings, post-attention norms) happens inside the HF modules, around these sites
    **{
        name: ArchSpec(
            family,
            "model.layers",
            "self_attn",
            ("q_proj", "k_proj", "v_proj"),
            "separate",
            "o_proj",
            "model.norm",
            "lm_head",
            norm_offset=offset,
        )
        for name, family, offset in (
            ("Gemma3ForCausalLM", "gemma3", 1.0),
            ("Gemma2ForCausalLM", "gemma2", 1.0),
            ("Qwen3ForCausalLM", "qwen3", 0.0),
            ("Olmo2ForCausalLM", "olmo2", 0.0),
        )
    },
    "Phi3ForCausalLM": ArchSpec(
        "phi3",
        "model.layers",
        "self_attn",
        ("qkv_proj",),
        "concat",
        "o_proj",
        "model.norm",
        "lm_head",
    ),
    "GPT2LMHeadModel": ArchSpec(
        "gpt2",
        "transformer.h",
        "attn",
        ("c_attn",),
        "concat",
        "c_proj",
        "transformer.ln_f",
        "lm_head",
        conv1d_out=True,
    ),
    "GPTNeoXForCausalLM": ArchSpec(
        "gpt_neox",
        "gpt_neox.layers",
        "attention",
        ("query_key_value",),
        "per_head",
        "dense",
        "gpt_neox.final_layer_norm",
        "lm_head",
    ),
}


def arch_spec(hf_model: torch.nn.Module) -> tuple[str, ArchSpec]:
    """Return (architecture name, its table) for a Hugging Face causal LM."""
    names = list(getattr(hf_model.config, "architectures", None) or []) + [type(hf_model).__name__]
    for name in names:
        if name in ARCHITECTURES:
            return name, ARCHITECTURES[name]
    raise UnsupportedArchitectureError(
        f"architecture {names[0]!r} is not supported; supported architectures: "
        f"{', '.join(sorted(ARCHITECTURES))}. Add a row to interp.arch.ARCHITECTURES to support it."
    )


def out_weight_per_head(spec: ArchSpec, out_module: torch.nn.Module, n_heads: int) -> torch.Tensor:
    """W_O as [n_heads, d_head, d_model], whatever the storage convention."""
    weight = out_module.weight
    if not spec.conv1d_out:  # nn.Linear: [d_model, n_heads * d_head]
        weight = weight.T
    d_model = weight.shape[1]
    return weight.reshape(n_heads, -1, d_model)


def split_qkv(
    spec: ArchSpec, fused: torch.Tensor, n_heads: int, n_kv_heads: int, d_head: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a fused projection output [batch, pos, features] into canonical q, k, v."""
    batch, pos, _ = fused.shape
    if spec.qkv_layout == "concat":
        q, k, v = fused.split([n_heads * d_head, n_kv_heads * d_head, n_kv_heads * d_head], dim=-1)
        return (
            q.reshape(batch, pos, n_heads, d_head),
            k.reshape(batch, pos, n_kv_heads, d_head),
            v.reshape(batch, pos, n_kv_heads, d_head),
        )
    if spec.qkv_layout == "per_head":
        q, k, v = fused.reshape(batch, pos, n_heads, 3 * d_head).chunk(3, dim=-1)
        return q, k, v
    raise InvalidArgumentError(f"no fused layout {spec.qkv_layout!r}")


def merge_qkv(spec: ArchSpec, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inverse of `split_qkv`: canonical q, k, v back into the fused layout."""
    batch, pos = q.shape[:2]
    if spec.qkv_layout == "concat":
        return torch.cat(
            [q.reshape(batch, pos, -1), k.reshape(batch, pos, -1), v.reshape(batch, pos, -1)],
            dim=-1,
        )
    if spec.qkv_layout == "per_head":
        return torch.cat([q, k, v], dim=-1).reshape(batch, pos, -1)
    raise InvalidArgumentError(f"no fused layout {spec.qkv_layout!r}")
