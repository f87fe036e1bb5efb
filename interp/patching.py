"""Activation patching, exact path patching and attribution patching over heads.

All three answer "how much does head h matter for a metric when the input changes from
`base` to `source`?", with different precision and cost:

- activation patching: run `base`, replace h's output z by its value on `source`, let
  everything downstream recompute. One forward per head (batched: many heads per forward).
- path patching: as above, but every *other* head is frozen at its base-run value, so the
  change reaches the receivers only along the direct path through the residual stream (MLPs
  recompute; ``freeze_mlps`` is not offered, as in Wang et al. 2022). Receivers are the logits,
  or chosen heads' q / k / v inputs (two steps: the receivers' inputs are computed under the
  patched path, then patched into a clean base run). Batched: each batch row patches a
  different sender, so an all-heads sweep costs about n_heads_total * n_prompts / batch_size
  forwards.
- attribution patching: a first-order estimate from one forward and one backward pass:
  effect_h ~= grad_z_h(metric) . (z_h(source) - z_h(base)). With ``path=True`` the gradient
  is taken with every head's z detached from its inputs, so it flows only through the residual
  stream and MLPs: the linearisation of path patching to the logits.

A metric maps last-position logits [n_prompts, vocab] to per-prompt values [n_prompts];
`logit_diff(good, bad)` is the usual one. Effects are metric(patched) - metric(base), averaged
over prompts, returned as `HeadScores`.

    >>> metric = logit_diff(memory_ids, context_ids)                              # doctest: +SKIP
    >>> effects = path_patch(model, conflict_prompts, clean_prompts, metric)      # doctest: +SKIP
    >>> effects.top(5)                                                            # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import torch

from .backends.plan import Edit, EditContext, RunPlan
from .errors import InvalidArgumentError
from .heads import Head, parse_heads
from .results import HeadScores, data_hash
from .tokens import Tokens

__all__ = [
    "logit_diff",
    "Receivers",
    "activation_patch",
    "path_patch",
    "attribution_patch",
    "head_z",
    "Metric",
]

Metric = Callable[[torch.Tensor], torch.Tensor]


def logit_diff(good: Sequence[int], bad: Sequence[int]) -> Metric:
    """Metric: logit(good_i) - logit(bad_i) for each prompt i."""
    good_t, bad_t = torch.as_tensor(list(good)), torch.as_tensor(list(bad))

    def metric(logits: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits[rows, good_t.to(logits.device)] - logits[rows, bad_t.to(logits.device)]

    return metric


@dataclass(frozen=True)
class Receivers:
    """Receiver heads of a path and which input of theirs the path reaches.

    site: "q", "k" or "v". Under grouped-query attention k and v belong to a kv group, so
    patching them reaches every query head of the group (the heads given pick the groups).
    positions: None for every position, or one index per prompt ([n_prompts] tensor/list).
    """

    heads: tuple[Head, ...]
    site: str = "q"
    positions: Optional[Sequence[int]] = None

    def __init__(self, heads, site: str = "q", positions=None):
        if site not in ("q", "k", "v"):
            raise InvalidArgumentError(f"receiver site must be 'q', 'k' or 'v', got {site!r}")
        object.__setattr__(self, "heads", parse_heads(heads))
        object.__setattr__(self, "site", site)
        object.__setattr__(
            self, "positions", None if positions is None else tuple(int(p) for p in positions)
        )


def head_z(model, tokens: Tokens, *, interventions=None, backend=None) -> dict[int, torch.Tensor]:
    """z of every layer on `tokens`: {layer: [batch, pos, n_heads, d_head]}."""
    plan = RunPlan(
        model.edits(interventions, True), capture=[(l, "z") for l in range(model.n_layers)]
    )
    with torch.no_grad():
        model.run_plan(tokens, plan, backend=backend)
    return {layer: t for (layer, _), t in plan.captured().items()}


def _paired_tokens(model, base, source) -> tuple[Tokens, Tokens]:
    base_t, source_t = model.to_tokens(base), model.to_tokens(source)
    if base_t.input_ids.shape != source_t.input_ids.shape:
        raise InvalidArgumentError(
            f"base and source must tokenize to the same shape to patch position by position; got "
            f"{tuple(base_t.input_ids.shape)} and {tuple(source_t.input_ids.shape)}. "
            f"Use prompts of "
            "equal token length (pad them in the prompt template) or patch per prompt."
        )
    return base_t, source_t


def _repeat(tokens: Tokens, times: int) -> Tokens:
    return Tokens(tokens.input_ids.repeat(times, 1), tokens.attention_mask.repeat(times, 1))


def _last_logits(model, tokens: Tokens, plan: RunPlan, backend) -> torch.Tensor:
    with torch.no_grad():
        return model.run_plan(tokens, plan, backend=backend).logits[:, -1]


def _senders(model, senders) -> list[Head]:
    return list(model.all_heads() if senders is None else model.heads(senders))


def _chunks(items: list, n_prompts: int, batch_size: int):
    per = max(1, batch_size // max(1, n_prompts))
    for start in range(0, len(items), per):
        yield items[start : start + per]


def _hashable(prompts):
    """Prompts as `data_hash` takes them: a (padded) `Tokens` batch by its ids and mask."""
    if isinstance(prompts, Tokens):
        return {"input_ids": prompts.input_ids, "attention_mask": prompts.attention_mask}
    return prompts


def _effects_to_scores(
    model, effects: dict[Head, float], method: str, base, source, **meta
) -> HeadScores:
    scores = torch.full((model.n_layers, model.n_heads), float("nan"))
    for head, value in effects.items():
        scores[head.layer, head.head] = value
    return HeadScores(
        scores,
        model=model.name,
        method=method,
        data_hash=data_hash([_hashable(base), _hashable(source)]),
        meta=meta,
    )


def _mean_effect(
    metric: Metric, logits: torch.Tensor, n_senders: int, n_prompts: int, base_value: torch.Tensor
) -> list[float]:
    per_sender = logits.reshape(n_senders, n_prompts, -1)
    return [float((metric(per_sender[i]) - base_value).mean()) for i in range(n_senders)]


# --- activation patching -------------------------------------------------------------------


def activation_patch(
    model, base, source, metric: Metric, *, senders=None, batch_size: int = 64, backend=None
) -> HeadScores:
    """Effect on `metric` of patching each head's z from `source` into `base` (no freezing)."""
    base_t, source_t = _paired_tokens(model, base, source)
    source_z = head_z(model, source_t, backend=backend)
    return _sweep(
        model,
        base_t,
        metric,
        _senders(model, senders),
        batch_size,
        backend,
        lambda chunk, n: _patch_edits(chunk, n, source_z, base_z=None),
        "activation patching (head z)",
        base,
        source,
    )


