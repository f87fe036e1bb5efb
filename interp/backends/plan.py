"""What happens at each head site during one forward pass, whatever the engine.

An analyzer or an intervention asks for two things: *edits* (functions that rewrite a site's
tensor) and *captures* (sites whose values to keep). `RunPlan` holds both, grouped per layer.
Each backend finds the sites in its own way (transformer-lens hook points, nnsight envoys) and
hands every tensor, in the canonical layout of `interp.arch`, to `LayerPlan.visit`. So the
logic of editing and capturing lives here once, and the two engines give the same numbers.

The head's contribution to the residual stream (``result``) is not a tensor either engine
computes; it is derived from z and W_O. Writing it is done by adding the difference
(new - old, summed over heads) to the attention output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import torch

from ..errors import InvalidArgumentError

__all__ = ["Edit", "EditContext", "RunPlan", "LayerPlan"]

EditFn = Callable[[torch.Tensor, "EditContext"], torch.Tensor]


@dataclass(frozen=True)
class Edit:
    """Rewrite site `site` of layer `layer` with `fn(tensor, ctx) -> tensor` (same shape)."""

    layer: int
    site: str
    fn: EditFn


@dataclass
class EditContext:
    """What an edit may need to know about the current call.

    key_mask: [batch, k_len] bool, True where a key position holds a real token (not padding).
    q_offset: position of this call's first query in the whole sequence (cached tokens before it).
    """

    key_mask: Optional[torch.Tensor]
    q_offset: int = 0

    def causal_key_mask(self, q_len: int, k_len: int, device) -> torch.Tensor:
        """[batch or 1, 1, q_len, k_len] bool: the keys each query may attend to."""
        q_pos = torch.arange(q_len, device=device)[:, None] + self.q_offset
        k_pos = torch.arange(k_len, device=device)[None, :]
        allowed = (k_pos <= q_pos)[None, None]
        if self.key_mask is not None:
            allowed = allowed & self.key_mask[:, None, None, :k_len].bool()
        return allowed


@dataclass
class LayerPlan:
    layer: int
    edits: dict[str, list[EditFn]] = field(default_factory=dict)
    capture: set[str] = field(default_factory=set)
    w_out: Optional[torch.Tensor] = None  # [n_heads, d_head, d_model], needed for `result`
    captured: dict[str, torch.Tensor] = field(default_factory=dict)
    _out_delta: Optional[torch.Tensor] = None

    def wants(self, site: str) -> bool:
        if site == "z":
            return bool(self.edits.get("z") or "z" in self.capture or self.wants_result)
        if site == "out":
            return bool(self.edits.get("result"))
        return bool(self.edits.get(site)) or site in self.capture

    @property
    def wants_result(self) -> bool:
        return bool(self.edits.get("result")) or "result" in self.capture

    def visit(self, site: str, tensor: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        """Apply this layer's edits at `site` and capture it; return the tensor to use."""
        for fn in self.edits.get(site, ()):
            tensor = fn(tensor, ctx)
        if site in self.capture:
            self.captured[site] = tensor.detach()
        if site == "z" and self.wants_result:
            self._visit_result(tensor, ctx)
        return tensor

    def _visit_result(self, z: torch.Tensor, ctx: EditContext) -> None:
        w_out = self.w_out.to(z.dtype)
        result = torch.einsum("bphd,hdm->bphm", z, w_out)
        edited = result
        for fn in self.edits.get("result", ()):
            edited = fn(edited, ctx)
        if self.edits.get("result"):
            self._out_delta = (edited - result).sum(dim=2)
        if "result" in self.capture:
            self.captured["result"] = edited.detach()

    def visit_out(self, out: torch.Tensor) -> torch.Tensor:
        """Add the change made at `result` to the attention output [batch, pos, d_model]."""
        delta, self._out_delta = self._out_delta, None
        return out if delta is None else out + delta.to(out.dtype)


class RunPlan:
    """Edits and captures for one forward pass, grouped by layer."""

    def __init__(
        self,
        edits: Iterable[Edit] = (),
        capture: Iterable[tuple[int, str]] = (),
        w_out: Optional[Callable[[int], torch.Tensor]] = None,
    ):
        self.layers: dict[int, LayerPlan] = {}
        for edit in edits:
            self._layer(edit.layer).edits.setdefault(edit.site, []).append(edit.fn)
        for layer, site in capture:
            self._layer(layer).capture.add(site)
        for plan in self.layers.values():
            if plan.wants_result:
                if w_out is None:
                    raise InvalidArgumentError("the 'result' site needs the model's output weights")
                plan.w_out = w_out(plan.layer)

    def _layer(self, layer: int) -> LayerPlan:
        if layer not in self.layers:
            self.layers[layer] = LayerPlan(layer)
        return self.layers[layer]

    @property
    def needs_pattern(self) -> bool:
        return any(plan.wants("pattern") for plan in self.layers.values())

    @property
    def is_empty(self) -> bool:
        return not self.layers

    def captured(self) -> dict[tuple[int, str], torch.Tensor]:
        return {
            (layer, site): t
            for layer, plan in sorted(self.layers.items())
            for site, t in plan.captured.items()
        }
