"""Head attribution (direct logit attribution) onto logit(in-context) - logit(memorised).

At the last position, each head's output z_h W_O[h] is passed through the final norm *as the
model applies it*: the norm's scale s(x) is computed from the full residual and held fixed, so
the norm is a linear map of each term (its gain, and LayerNorm's centring, applied to every
term; its shift added once). Dotted with W_U[ct] - W_U[gt], head terms + the non-head terms
(embeddings, MLPs, biases, the norm's shift) sum to the model's logit(ct) - logit(gt).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from interp.backends.plan import RunPlan
from interp.data.conflict import ConflictSet
from interp.errors import ArgumentTypeError, InvalidArgumentError
from interp.heads import Head
from interp.results import HeadScores, data_hash
from interp.weights import final_norm_parts, norm_scale

from .config import LABELS

__all__ = ["final_norm_as_linear", "head_dla", "last_position_run", "head_attribution", "top_heads"]


def final_norm_as_linear(
    model, resid: torch.Tensor
) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """The final norm, with its scale frozen at the full residual, as a linear map of each term.

    resid: the residual entering the final norm [n, d_model]. Returns ``(apply, shift)``:
    ``apply(t)`` maps terms [n, ..., d_model] the way the norm maps their sum (LayerNorm centres
    each term, since the mean is linear; RMSNorm does not; both divide by s(resid) and multiply
    by the gain), and ``shift`` [d_model] is the constant the norm adds (LayerNorm's bias, else
    zeros), so ``apply(sum of terms) + shift == norm(resid)``. Gain and epsilon come from
    `interp.weights.final_norm_parts`; norms other than LayerNorm and RMSNorm are refused.
    """
    norm = model.final_norm
    layernorm = isinstance(norm, torch.nn.LayerNorm)
    if not layernorm and (
        getattr(norm, "variance_epsilon", getattr(norm, "eps", None)) is None
        or getattr(norm, "bias", None) is not None
    ):
        raise ArgumentTypeError(
            f"head attribution supports LayerNorm and RMSNorm final norms, "
            f"got {type(norm).__name__}"
        )
    weight, eps, _ = final_norm_parts(model)
    weight = weight.to(resid.device)
    scale = norm_scale(resid, eps, layernorm)
    bias = getattr(norm, "bias", None) if layernorm else None
    shift = bias.detach().float() if bias is not None else torch.zeros_like(weight)

    def apply(t: torch.Tensor) -> torch.Tensor:
        t = t.float()
        if layernorm:
            t = t - t.mean(-1, keepdim=True)
        return t * weight / scale.reshape(-1, *([1] * (t.dim() - 1)))

    return apply, shift


def head_dla(model, prompts, target_ids, foil_ids, batch_size: int = 256) -> dict:
    """Direct logit attribution onto logit(target) - logit(foil) at the last position.

    Returns {"heads": [n, L, H], "rest": [n] (embeddings, MLPs, biases, norm shift, unembedding
    bias), "total": [n] (the model's own logit difference)}; heads.sum((1, 2)) + rest == total.
    """
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    target_ids, foil_ids = torch.as_tensor(list(target_ids)), torch.as_tensor(list(foil_ids))
    if not (len(prompts) == len(target_ids) == len(foil_ids)):
        raise InvalidArgumentError(
            f"need one target and one foil id per prompt: {len(prompts)} prompts, "
            f"{len(target_ids)} targets, {len(foil_ids)} foils"
        )
    out = {"heads": [], "rest": [], "total": []}
    w_u = model.unembed.weight
    b_u = getattr(model.unembed, "bias", None)
    w_out = torch.stack(
        [model.w_out(l) for l in range(model.n_layers)]
    ).float()  # [L, H, d_head, d_model]
    for start in range(0, len(prompts), batch_size):
        sl = slice(start, start + batch_size)
        z, resid, logits = last_position_run(model, prompts[sl])
        direction = (w_u[target_ids[sl]] - w_u[foil_ids[sl]]).float()  # [n, d_model]
        to_norm, shift = final_norm_as_linear(model, resid)
        per_head = torch.einsum("nlhd,lhdm->nlhm", z.float(), w_out)  # [n, L, H, d_model]
        heads = torch.einsum("nlhm,nm->nlh", to_norm(per_head), direction)
        rest_vec = resid.float() - per_head.sum((1, 2))
        rest = (to_norm(rest_vec) * direction).sum(-1) + direction @ shift
        if b_u is not None:
            rest = rest + (b_u[target_ids[sl]] - b_u[foil_ids[sl]]).float()
        rows = torch.arange(len(logits))
        out["heads"].append(heads.detach())
        out["rest"].append(rest.detach())
        out["total"].append(
            (logits[rows, target_ids[sl]] - logits[rows, foil_ids[sl]]).float().detach()
        )
    return {k: torch.cat(v) for k, v in out.items()}


def last_position_run(model, prompts):
    """z at the last position [n, L, H, d_head], the final residual there [n, d_model], logits."""
    captured = {}
    hook = model.final_norm.register_forward_pre_hook(
        lambda module, args: captured.__setitem__("resid", args[0][:, -1].detach())
    )
    try:
        plan = RunPlan(model.edits(None, False), capture=[(l, "z") for l in range(model.n_layers)])
        with torch.no_grad():
            logits = model.run_plan(model.to_tokens(prompts), plan).logits[:, -1]
    finally:
        hook.remove()
    zs = plan.captured()
    z = torch.stack([zs[l, "z"][:, -1] for l in range(model.n_layers)], dim=1)
    return z, captured["resid"], logits


def head_attribution(
    model,
    data: ConflictSet,
    labels: Sequence[str],
    *,
    min_group: int = 5,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, HeadScores]:
    """Mean DLA onto logit(in-context) - logit(memorised), per behaviour group and over all."""
    if len(labels) != len(data):
        raise InvalidArgumentError(
            f"need one behaviour label per prompt: {len(labels)} labels, {len(data)} prompts"
        )
    dla = head_dla(model, data.prompts(), data.context_ids, data.memory_ids, batch_size)
    out = {}
    groups = {"all": [True] * len(labels)}
    groups.update({label: [x == label for x in labels] for label in LABELS})
    for name, keep in groups.items():
        idx = [i for i, k in enumerate(keep) if k]
        if len(idx) < (1 if name == "all" else min_group):
            continue
        out[name] = HeadScores(
            dla["heads"][idx].mean(0),
            model=model.name,
            method=f"direct logit attribution: logit(in-context) - logit(memorised), "
            f"mean over {name} prompts",
            data_hash=data_hash(data.prompts()),
            seed=seed,
            meta={
                "n_prompts": len(idx),
                "group": name,
                "sign": "positive = in-context head, negative = memory head",
                "mean_total_logit_diff": float(dla["total"][idx].mean()),
                "mean_non_head_terms": float(dla["rest"][idx].mean()),
            },
        )
    return out


def top_heads(attr: dict[str, HeadScores], role: str, k: int) -> list[Head]:
    """Memory heads (most negative on memorised prompts) or in-context heads (most positive on
    in-context prompts); the pooled average stands in when a group is too small."""
    group = "memorised" if role == "memory" else "in_context"
    scores = attr.get(group, attr["all"])
    picked = scores.top(min(k, scores.n_scored), largest=(role != "memory"))
    return [Head(l, h) for l, h, s in picked if (s < 0 if role == "memory" else s > 0)]