def _sweep(
    model,
    base_t,
    metric,
    senders,
    batch_size,
    backend,
    make_edits,
    method,
    base,
    source,
    receivers: Optional[Receivers] = None,
    source_z=None,
) -> HeadScores:
    n_prompts = len(base_t)
    base_value = metric(_last_logits(model, base_t, RunPlan(model.edits(None, True)), backend))
    effects: dict[Head, float] = {}
    for chunk in _chunks(senders, n_prompts, batch_size):
        rows = _repeat(base_t, len(chunk))
        edits = make_edits(chunk, n_prompts)
        if receivers is not None:
            edits = _receiver_edits(model, rows, edits, receivers, n_prompts, backend)
        logits = _last_logits(model, rows, RunPlan(model.edits(None, True) + edits), backend)
        effects.update(zip(chunk, _mean_effect(metric, logits, len(chunk), n_prompts, base_value)))
    return _effects_to_scores(
        model,
        effects,
        method,
        base,
        source,
        base_metric=float(base_value.mean()),
        n_prompts=n_prompts,
    )


def _patch_edits(
    chunk: list[Head], n_prompts: int, source_z: dict, base_z: Optional[dict]
) -> list[Edit]:
    """Row block i patches chunk[i] from source; with base_z, every other head is frozen."""
    layers = sorted(base_z) if base_z is not None else sorted({h.layer for h in chunk})
    edits = []
    for layer in layers:
        senders_here = [(i, h.head) for i, h in enumerate(chunk) if h.layer == layer]
        edits.append(
            Edit(
                layer,
                "z",
                _block_patch_fn(
                    senders_here,
                    n_prompts,
                    len(chunk),
                    source_z[layer],
                    None if base_z is None else base_z[layer],
                ),
            )
        )
    return edits


