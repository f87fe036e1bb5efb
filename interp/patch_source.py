"""What `PatchHeads` does with its source: check its shape against the model, line up each
row's real tokens (interp left-pads, so a short prompt's tokens start after its padding), and
write them into the patched head at the same real positions of the run.

A source row and a run row are matched by real token, not by padded position: patching a
left-padded batch from itself changes nothing, and a short prompt patched into a padded row
gives what it gives alone.
"""

from __future__ import annotations

from typing import Optional

import torch

from .backends.plan import EditContext
from .errors import InterventionError

__all__ = ["check_source", "real_aligned", "patch_fn"]


def check_source(z: torch.Tensor, model, layer: int, mask: Optional[torch.Tensor]) -> None:
    """Refuse a source z that is not [batch, pos, n_heads, d_head] of this model (head-major
    layouts and a d_head of 1 would broadcast in silence), or that holds NaN or inf."""
    expected = f"[batch, pos, {model.n_heads} heads, d_head {model.d_head}]"
    if z.dim() != 4 or z.shape[2] != model.n_heads or z.shape[3] != model.d_head:
        raise InterventionError(
            f"PatchHeads source z of layer {layer} has shape {tuple(z.shape)}; expected "
            f"{expected} (head-major [batch, head, pos, d] must be transposed: "
            "z.transpose(1, 2))"
        )
    if z.is_floating_point() and not bool(torch.isfinite(z).all()):
        raise InterventionError(
            f"PatchHeads source z of layer {layer} holds NaN or inf: patching it would make "
            "every later logit NaN; capture the source again (model.run_with_cache) or check "
            "how it was computed"
        )
    if mask is not None and tuple(mask.shape) != tuple(z.shape[:2]):
        raise InterventionError(
            f"PatchHeads source tokens {tuple(mask.shape)} do not match its z {tuple(z.shape)}"
        )


def real_aligned(
    z: torch.Tensor, mask: Optional[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(z of each row's real tokens moved to the start [b, pos, d], real lengths [b]). Refuses a
    source padded anywhere but on the left."""
    if mask is None:
        return z, torch.full((z.shape[0],), z.shape[1], dtype=torch.long)
    lengths = mask.sum(1)
    pads = z.shape[1] - lengths
    if not bool((mask == (torch.arange(z.shape[1])[None, :] >= pads[:, None])).all()):
        raise InterventionError(
            "PatchHeads source is padded on the right or in the middle; "
            "only left-padded sources can be aligned by real token"
        )
    index = (torch.arange(z.shape[1])[None, :] + pads[:, None]).clamp(max=z.shape[1] - 1)
    return z.gather(1, index[..., None].expand_as(z)), lengths.cpu()


def patch_fn(head: int, source: torch.Tensor, lengths: torch.Tensor):
    def patch(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        batch, q_len = z.shape[:2]
        if source.shape[0] not in (1, batch):
            raise InterventionError(
                f"PatchHeads source has batch {source.shape[0]}, the run has {batch}; "
                "give one source row per run row, or one for all"
            )
        pads = torch.zeros(batch, dtype=torch.long)
        if ctx.key_mask is not None:
            pads = (~ctx.key_mask.bool()).sum(1).cpu()  # interp left-pads: pads come first
        real = (torch.arange(q_len)[None, :] + ctx.q_offset) - pads[:, None]  # [batch, q]
        n_real = lengths.expand(batch) if lengths.numel() == 1 else lengths
        valid = (real >= 0) & (real < n_real[:, None])
        if not bool(valid.any()):
            return z
        rows = (
            torch.arange(batch)[:, None]
            if source.shape[0] == batch
            else torch.zeros(batch, 1, dtype=torch.long)
        )
        values = source[rows, real.clamp(0, source.shape[1] - 1)].to(device=z.device, dtype=z.dtype)
        z = z.clone()
        z[:, :, head] = torch.where(valid[..., None].to(z.device), values, z[:, :, head])
        return z

    return patch
