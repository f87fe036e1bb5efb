"""A KV cache that keeps less: full context for some kv heads, sink + window for the rest.

`HeadKVLayer` is one layer of a transformers `Cache`. It stores the kept kv heads' keys and values
for every position, and for the streaming kv heads only the first `sink` positions and the `window`
most recent ones: evicted positions are dropped from memory, not masked. The layer's `update`
hands the attention call a `SplitKV` (the two parts and the positions of the streaming part), and
`headkv_attention`, registered as a transformers attention implementation, attends each group of
query heads over its own part:

- a query at position p of a full kv head's group sees every earlier position (plain causal);
- a query of a streaming group sees positions j < sink and p - window <= j <= p.

In a model's local (sliding-window) layers both parts also drop what the layer's own window no
longer covers (`HeadKVPolicy.spans`), as the model's own cache does there.

The same rule holds in the prefill (a Λ-shaped mask, as DuoAttention does), so a prompt's last
position already reads through the compressed view, and a token-by-token run gives the same
result as one prefill. With every kv head full, `headkv_attention` is the model's own SDPA over
the same keys: the tokens equal the full-cache tokens (tested). The SDPA calls themselves are in
`interp.kv.attention`: on a prompt with no padding the prefill of the full heads runs SDPA's
causal kernel and that of the streaming heads reads the sink and window chunk by chunk, so a
prefill under a policy costs about what a plain one does, and less the more heads stream.

Keys are cached after the rotary embedding, so dropping positions does not disturb the others'
positions. Under left padding the pad slots count as positions (masked as usual), so a sink
would be padding: `interp.generation.generate` refuses a policy with a sink and streaming heads
on a left-padded batch.

    >>> from interp.testing import tiny_model
    >>> from interp.kv import streaming_policy
    >>> model = tiny_model("llama")
    >>> out = model.generate(
    ...     "a b c d e f g h", max_new_tokens=3, kv_policy=streaming_policy(model, sink=1, window=2)
    ... )
    >>> len(out.new_tokens[0])
    3
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache, DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

from ..backends.attention import attention_implementation
from ..errors import InvalidArgumentError
from . import attention as kv_attention
from .attention import allowed, attend, near, window_prefill
from .policy import HeadKVPolicy

__all__ = [
    "SplitKV",
    "HeadKVLayer",
    "HeadKVCache",
    "headkv_attention",
    "IMPLEMENTATION",
    "policy_generation",
    "KVPolicyError",
]

IMPLEMENTATION = "interp_headkv"


class KVPolicyError(InvalidArgumentError):
    """A KV policy that cannot be applied to this model or this call."""


@dataclass
class SplitKV:
    """One layer's keys (or values) for one attention call, split by the policy.

    full: [batch, n_full, m, d] for the kv heads `full_heads`, at logical positions `full_pos`
      [m] (every position 0..T-1, or a local layer's window);
    stream: [batch, n_stream, n, d] for `stream_heads`, at logical positions `stream_pos` [n];
    total: T, the logical length (the query positions are T - q .. T - 1)."""

    full: torch.Tensor
    full_pos: torch.Tensor
    stream: torch.Tensor
    stream_pos: torch.Tensor
    full_heads: list
    stream_heads: list
    total: int
    sink: int
    window: int


class HeadKVLayer(DynamicLayer):
    """One layer's cache under a `HeadKVPolicy` (see the module docstring)."""

    def __init__(self, policy: HeadKVPolicy, layer: int):
        super().__init__()
        self.full_heads = policy.full_heads(layer)
        self.stream_heads = policy.streaming_heads(layer)
        self.sink, self.window = policy.sink, policy.window
        self.span = policy.span(layer)  # a local layer's own window (0: global)
        self.length = 0

    def lazy_initialization(self, key_states, value_states) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        b, _, _, d = key_states.shape
        empty = lambda n, dim: key_states.new_zeros(b, n, 0, dim)  # noqa: E731
        self.full_k, self.full_v = (
            empty(len(self.full_heads), d),
            empty(len(self.full_heads), value_states.shape[-1]),
        )
        self.stream_k, self.stream_v = (
            empty(len(self.stream_heads), d),
            empty(len(self.stream_heads), value_states.shape[-1]),
        )
        self.stream_pos = torch.zeros(0, dtype=torch.long, device=self.device)
        self.full_pos = torch.zeros(0, dtype=torch.long, device=self.device)
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[2]
        total = self.length + new
        full_k = torch.cat([self.full_k, key_states[:, self.full_heads]], 2)
        full_v = torch.cat([self.full_v, value_states[:, self.full_heads]], 2)
        stream_k = torch.cat([self.stream_k, key_states[:, self.stream_heads]], 2)
        stream_v = torch.cat([self.stream_v, value_states[:, self.stream_heads]], 2)
        fresh = torch.arange(self.length, total, device=self.stream_pos.device)
        pos, full_pos = torch.cat([self.stream_pos, fresh]), torch.cat([self.full_pos, fresh])
        parts = (self.full_heads, self.stream_heads, total, self.sink, self.window)
        keys = SplitKV(full_k, full_pos, stream_k, pos, *parts)
        values = SplitKV(full_v, full_pos, stream_v, pos, *parts)
        # keep what the next query may still see: within the layer's span, and for the
        # streaming heads only the sink and the recent window
        low = total - self.span + 1 if self.span else 0
        keep_full = full_pos >= low
        keep = ((pos < self.sink) | (pos >= total - self.window)) & (pos >= low)
        self.full_k, self.full_v = _kept(full_k, keep_full), _kept(full_v, keep_full)
        self.stream_k, self.stream_v = _kept(stream_k, keep), _kept(stream_v, keep)
        self.full_pos, self.stream_pos, self.length = full_pos[keep_full], pos[keep], total
        return keys, values

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_max_length(self) -> int:
        return -1

    def crop(self, tokens_to_remove: int) -> None:
        raise KVPolicyError("a head-aware KV cache cannot be cropped (evicted positions are gone)")

    def stored_bytes(self) -> int:
        """Bytes the layer holds now (keys and values of both parts)."""
        if not self.is_initialized:
            return 0
        return sum(
            t.numel() * t.element_size()
            for t in (self.full_k, self.full_v, self.stream_k, self.stream_v)
        )


def _kept(tensor: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """`tensor` [b, heads, positions, d] at the kept positions (itself when all are kept)."""
    return tensor if bool(keep.all()) else tensor[:, :, keep].contiguous()


class HeadKVCache(Cache):
    """A transformers `Cache` of `HeadKVLayer`s, one per layer of the policy."""

    def __init__(self, policy: HeadKVPolicy):
        super().__init__(layers=[HeadKVLayer(policy, layer) for layer in range(policy.n_layers)])
        self.policy = policy

    def stored_bytes(self) -> int:
        """Bytes of keys and values the cache holds now (measured on its tensors)."""
        return sum(layer.stored_bytes() for layer in self.layers)


def headkv_attention(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs
):
    """Attention over a `SplitKV` (full groups causal, streaming groups sink + window); any other
    key goes to transformers' SDPA unchanged."""
    if not isinstance(key, SplitKV):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    if kwargs.get("softcap") is not None:
        raise KVPolicyError(
            "head-aware KV policies do not support attention logit soft-capping yet"
        )
    b, n_heads, q_len, d = query.shape
    n_kv = len(key.full_heads) + len(key.stream_heads)
    grouped = query.view(b, n_kv, n_heads // n_kv, q_len, d)
    out = query.new_empty(b, n_kv, n_heads // n_kv, q_len, value.full.shape[-1])
    # no padding: the fast routes of interp.kv.attention (the same attention, less work)
    unpadded = attention_mask is None and kv_attention.FAST_ROUTES
    prefill, decode = unpadded and q_len == key.total, unpadded and q_len == 1

    full_fast = (prefill and key.full_pos.numel() == key.total) or decode
    stream_fast = prefill and key.stream_pos.numel() == key.total
    general = (key.full_heads and not full_fast) or (key.stream_heads and not stream_fast)
    # the model's mask as booleans [b|1, 1, q, total], built only when a general route runs
    seen = allowed(attention_mask, q_len, key.total, query.device) if general else None
    if key.full_heads:
        out[:, key.full_heads] = attend(
            grouped[:, key.full_heads],
            key.full,
            value.full,
            None if full_fast else seen[..., key.full_pos],
            scaling,
            causal=full_fast and prefill and q_len > 1,
        )
    if key.stream_heads:
        queries, parts = grouped[:, key.stream_heads], (key.sink, key.window)
        if stream_fast:
            out[:, key.stream_heads] = window_prefill(
                queries, key.stream, value.stream, key.stream_pos, *parts, scaling
            )
        else:
            mask = seen[..., key.stream_pos] & near(key.stream_pos, q_len, key.total, *parts)
            out[:, key.stream_heads] = attend(queries, key.stream, value.stream, mask, scaling)
    return out.view(b, n_heads, q_len, -1).transpose(1, 2).contiguous(), None


def _register() -> None:
    AttentionInterface.register(IMPLEMENTATION, headkv_attention)
    AttentionMaskInterface.register(IMPLEMENTATION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def _check_call(
    model, policy, prompt_mask: torch.Tensor, use_cache: bool, backend: Optional[str]
) -> None:
    """Refuse a call the policy cannot serve, naming the fix: no policy at all, another layout,
    no cache, the wrong engine, soft-capped logits, a window over the whole prompt, or a sink
    on a left-padded batch (the sink counts cache slots, so a padded row's would be padding)."""
    if not isinstance(policy, HeadKVPolicy):
        builders: dict[type, str] = {
            dict: "HeadKVPolicy.from_dict(data)",
            str: "HeadKVPolicy.load(path)",
        }
        build = builders.get(type(policy), "interp.kv.policy_from(result, model, budget=...)")
        raise KVPolicyError(
            f"kv_policy must be an interp.kv.HeadKVPolicy, got {type(policy).__name__}; build "
            f"one with {build}"
        )
    policy.check_model(model)
    if not use_cache:
        raise KVPolicyError("a KV policy needs the KV cache: drop use_cache=False")
    if (backend or model.backend) != "nnsight":
        raise KVPolicyError(
            "KV policies run on the nnsight engine (the HF modules' own attention); "
            "pass backend='nnsight'"
        )
    if getattr(model.hf.config, "attn_logit_softcapping", None):
        raise KVPolicyError(
            f"{model.name} soft-caps its attention logits, which head-aware KV policies do "
            "not support yet"
        )
    if len(policy.full) == policy.n_layers * policy.n_kv_heads:
        return  # every kv head whole: nothing streams, nothing is evicted
    prompt_len = prompt_mask.shape[1]
    if policy.sink + policy.window >= prompt_len:
        raise KVPolicyError(
            f"sink {policy.sink} + window {policy.window} cover the whole prompt of "
            f"{prompt_len} tokens: nothing would be evicted; lower the window or use "
            "the full cache"
        )
    if policy.sink and not bool(prompt_mask.all()):
        raise KVPolicyError(
            f"the KV policy's sink of {policy.sink} counts cache slots from the batch's first, so "
            "a left-padded row's sink would be padding and the row would keep other tokens than "
            "it does alone; generate prompts of different lengths one at a time, or in batches "
            "of one length (or give the policy sink=0)"
        )


@contextmanager
def policy_generation(
    model,
    policy: HeadKVPolicy,
    prompt_mask: torch.Tensor,
    *,
    use_cache: bool = True,
    backend: Optional[str] = None,
) -> Iterator[HeadKVCache]:
    """Inside the block the model attends with `headkv_attention`; yields the cache to pass as
    ``past_key_values`` of the first step. `prompt_mask` is the prompts' attention mask
    [batch, positions]. Checks the call first (a `KVPolicyError` names the fix)."""
    _check_call(model, policy, prompt_mask, use_cache, backend)
    _register()
    with attention_implementation(model.hf, IMPLEMENTATION):
        yield HeadKVCache(policy)