def _block_patch_fn(senders_here, n_prompts, n_blocks, source, frozen):
    def patch(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        z = frozen.repeat(n_blocks, 1, 1, 1).to(z.dtype) if frozen is not None else z.clone()
        for block, head in senders_here:
            rows = slice(block * n_prompts, (block + 1) * n_prompts)
            z[rows, :, head] = source[:, :, head].to(z.dtype)
        return z

    return patch


# --- path patching -------------------------------------------------------------------------


def path_patch(
    model,
    base,
    source,
    metric: Metric,
    *,
    senders=None,
    receivers: Union[str, Receivers] = "logits",
    batch_size: int = 64,
    backend=None,
) -> HeadScores:
    """Exact path patching: effect of each sender's path to `receivers` (see module docstring).

    Receivers may span several layers; a sender reaches the receivers of later layers only.
    Senders at or after the last receiver layer have no path to them and are left out (NaN).
    """
    base_t, source_t = _paired_tokens(model, base, source)
    source_z = head_z(model, source_t, backend=backend)
    base_z = head_z(model, base_t, backend=backend)
    senders_list = _senders(model, senders)
    if isinstance(receivers, Receivers):
        last = max(h.layer for h in receivers.heads)
        senders_list = [h for h in senders_list if h.layer < last]
        label = f"path patching -> {','.join(map(str, receivers.heads))} {receivers.site}"
    elif receivers == "logits":
        label = "path patching -> logits"
    else:
        raise InvalidArgumentError(
            f"receivers must be 'logits' or Receivers(heads, site), got {receivers!r}"
        )
    rec = receivers if isinstance(receivers, Receivers) else None
    return _sweep(
        model,
        base_t,
        metric,
        senders_list,
        batch_size,
        backend,
        lambda chunk, n: _patch_edits(chunk, n, source_z, base_z),
        label,
        base,
        source,
        receivers=rec,
    )


def _receiver_edits(
    model, rows: Tokens, sender_edits: list[Edit], receivers: Receivers, n_prompts: int, backend
) -> list[Edit]:
    """Step 1: capture receivers' inputs under the frozen, patched run; step 2: patch them in."""
    layers = sorted({h.layer for h in receivers.heads})
    # a receiver's input depends only on earlier layers, so one frozen run up to the last
    # receiver layer gives every receiver's input under the patched path
    frozen_before = [e for e in sender_edits if e.layer < layers[-1]]
    plan = RunPlan(frozen_before, capture=[(l, receivers.site) for l in layers])
    with torch.no_grad():
        model.run_plan(rows, plan, backend=backend)
    captured = plan.captured()
    group = model.n_heads // (model.n_kv_heads if receivers.site in ("k", "v") else model.n_heads)
    positions = None
    if receivers.positions is not None:
        if len(receivers.positions) != n_prompts:
            raise InvalidArgumentError(
                f"Receivers.positions needs one position per prompt ({n_prompts}), "
                f"got {len(receivers.positions)}"
            )
        positions = torch.tensor(receivers.positions).repeat(rows.input_ids.shape[0] // n_prompts)
    edits = []
    for layer in layers:
        idx = sorted({h.head // group for h in receivers.heads if h.layer == layer})
        edits.append(
            Edit(
                layer, receivers.site, _receiver_fn(captured[layer, receivers.site], idx, positions)
            )
        )
    return edits


def _receiver_fn(values: torch.Tensor, heads: list[int], positions: Optional[torch.Tensor]):
    def patch(t: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        t = t.clone()
        if positions is None:
            t[:, :, heads] = values[:, :, heads].to(t.dtype)
        else:
            rows = torch.arange(t.shape[0])
            for head in heads:
                t[rows, positions, head] = values[rows, positions, head].to(t.dtype)
        return t

    return patch


# --- attribution patching ------------------------------------------------------------------


def attribution_patch(
    model, base, source, metric: Metric, *, path: bool = True, backend=None
) -> HeadScores:
    """First-order estimate of each head's patching effect from one forward + one backward."""
    base_t, source_t = _paired_tokens(model, base, source)
    source_z = head_z(model, source_t, backend=backend)
    leaves: dict[int, torch.Tensor] = {}

    def make_leaf(layer):
        def leaf(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
            if path:
                z = z.detach().requires_grad_(True)
            leaves[layer] = z
            return z

        return leaf

    plan = RunPlan([Edit(l, "z", make_leaf(l)) for l in range(model.n_layers)])
    with torch.enable_grad():
        logits = model.run_plan(base_t, plan, backend=backend).logits[:, -1]
        value = metric(logits)
        layers = sorted(leaves)
        # autograd.grad, not backward: the z gradients only, nothing accumulated on the weights
        grads = dict(zip(layers, torch.autograd.grad(value.sum(), [leaves[l] for l in layers])))
    scores = torch.zeros(model.n_layers, model.n_heads)
    n = len(base_t)
    for layer, z in leaves.items():
        delta = source_z[layer] - z.detach()
        scores[layer] = (grads[layer] * delta).sum(dim=(0, 1, 3)) / n
    return HeadScores(
        scores,
        model=model.name,
        method=f"attribution patching ({'path to logits' if path else 'total'})",
        data_hash=data_hash([_hashable(base), _hashable(source)]),
        meta={"base_metric": float(value.mean().detach())},
    )
