"""Copy maths: does a head raise the logits of the tokens it attends to?

- copying score (per input): the head's direct effect on the logits of the tokens it attends
  to, attention-weighted, on second-copy queries. Each key token's unembedding row is seen
  through the final norm (its gain folded in, its input-dependent scale frozen at the value
  the clean forward had) and mean-centred over the vocabulary, so a head that raises every
  logit alike scores 0. > 0 means the head raises the logits of what it looks at.
- OV eigenvalue score (weights only): sum(Re lambda) / sum|lambda| over the eigenvalues of the
  head's full OV circuit W_E W_V^h W_O^h W_U (norm gains folded in); +1 = the OV circuit copies
  every token. Under GQA query head h reads kv head h // (n_heads / n_kv_heads).

    >>> from interp.testing import tiny_model
    >>> scores = ov_eigen_scores(tiny_model("llama")).scores
    >>> bool(((scores >= -1 - 1e-6) & (scores <= 1 + 1e-6)).all())
    True
"""

from __future__ import annotations

import torch

from interp.data.repeats import RepeatSet
from interp.results import HeadScores
from interp.weights import (
    final_norm_parts,
    folded_unembed,
    input_norm_weight,
    norm_scale,
    output_weight,
    value_weight,
)

from .observe import Observer

__all__ = ["unembed_dirs", "copying_scores", "ov_eigen_scores"]


def unembed_dirs(model) -> torch.Tensor:
    """Unembedding rows seen through the final norm gain, mean-centred over the vocabulary."""
    u = folded_unembed(model)
    return u - u.mean(0, keepdim=True)


def copying_scores(
    model, seqs: RepeatSet, obs: Observer, zs: dict, final_in: torch.Tensor
) -> torch.Tensor:
    """[b, n_layers, H]: attention-weighted direct logit effect on attended tokens, second-copy
    queries.

    zs: {layer: z [b, T, H, d_head]} of the forward; final_in: the final norm's input
    [b, T, d_model].
    """
    _, eps, layernorm = final_norm_parts(model)
    u = unembed_dirs(model)[seqs.input_ids]  # [b, T, d_model]
    scale = norm_scale(final_in, eps, layernorm)  # [b, T]
    bi = torch.arange(len(seqs))[:, None]
    out = torch.zeros(len(seqs), model.n_layers, model.n_heads)
    for layer in range(model.n_layers):
        u_h = torch.einsum("bkm,hdm->bkhd", u, output_weight(model, layer))
        zq = zs[layer].float().cpu()[bi, obs.q]  # [b, Lmax, H, d_head]
        de = torch.einsum("bqhd,bkhd->bhqk", zq, u_h) / scale[bi, obs.q][:, None, :, None]
        per_query = (obs.rows[layer] * de).sum(-1).permute(0, 2, 1)  # [b, Lmax, H]
        out[:, layer] = obs.masked_mean(per_query)
    return out


def _eigen_positivity(m: torch.Tensor) -> float:
    lam = torch.linalg.eigvals(m)
    return float(lam.real.sum() / lam.abs().sum().clamp(min=1e-30))


def ov_eigen_scores(model) -> HeadScores:
    """Eigenvalue positivity sum(Re l)/sum|l| of each head's full OV circuit W_E W_V W_O W_U.

    The non-zero eigenvalues of the [vocab x vocab] circuit equal those of the [d_head x d_head]
    product W_V W_O W_U W_E, which is what is computed. Norm weights (the layer's input norm and
    the final norm) are folded in; norm scales, biases and positional embeddings are left out.
    Heads of layouts without a known value projection are left unscored (NaN, mask False).
    """
    w_e = model.hf.get_input_embeddings().weight.detach().float().cpu()  # [V, d_model]
    w_u = folded_unembed(model, centre=False)
    scores = torch.full((model.n_layers, model.n_heads), float("nan"))
    group = model.n_heads // model.n_kv_heads
    for layer in range(model.n_layers):
        w_v = value_weight(model, layer)
        if w_v is None:
            continue
        ln = input_norm_weight(model, layer)
        g = w_u.T @ (
            w_e * ln if ln is not None else w_e
        )  # [d_model, d_model]: W_U W_E (column form)
        w_o = output_weight(model, layer)
        for head in range(model.n_heads):
            # circuit W_E W_V W_O W_U^T (row vectors); same non-zero eigenvalues as
            # W_O W_U^T W_E W_V
            m = w_o[head].double() @ g.double() @ w_v[head // group].double()  # [d_head, d_head]
            scores[layer, head] = _eigen_positivity(m)
    return HeadScores(
        scores,
        model=model.name,
        method="OV eigenvalue positivity sum(Re l)/sum|l|",
        threshold=0.0,
        meta={"folded": "input-norm and final-norm weights"},
    )
