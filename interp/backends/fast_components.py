"""Per-call bookkeeping of TransformerBridge components, skipped where it cannot matter.

transformer-lens 4.3 does three things on every call of every bridge component that cost
time in a generation loop (thousands of small calls) and change nothing for a model whose
weights all sit on one device:

- ``GeneralizedComponent.__call__`` enters Accelerate's ``align_module_device`` around the
  wrapped module, which materialises CPU/disk-offloaded weights (a no-op without offload,
  but a context manager and an offload probe per call);
- ``BlockBridge`` runs ``inspect.signature`` on the wrapped layer's ``forward`` to filter
  its keyword arguments (the signature never changes between calls);
- the normalization bridges compute the norm's scale a second time, outside the Hugging Face
  module, so that ``hook_scale`` / ``hook_normalized`` could fire, and then return the Hugging
  Face module's own output anyway.

`install(bridge)` gives every component a subclass of its own class that drops the first
when no parameter of the model is offloaded (checked once, at install), caches the second
per wrapped layer, and calls the Hugging Face norm directly while neither norm hook point
has a hook. Outputs are the same tensors as before (the bench and tests compare them);
any hook on a norm's scale or normalized value takes transformer-lens's own route.

A bridge also calls a hundred-odd `HookPoint` modules per forward pass, each an identity
function reached through `nn.Module.__call__`'s hook dispatch. Their fast subclass returns its
input at once when neither the hook point nor torch's global registries hold a hook, and goes
through `nn.Module.__call__` (so every hook fires) otherwise.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from accelerate.utils import has_offloaded_params
from torch.nn.modules import module as _torch_module
from transformer_lens.hook_points import HookPoint
from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent
from transformer_lens.model_bridge.generalized_components.block import BlockBridge
from transformer_lens.model_bridge.generalized_components.normalization import NormalizationBridge

__all__ = ["install"]

_FAST: dict[type, type] = {}


def install(bridge) -> int:
    """Swap each bridge component's class for its fast subclass; returns how many.

    Nothing is swapped when Accelerate has offloaded any weight of the model (then the
    per-call materialisation is needed)."""
    if any(has_offloaded_params(m) for m in bridge.original_model.modules()):
        return 0
    n = 0
    for module in bridge.modules():
        if type(module) in _FAST.values():
            continue
        if isinstance(module, GeneralizedComponent):
            module.__class__ = _fast_class(type(module))
            n += 1
        elif type(module) is HookPoint:
            module.__class__ = FastHookPoint
    return n


def _fast_class(cls: type) -> type:
    fast = _FAST.get(cls)
    if fast is None:
        body = {
            "__call__": torch.nn.Module.__call__,
            "__module__": cls.__module__,
            "__doc__": cls.__doc__,
        }
        if issubclass(cls, BlockBridge):
            body["_filter_kwargs_for_forward"] = _filter_kwargs_cached
        if issubclass(cls, NormalizationBridge):
            body["_hf_autograd_forward_with_hooks"] = _norm_direct_unless_hooked
        fast = _FAST[cls] = type(cls.__name__, (cls,), body)
    return fast


def _any_hook(m: torch.nn.Module) -> bool:
    return bool(
        m._forward_hooks
        or m._forward_pre_hooks
        or m._backward_hooks
        or m._backward_pre_hooks
        or _torch_module._global_forward_hooks
        or _torch_module._global_forward_pre_hooks
        or _torch_module._global_backward_hooks
        or _torch_module._global_backward_pre_hooks
    )


class FastHookPoint(HookPoint):
    """A `HookPoint` that skips `nn.Module.__call__`'s dispatch while nothing is hooked."""

    def __call__(self, *args, **kwargs):
        if _any_hook(self) or self._compiled_call_impl is not None:
            return torch.nn.Module.__call__(self, *args, **kwargs)
        return self.forward(*args, **kwargs)


_FAST[HookPoint] = FastHookPoint


def _filter_kwargs_cached(self, kwargs: dict, num_positional_args: int = 0) -> dict:
    """BlockBridge's keyword filter with the wrapped forward's signature read once."""
    wrapped = self.original_component
    if wrapped is None:
        return kwargs
    cached = self.__dict__.get("_interp_signature")
    if cached is None or cached[0] is not wrapped:
        try:
            params = inspect.signature(wrapped.forward).parameters
        except (ValueError, TypeError):
            params = None
        cached = (
            wrapped,
            None if params is None else list(params),
            params is None or any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()),
        )
        self.__dict__["_interp_signature"] = cached
    _, names, passes_all = cached
    if passes_all:
        return kwargs
    positional = set(names[:num_positional_args])
    return {k: v for k, v in kwargs.items() if k in names and k not in positional}


def _norm_direct_unless_hooked(self, x: torch.Tensor) -> torch.Tensor:
    """The Hugging Face norm itself while no hook watches its scale or normalized value."""
    if not (
        self.hook_scale.fwd_hooks
        or self.hook_scale.bwd_hooks
        or self.hook_normalized.fwd_hooks
        or self.hook_normalized.bwd_hooks
    ):
        wrapped = self.original_component
        if not isinstance(wrapped, torch.nn.Identity):
            out = wrapped(x)
            return out if out.dtype == x.dtype else out.to(x.dtype)
    replaced: Any = type(self).__mro__[1]  # the class this forward replaced
    return replaced._hf_autograd_forward_with_hooks(self, x)
