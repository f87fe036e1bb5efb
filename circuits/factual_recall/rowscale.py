"""Per-row value scaling: one batched forward (or generation) tries many alphas, or many heads.

`RowScaleValues` scales head outputs z (linear in the head's values, so this equals scaling the
value vectors, also under GQA) by a different factor in every batch row.

    >>> import torch
    >>> from interp.heads import Head
    >>> s = head_scales(2, 3, rows=4, head=Head(1, 2), alphas=[0.0, 1.0, 2.0, 3.0])
    >>> s[:, 1, 2].tolist(), float(s[:, 0].sum())
    ([0.0, 1.0, 2.0, 3.0], 12.0)
"""

from __future__ import annotations

import torch

from interp.backends.plan import Edit, EditContext
from interp.errors import ArgumentTypeError, InvalidArgumentError
from interp.heads import Head
from interp.interventions import Intervention

__all__ = ["RowScaleValues", "head_scales"]


class RowScaleValues(Intervention):
    """Scale head outputs z (= value vectors) by a different factor in every batch row.

    scales: [rows, n_layers, n_heads]; row r multiplies head (l, h) by scales[r, l, h]. It lets
    one batched forward (or generation) try many alphas, or many heads, at once. Not
    serialisable: the recipe a sweep finds is saved as a plain `ScaleValues`.
    """

    def __init__(self, scales: torch.Tensor):
        scales = torch.as_tensor(scales, dtype=torch.float32)
        if scales.dim() != 3:
            raise InvalidArgumentError(
                f"scales must be [rows, n_layers, n_heads], got shape {tuple(scales.shape)}"
            )
        if not bool(torch.isfinite(scales).all()):
            raise InvalidArgumentError("scales must be finite numbers (no NaN/inf)")
        self.scales = scales

    def edits(self, model) -> list[Edit]:
        if tuple(self.scales.shape[1:]) != (model.n_layers, model.n_heads):
            raise InvalidArgumentError(
                f"scales must be [rows, {model.n_layers}, {model.n_heads}] for this model, "
                f"got {tuple(self.scales.shape)}"
            )
        layers = [l for l in range(model.n_layers) if bool((self.scales[:, l] != 1).any())]
        return [Edit(l, "z", _row_scale_edit(self.scales[:, l])) for l in layers]

    def to_dict(self) -> dict:
        raise ArgumentTypeError(
            "RowScaleValues is a batched sweep device; save the chosen setting as ScaleValues"
        )


def _row_scale_edit(scale: torch.Tensor):
    def edit(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        if z.shape[0] != scale.shape[0]:
            raise InvalidArgumentError(
                f"RowScaleValues has {scale.shape[0]} rows, the batch has {z.shape[0]}"
            )
        return z * scale.to(device=z.device, dtype=z.dtype)[:, None, :, None]

    return edit


def head_scales(n_layers: int, n_heads: int, rows: int, head: Head, alphas) -> torch.Tensor:
    """[rows, n_layers, n_heads] ones, with `head`'s column set to `alphas` (one per row)."""
    scales = torch.ones(rows, n_layers, n_heads)
    scales[:, head.layer, head.head] = torch.as_tensor(alphas, dtype=torch.float32)
    return scales
