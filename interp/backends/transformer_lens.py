"""The transformer-lens 4 engine: a `TransformerBridge` over the model's own weights.

Building a bridge rewires the module it is given (its attention layers become bridge
components). So the bridge is built on a structural copy of the Hugging Face module whose
parameters and buffers are the very same tensors: no memory is doubled, and the user's
module (`Model.hf`, which the nnsight engine wraps) is left as it was.

Every head site maps to one hook point; hooks live only for the duration of one call and are
removed on exit, also when the call raises. The hook points are looked up once by name and
hooks are added to them directly (what `TransformerBridge.hooks` does, without rebuilding
its alias table on every call: a generation loop makes one call per token).
"""

from __future__ import annotations

import copy
import logging
from functools import cached_property

import torch

from . import fast_components, fused_attention
from .plan import EditContext, RunPlan

__all__ = ["TransformerLensBackend"]

_HOOKS = {site: f"attn.hook_{site}" for site in ("q", "k", "v", "pattern", "z")}


def share_weights_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of `module`'s structure whose parameters and buffers are the originals.

    The copy carries none of the original's torch hooks: a hook a user (or a meter) put on the
    HF module must not live on in the bridge, where nothing would ever remove it."""
    memo = {id(t): t for t in list(module.parameters()) + list(module.buffers())}
    clone = copy.deepcopy(module, memo)
    for sub in clone.modules():
        for hooks in (
            sub._forward_hooks,
            sub._forward_pre_hooks,
            sub._backward_hooks,
            sub._backward_pre_hooks,
        ):
            hooks.clear()
    return clone


class TransformerLensBackend:
    name = "transformer_lens"

    def __init__(self, model):
        self.model = model
        self._hook_points: dict = {}  # hook name -> HookPoint, filled on first use

    @cached_property
    def bridge(self):
        # lazy: transformer-lens takes seconds to import; only the first bridge run needs it
        from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module

        module = share_weights_copy(self.model.hf)
        quiet = logging.getLogger("transformer_lens")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            bridge = build_bridge_from_module(
                module,
                self.model.architecture,
                hf_config=module.config,
                model_name=self.model.name,
            )
        finally:
            quiet.setLevel(level)
        fused_attention.install(bridge)  # SDPA whenever no hook needs the pattern
        fast_components.install(bridge)  # no per-call offload probe / signature read / second norm
        return bridge

    def hook_point(self, name: str):
        """The bridge's `HookPoint` called `name` (aliases resolved), looked up once."""
        hp = self._hook_points.get(name)
        if hp is None:
            hp = self._hook_points[name] = self.bridge.hook_dict[name]
        return hp

    @property
    def module(self) -> torch.nn.Module:
        """The bridged Hugging Face module: HF calling convention, TL hooks inside."""
        return self.bridge.original_model

    def hook_name(self, layer: int, site: str) -> str:
        if site == "out":  # the output projection's own output: before any post-attention norm
            return f"blocks.{layer}.attn.o.hook_out"
        return f"blocks.{layer}.{_HOOKS[site]}"

    def run(self, plan: RunPlan, ctx: EditContext, **hf_kwargs):
        hooks = []
        for layer, layer_plan in plan.layers.items():
            for site in _HOOKS:
                if layer_plan.wants(site):
                    hooks.append((self.hook_name(layer, site), _site_hook(layer_plan, site, ctx)))
            if layer_plan.wants("out"):
                hooks.append((self.hook_name(layer, "out"), _out_hook(layer_plan)))
        if not hooks:
            return self.module(**hf_kwargs)
        added = []
        try:
            for name, fn in hooks:
                hp = self.hook_point(name)
                added.append((hp, hp.add_hook(fn, dir="fwd")))
            return self.module(**hf_kwargs)
        finally:
            for hp, handle in added:
                handle.hook.remove()
                hp.fwd_hooks[:] = [h for h in hp.fwd_hooks if h is not handle]


def _site_hook(layer_plan, site, ctx):
    def hook(tensor, hook=None):
        return layer_plan.visit(site, tensor, ctx)

    return hook


def _out_hook(layer_plan):
    def hook(tensor, hook=None):
        return layer_plan.visit_out(tensor)

    return hook
