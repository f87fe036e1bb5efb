"""Fused attention inside the TransformerBridge when no hook needs the attention pattern.

transformer-lens 4.3 recomputes rotary attention step by step (matmul, mask, softmax,
matmul) so that ``hook_attn_scores`` and ``hook_pattern`` can fire, whatever attention
implementation the Hugging Face config names. That costs about a quarter of a forward pass of
a small Llama on a CPU, also in the many runs where no hook reads or edits the pattern.

`install(bridge)` gives each such attention component a second route: when none of the hook
points that only the step-by-step route fires has a hook (and the component is in eval mode
with no split-input / per-head-result options), the component calls the wrapped Hugging Face
attention module itself. That module runs its configured kernel (SDPA by default) and still
calls the bridge's q / k / v / o linear components, so ``hook_q``, ``hook_k``, ``hook_v`` and
``hook_z`` fire on the same tensors as before; ``hook_in`` and ``hook_out`` are fired around it.
Any hook on the pattern, the scores, the rotated q / k or the rotary tables sends the call
down the original route, so what a user hooks always fires.

Only attention classes whose Hugging Face forward is the plain rotary-GQA one get the route
(`FUSED_CLASSES`); every other architecture keeps transformer-lens's behaviour untouched.
"""

from __future__ import annotations

import torch

__all__ = ["FUSED_CLASSES", "STEP_BY_STEP_HOOKS", "install", "uses_fused_route"]

FUSED_CLASSES = ("LlamaAttention", "Qwen2Attention", "MistralAttention")

# hook points fired only by the step-by-step route
STEP_BY_STEP_HOOKS = (
    "hook_attn_scores",
    "hook_pattern",
    "hook_rot_q",
    "hook_rot_k",
    "hook_cos",
    "hook_sin",
    "hook_hidden_states",
    "hook_result",
    "hook_attn_in",
    "hook_q_input",
    "hook_k_input",
    "hook_v_input",
    "hook_q_normed",
    "hook_k_normed",
)
_SPLIT_OPTIONS = ("use_split_qkv_input", "use_attn_in", "use_attn_result", "gated_q_proj")


def _hooked(module: torch.nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks)


def uses_fused_route(attn) -> bool:
    """Would the next call of this attention component take the fused route?"""
    if not getattr(attn, "_interp_fused", False) or attn.training:
        return False
    if any(getattr(attn.config, opt, False) for opt in _SPLIT_OPTIONS):
        return False
    return not any(_hooked(hp) for hp in attn._interp_step_hooks)


def _fused_call(attn, args: tuple, kwargs: dict):
    if "hidden_states" in kwargs:
        kwargs["hidden_states"] = attn.hook_in(kwargs["hidden_states"])
    else:
        args = (attn.hook_in(args[0]),) + tuple(args[1:])
    kwargs.pop("output_attentions", None)
    out = attn.original_component(*args, **kwargs)
    return (attn.hook_out(out[0]),) + tuple(out[1:])


def install(bridge) -> int:
    """Give every eligible attention component of `bridge` the fused route; returns how many."""
    n = 0
    for block in getattr(bridge, "blocks", []):
        attn = getattr(block, "attn", None)
        hf_attn = getattr(attn, "original_component", None)
        if (
            attn is None
            or type(hf_attn).__name__ not in FUSED_CLASSES
            or getattr(attn, "_interp_fused", False)
        ):
            continue
        step_by_step = attn.forward

        def forward(*args, _attn=attn, _step_by_step=step_by_step, **kwargs):
            if uses_fused_route(_attn):
                return _fused_call(_attn, args, kwargs)
            return _step_by_step(*args, **kwargs)

        # plain object attributes: bridge components route attribute writes to the wrapped module.
        # The hook points are fixed modules (hooks come and go on them), so look them up once.
        object.__setattr__(
            attn,
            "_interp_step_hooks",
            tuple(
                hp for name in STEP_BY_STEP_HOOKS if (hp := getattr(attn, name, None)) is not None
            ),
        )
        object.__setattr__(attn, "forward", forward)
        object.__setattr__(attn, "_interp_fused", True)
        n += 1
    return n
