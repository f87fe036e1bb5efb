"""Retrieval heads at inference: head-aware KV-cache compression.

- `interp.kv.policy`: `HeadKVPolicy` (which kv heads keep the whole context; sink + window for the
  rest), built from a retrieval result (`policy_from`), at random (`random_policy`), in layer
  order with no scores (`layer_order_policy`, a control), for all heads (`streaming_policy`) or
  none (`full_policy`); JSON round trip.
- `interp.kv.cache`: the cache that keeps only that (`HeadKVCache`) and the attention that reads it;
  ``model.generate(prompt, kv_policy=policy)`` uses both.
"""

from .cache import HeadKVCache, KVPolicyError, policy_generation
from .policy import (
    GROUPINGS,
    TIES,
    HeadKVPolicy,
    KVPolicyWarning,
    PolicyLayoutError,
    full_policy,
    kv_head_scores,
    layer_order_policy,
    policy_from,
    random_policy,
    streaming_policy,
)

__all__ = [
    "HeadKVPolicy",
    "HeadKVCache",
    "KVPolicyError",
    "KVPolicyWarning",
    "PolicyLayoutError",
    "GROUPINGS",
    "policy_from",
    "random_policy",
    "layer_order_policy",
    "TIES",
    "streaming_policy",
    "full_policy",
    "kv_head_scores",
    "policy_generation",
]
