"""The single-head sweep: how much the second copy needs each head alone, exactly or by attribution.

Exactly (``sweep="exact"``), each head is ablated alone and the sequences run again: one
forward per sequence per head, which is what the zoo's models (a few dozen heads, a few
million parameters) afford. On a real model that is H x N forwards (SmolLM2-135M: 270 heads x
96 sequences, over an hour on a 2-core CPU), so ``sweep="attribution"`` estimates every
head's effect from one forward and one backward per batch (attribution patching, Nanda 2023;
Syed et al. 2023), then ablates exactly only the `shortlist` heads whose estimated change is
largest (either sign: a first-order estimate can get the sign of a saturated head wrong):

    delta second-copy loss of ablating head h  ~=  sum over positions of  dL/dz_h . (m_h - z_h)

with m_h the head's mean z ("mean" ablation) or 0 ("zero"). The estimate is first order: it
ranks heads, it does not replace the exact ratio, and the result keeps both (with their
Spearman correlation on the shortlist) so a reader can see how far to trust the ranking.
"uniform" ablation changes attention, not z, and has no such estimate: it is always exact.

    >>> from interp.testing import tiny_model
    >>> from circuits.induction.config import Config, make_sequences
    >>> model = tiny_model("llama")
    >>> seqs = make_sequences(model, Config(n=2, span_lengths=(4, 6), offsets=(0,)))
    >>> est = estimated_single_head_ratios(model, seqs, mode="mean")
    >>> len(est) == model.n_layers * model.n_heads
    True
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from interp.backends.plan import Edit, EditContext, RunPlan
from interp.cost import is_large
from interp.errors import InvalidArgumentError
from interp.interventions import PruneHeads
from interp.progress import track
from interp.stats import spearman

from .scoring import copy_losses, sequence_losses, token_batch

__all__ = [
    "estimated_single_head_ratios",
    "exact_single_head_ratios",
    "single_head_sweep",
    "prune",
    "SWEEPS",
    "resolved_sweep",
]

SWEEPS = ("auto", "exact", "attribution")


def prune(model, heads, mode: str, seqs) -> PruneHeads:
    """`heads` ablated by `mode`: "mean" (each head's mean z over every position of `seqs`,
    cached on the model), "zero" or "uniform" (uniform attention)."""
    if mode == "mean":
        return PruneHeads.with_means(model, heads, seqs.input_ids)
    return PruneHeads(list(model.heads(list(heads))), mode=mode)


def exact_single_head_ratios(
    model, seqs, heads: Sequence[str], *, mode: str, batch_size: int, second: torch.Tensor
) -> dict:
    """{head: second-copy loss with that head alone ablated / clean}; `second`: clean losses [N]."""
    return {
        n: float(
            sequence_losses(model, seqs, prune(model, [n], mode, seqs), batch_size)[1].mean()
            / second.mean()
        )
        for n in track(list(heads), "induction: single-head ablations", unit="head")
    }


def _leaf_plan(n_layers: int, leaves: dict) -> RunPlan:
    """A plan adding a zero leaf to every layer's z, so each leaf's gradient is dL/dz (total
    effect)."""

    def make(layer: int):
        def add_leaf(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
            eps = torch.zeros_like(z, requires_grad=True)
            leaves[layer] = (eps, z.detach())
            return z + eps

        return add_leaf

    return RunPlan([Edit(layer, "z", make(layer)) for layer in range(n_layers)])


def _batch_attribution(
    model, chunk, means: Optional[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """([n_layers, n_heads] summed first-order loss change, [b] clean second-copy losses) of one
    batch."""
    leaves: dict = {}
    ids = chunk.input_ids
    with torch.enable_grad():
        logits = model.run_plan(
            token_batch(ids, model.device), _leaf_plan(model.n_layers, leaves)
        ).logits
        logp = torch.log_softmax(logits[:, :-1].float(), -1)
        nll = -logp.gather(-1, ids[:, 1:, None].to(logp.device))[..., 0]
        _, second = copy_losses(nll.cpu(), chunk)
        layers = sorted(leaves)
        # autograd.grad, not backward: only the leaves' gradients, none on the weights
        grads = torch.autograd.grad(second.sum(), [leaves[layer][0] for layer in layers])
    delta = torch.zeros(model.n_layers, model.n_heads, dtype=torch.float64)
    for layer, grad in zip(layers, grads):
        z = leaves[layer][1]
        target = means[layer].to(z) if means is not None else torch.zeros_like(z)
        delta[layer] = (grad * (target - z)).sum(dim=(0, 1, 3)).double().cpu()
    return delta, second.detach()


def estimated_single_head_ratios(model, seqs, *, mode: str, batch_size: int = 8) -> dict:
    """{head: first-order estimate of its single-ablation second-copy loss ratio}, every head.

    One forward and one backward per batch (small batches: the backward keeps the logits'
    gradient, batch x positions x vocab floats)."""
    if mode not in ("mean", "zero"):
        raise InvalidArgumentError(
            f"attribution estimates need a z ablation ('mean' or 'zero'); {mode!r} "
            f"changes attention: use sweep='exact'"
        )
    means = model.head_means(seqs.input_ids) if mode == "mean" else None
    delta = torch.zeros(model.n_layers, model.n_heads, dtype=torch.float64)
    seconds = []
    for chunk in track(
        list(seqs.batches(batch_size)), "induction: attribution sweep", unit="batch"
    ):
        d, s = _batch_attribution(model, chunk, means)
        delta += d
        seconds.append(s)
    clean = float(torch.cat(seconds).double().mean())
    ratios = (clean + delta / len(seqs)) / clean
    return {h.name: float(ratios[h.layer, h.head]) for h in model.all_heads()}


def resolved_sweep(model, sweep: str) -> str:
    """ "auto" -> "exact" on small models (the zoo), "attribution" on large ones (`is_large`)."""
    if sweep not in SWEEPS:
        raise InvalidArgumentError(f"sweep must be one of {SWEEPS}, got {sweep!r}")
    if sweep != "auto":
        return sweep
    return "attribution" if is_large(model) else "exact"


def single_head_sweep(
    model,
    seqs,
    *,
    mode: str,
    batch_size: int,
    second: torch.Tensor,
    sweep: str = "exact",
    shortlist: int = 12,
    heads: Optional[Sequence] = None,
) -> dict:
    """The sweep over `heads` (default: every head): {"ratios": exact ratios of the heads ablated,
    "method", and with attribution "estimates" (every head), "shortlist" and "spearman" (estimate
    vs exact over the shortlist)}. `second`: the clean second-copy losses [N] of `seqs`."""
    names = [h.name for h in (model.all_heads() if heads is None else model.heads(list(heads)))]
    method = "exact" if mode == "uniform" else resolved_sweep(model, sweep)
    if method == "exact" or len(names) <= shortlist:
        ratios = exact_single_head_ratios(
            model, seqs, names, mode=mode, batch_size=batch_size, second=second
        )
        return {"method": "exact", "ratios": ratios}
    every = estimated_single_head_ratios(model, seqs, mode=mode, batch_size=min(batch_size, 8))
    estimates = {n: every[n] for n in names}
    short = sorted(names, key=lambda n: -abs(estimates[n] - 1))[:shortlist]
    ratios = exact_single_head_ratios(
        model, seqs, short, mode=mode, batch_size=batch_size, second=second
    )
    rho = spearman([estimates[n] for n in short], [ratios[n] for n in short])
    return {
        "method": "attribution",
        "ratios": ratios,
        "estimates": estimates,
        "shortlist": short,
        "spearman": None if rho is None else float(rho),
    }
