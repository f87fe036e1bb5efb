"""Desiderata-based component masking (DCM; Prakash et al. 2024, after Davies et al. 2023).

Which heads carry a given piece of information? Build base/source pairs that differ only in
that information, each with the token the model should say if the information were taken from
the source (a *desideratum*). Learn a mask m_h in [0, 1] per candidate head, starting at 1:

    z_h(patched) = m_h * z_h(base run) + (1 - m_h) * z_h(source run)     (at the chosen positions)
    loss = -mean target logit + lambda * sum_h (1 - m_h)

Adam (lr 0.1) for 2 epochs, masks clamped to [0, 1] after each step, then rounded; heads with
m = 0 are the ones selected (patched). The pairs are split train / validation / test
(50/25/25): the validation split picks the best rounded mask among the epochs, the test split
gives the reported accuracy (patched argmax == target).

    >>> from interp.testing import tiny_model                                    # doctest: +SKIP
    >>> res = dcm(model, pairs.base.prompts, pairs.source.prompts, pairs.target_ids,
    ...           positions=pairs.base.last_pos, desideratum="positional")        # doctest: +SKIP
    >>> res.heads, res.test_accuracy                                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch

from .backends.plan import Edit, EditContext, RunPlan
from .errors import InvalidArgumentError
from .heads import Head
from .tokens import Tokens

__all__ = ["DCMResult", "dcm", "masked_logits", "mask_plan"]


@dataclass(frozen=True)
class DCMResult:
    """Selected heads (mask 0) for one desideratum, with the accuracies that justify them."""

    desideratum: str
    heads: tuple[Head, ...]
    candidates: tuple[Head, ...]
    mask: tuple[float, ...]  # rounded, one per candidate
    test_accuracy: float  # patched with the selected heads: argmax == target
    val_accuracy: float
    all_patched_accuracy: float  # every candidate patched (mask 0), test split
    unpatched_accuracy: float  # nothing patched (mask 1), test split
    split: tuple[int, int, int]
    model: str
    params: dict = field(default_factory=dict)
    history: tuple[float, ...] = ()  # mean training loss per epoch

    def to_dict(self) -> dict:
        return {
            "desideratum": self.desideratum,
            "heads": [str(h) for h in self.heads],
            "candidates": [str(h) for h in self.candidates],
            "mask": list(self.mask),
            "test_accuracy": self.test_accuracy,
            "val_accuracy": self.val_accuracy,
            "all_patched_accuracy": self.all_patched_accuracy,
            "unpatched_accuracy": self.unpatched_accuracy,
            "split": list(self.split),
            "model": self.model,
            "params": self.params,
            "history": list(self.history),
        }


def _source_z(model, tokens: Tokens, layers, backend) -> dict[int, torch.Tensor]:
    plan = RunPlan(model.edits(None, True), capture=[(l, "z") for l in layers])
    with torch.no_grad():
        model.run_plan(tokens, plan, backend=backend)
    return {layer: t for (layer, _), t in plan.captured().items()}


def _mask_fn(
    heads: list[int],
    index: list[int],
    mask: torch.Tensor,
    source: torch.Tensor,
    positions: Optional[torch.Tensor],
):
    """Blend the listed heads of z with `source` by mask[index] (grad flows into `mask`)."""

    def blend(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        m = mask[index].to(device=z.device, dtype=z.dtype)
        keep = torch.ones(z.shape[2], dtype=z.dtype, device=z.device)
        keep = keep.index_put((torch.tensor(heads, device=z.device),), m)  # [H], 1 for other heads
        src = source.to(device=z.device, dtype=z.dtype)
        if positions is None:
            return keep[None, None, :, None] * z + (1 - keep)[None, None, :, None] * src
        at = torch.zeros(z.shape[:2], dtype=z.dtype, device=z.device)
        at[torch.arange(z.shape[0], device=z.device), positions.to(z.device)] = 1
        w = 1 - at[:, :, None, None] * (1 - keep)[None, None, :, None]  # weight of the base run
        return w * z + (1 - w) * src

    return blend


def mask_plan(model, candidates, mask, source_z: dict, positions=None) -> RunPlan:
    """A run plan that blends each candidate head's z with `source_z[layer]` by its mask entry:
    z = m * z + (1 - m) * source (at `positions`, one per row, or everywhere). `source_z[layer]`
    is [batch, pos, n_heads, d_head] or anything that broadcasts to it (e.g. [1, 1, H, d] means)."""
    edits = []
    for layer in sorted({h.layer for h in candidates}):
        index = [i for i, h in enumerate(candidates) if h.layer == layer]
        heads = [candidates[i].head for i in index]
        edits.append(Edit(layer, "z", _mask_fn(heads, index, mask, source_z[layer], positions)))
    return RunPlan(model.edits(None, True) + edits)


def masked_logits(
    model,
    base: Tokens,
    source: Tokens,
    candidates,
    mask: torch.Tensor,
    positions: Optional[torch.Tensor] = None,
    backend=None,
) -> torch.Tensor:
    """Last-position logits [batch, vocab] of `base` with candidates blended by `mask`.

    Differentiable in `mask` when called under ``torch.enable_grad()``.
    """
    layers = sorted({h.layer for h in candidates})
    source_z = _source_z(model, source, layers, backend)
    plan = mask_plan(model, list(candidates), mask, source_z, positions)
    return model.run_plan(base, plan, backend=backend).logits[:, -1]


def _rows(tokens: Tokens, index) -> Tokens:
    return Tokens(tokens.input_ids[index], tokens.attention_mask[index])


def _split(n: int, fractions, seed: int):
    if n < 4:
        raise InvalidArgumentError(f"DCM needs at least 4 pairs to split train/val/test, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_train = max(1, int(round(fractions[0] * n)))
    n_val = max(1, int(round(fractions[1] * n)))
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


def _accuracy(
    model, base, source, targets, candidates, mask, positions, index, batch_size, backend
) -> float:
    hits = 0
    for start in range(0, len(index), batch_size):
        rows = index[start : start + batch_size]
        with torch.no_grad():
            logits = masked_logits(
                model,
                _rows(base, rows),
                _rows(source, rows),
                candidates,
                mask,
                None if positions is None else positions[rows],
                backend,
            )
        hits += int((logits.argmax(-1) == targets[rows].to(logits.device)).sum())
    return hits / max(1, len(index))


def _epoch(
    model,
    base,
    source,
    targets,
    candidates,
    mask,
    opt,
    positions,
    index,
    lam,
    batch_size,
    backend,
    seed,
) -> float:
    order = index[torch.randperm(len(index), generator=torch.Generator().manual_seed(seed))]
    losses = []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        with torch.enable_grad():
            logits = masked_logits(
                model,
                _rows(base, rows),
                _rows(source, rows),
                candidates,
                mask,
                None if positions is None else positions[rows],
                backend,
            )
            target_logit = logits.gather(1, targets[rows].to(logits.device)[:, None]).mean()
            loss = -target_logit + lam * (1 - mask).sum()
            (grad,) = torch.autograd.grad(loss, [mask])
        mask.grad = grad
        opt.step()
        with torch.no_grad():
            mask.clamp_(0.0, 1.0)
        losses.append(float(loss.detach()))
    return sum(losses) / max(1, len(losses))


def dcm(
    model,
    base,
    source,
    target_ids,
    *,
    heads=None,
    positions=None,
    desideratum: str = "",
    lam: float = 0.01,
    lr: float = 0.1,
    epochs: int = 2,
    batch_size: int = 32,
    split: Sequence[float] = (0.5, 0.25, 0.25),
    seed: int = 0,
    backend=None,
) -> DCMResult:
    """Learn which of `heads` (default all) must carry the source's information to hit the targets.

    base, source: equal-length prompts (or Tokens), one pair per row; target_ids: [n] token
    ids; positions: None to patch every position, else one position per pair (e.g. the last).
    """
    base_t, source_t = model.to_tokens(base), model.to_tokens(source)
    if base_t.input_ids.shape != source_t.input_ids.shape:
        raise InvalidArgumentError(
            f"base and source must tokenize to the same shape, got "
            f"{tuple(base_t.input_ids.shape)} and {tuple(source_t.input_ids.shape)}"
        )
    n = len(base_t)
    targets = torch.as_tensor(target_ids).long()
    if targets.shape != (n,):
        raise InvalidArgumentError(
            f"target_ids must hold one token id per pair ({n}), got shape {tuple(targets.shape)}"
        )
    pos = None if positions is None else torch.as_tensor(positions).long()
    if pos is not None and pos.shape != (n,):
        raise InvalidArgumentError(
            f"positions must hold one index per pair ({n}), got shape {tuple(pos.shape)}"
        )
    candidates = list(model.all_heads() if heads is None else model.heads(heads))
    if not candidates:
        raise InvalidArgumentError("DCM needs at least one candidate head")
    train, val, test = _split(n, split, seed)
    mask = torch.ones(len(candidates), requires_grad=True)
    opt = torch.optim.Adam([mask], lr=lr)
    args = (model, base_t, source_t, targets, candidates)
    best, best_val, history = None, -1.0, []
    for epoch in range(epochs):
        history.append(_epoch(*args, mask, opt, pos, train, lam, batch_size, backend, seed + epoch))
        rounded = (mask.detach() >= 0.5).float()
        val_acc = _accuracy(*args, rounded, pos, val, batch_size, backend)
        if val_acc > best_val:
            best, best_val = rounded, val_acc
    test_acc = _accuracy(*args, best, pos, test, batch_size, backend)
    all_acc = _accuracy(*args, torch.zeros(len(candidates)), pos, test, batch_size, backend)
    none_acc = _accuracy(*args, torch.ones(len(candidates)), pos, test, batch_size, backend)
    selected = tuple(h for h, m in zip(candidates, best.tolist()) if m == 0)
    return DCMResult(
        desideratum,
        selected,
        tuple(candidates),
        tuple(best.tolist()),
        test_acc,
        best_val,
        all_acc,
        none_acc,
        (len(train), len(val), len(test)),
        model.name,
        {
            "lambda": lam,
            "lr": lr,
            "epochs": epochs,
            "batch_size": batch_size,
            "seed": seed,
            "positions": "all" if pos is None else "given",
        },
        tuple(history),
    )
