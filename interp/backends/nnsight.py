"""The nnsight engine: an `NNsight` envoy over the Hugging Face module itself.

nnsight runs the model's own forward and lets a trace read and overwrite module inputs and
outputs in execution order. Head sites map onto the projections around attention:
q/k/v are the outputs of the q/k/v projections (split per head, or out of a fused
projection), z is the input of the output projection, and the pattern is the output of the
`interp_pattern` site that `interp.backends.attention` installs (used only when a call needs it).
Nothing persists after a trace: there are no hooks to forget.
"""

from __future__ import annotations

from functools import cached_property

import torch
from nnsight import NNsight

from ..arch import merge_qkv, split_qkv
from .attention import install_pattern_sites, pattern_attention
from .plan import EditContext, LayerPlan, RunPlan

__all__ = ["NNsightBackend"]


class NNsightBackend:
    name = "nnsight"

    def __init__(self, model):
        self.model = model

    @cached_property
    def envoy(self):
        install_pattern_sites(self.model.attention_modules())
        return NNsight(self.model.hf)

    @property
    def module(self) -> torch.nn.Module:
        return self.model.hf

    def run(self, plan: RunPlan, ctx: EditContext, **hf_kwargs):
        if plan.is_empty:
            return self.model.hf(**hf_kwargs)
        envoy = self.envoy
        with pattern_attention(self.model.hf, plan.needs_pattern):
            with envoy.trace(**hf_kwargs):
                for layer in sorted(plan.layers):
                    self._visit_layer(plan.layers[layer], ctx)
                output = envoy.output.save()
        return output

    def _layer_envoy(self, layer: int):
        spec = self.model.spec
        envoy = self.envoy
        for part in spec.layers.split("."):
            envoy = getattr(envoy, part)
        return getattr(envoy[layer], spec.attn)

    def _visit_layer(self, plan: LayerPlan, ctx: EditContext) -> None:
        spec, m = self.model.spec, self.model
        attn = self._layer_envoy(plan.layer)
        if any(plan.wants(s) for s in ("q", "k", "v")):
            if spec.qkv_layout == "separate":
                for site, name, n in zip("qkv", spec.qkv, (m.n_heads, m.n_kv_heads, m.n_kv_heads)):
                    if plan.wants(site):
                        proj = getattr(attn, name)
                        out = proj.output
                        head_view = out.reshape(*out.shape[:2], n, m.d_head)
                        proj.output = plan.visit(site, head_view, ctx).reshape(out.shape)
            else:
                proj = getattr(attn, spec.qkv[0])
                q, k, v = split_qkv(spec, proj.output, m.n_heads, m.n_kv_heads, m.d_head)
                q, k, v = (plan.visit(s, t, ctx) for s, t in zip("qkv", (q, k, v)))
                proj.output = merge_qkv(spec, q, k, v)
        if plan.wants("pattern"):
            attn.interp_pattern.output = plan.visit("pattern", attn.interp_pattern.output, ctx)
        out_proj = getattr(attn, spec.out)
        if plan.wants("z"):
            z_flat = out_proj.input
            z = z_flat.reshape(*z_flat.shape[:2], m.n_heads, m.d_head)
            out_proj.input = plan.visit("z", z, ctx).reshape(z_flat.shape)
        if plan.wants("out"):
            out_proj.output = plan.visit_out(out_proj.output)
