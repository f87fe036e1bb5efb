"""Induction heads, and their damage by repeated training data (Olsson et al. 2022; Hernandez et al. 2022).

Method. Feed ``BOS + prefix + r + r + filler`` (r: distinct random tokens, `interp.data.repeats`).
A query at position i of the second copy holds token r_i, whose earlier occurrence is at
``first + i``; the token to predict, r_{i+1}, sits right after it at ``first + i + 1``.

- prefix-matching: mean attention from second-copy queries to ``first + i + 1``;
- duplicate-token: mean attention from second-copy queries to ``first + i``;
- previous-token: mean attention from every position to the position before it;
- copying: the head's direct effect on the logits of the tokens it attends to (attention-weighted,
  logits mean-centred over the vocabulary, through the final norm with its scale frozen), on
  second-copy queries; > 0 means the head raises the logits of what it looks at;
- OV eigenvalue score: sum(Re lambda) / sum|lambda| over the eigenvalues of W_E W_V^h W_O^h W_U
  (norm weights folded in; under GQA query head h reads kv head h // (n_heads / n_kv_heads));
  +1 = the OV circuit copies every token;
- induction loss: next-token loss on the second copy vs the first (first token of each copy left out).

A head is an *induction head* only if it prefix-matches (>= threshold) and copies (CI above 0) at
*every* span length. A head that attends at one fixed distance d matches the prefix target only
when the span length is d + 1; it is reported as *positional* with its offset. Every score is a
mean over sequences with a bootstrap confidence interval (sequences resampled). The causal
check mean-ablates the top-k induction heads (each head's z set to its mean over every position
of the sequences; ``ablation="zero"`` zeroes it) and sets of k random other heads, and compares
the rise in second-copy loss. The top-k are the heads that prefix-match at every span length,
ranked by how much the copy needs each one alone, measured on a second, independent sequence
set (``rank_by="effect"``): in a deep model the heads whose attention finds the earlier
continuation may copy only through later layers, and several direct copiers can stand in for
one another, so the pattern score alone does not say which heads the copy depends on. The
pattern ranking (induction heads first, ``rank_by="pattern"``) is measured beside it. `track`
follows the scores across training checkpoints; `damage_study` runs the zoo's repeated-data
family (control vs repeated fractions, several seeds).

    >>> from interp.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> res = run(model, InductionConfig(n=4, span_lengths=(4, 6), offsets=(0, 3), causal=False))
    >>> res.scores["prefix_matching"].shape
    (2, 8)
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import numpy as np
import torch

from interp.backends.plan import Edit, RunPlan
from interp.data.repeats import RepeatSet, repeat_sequences_for
from interp.heads import Head
from interp.interventions import PruneHeads
from interp.results import HeadScores
from interp.tokens import Tokens

__all__ = ["InductionConfig", "InductionResult", "run", "make_sequences", "score_heads", "sequence_losses",
           "ablation_check", "single_head_ratios", "causal_check", "top_heads_by_effect",
           "ov_eigen_scores", "tl_agreement", "track", "Trajectory", "load_checkpoint", "damage_study",
           "DamageResult", "family_members", "CheckpointMismatchError", "FamilyNotFoundError", "register"]

ABLATIONS = ("mean", "zero", "uniform")
RANKINGS = ("effect", "pattern")
ROLES = ("induction", "prefix-matching (no copying)", "positional", "previous-token", "duplicate-token", "other")


class CheckpointMismatchError(ValueError):
    """Checkpoints of one trajectory do not share one architecture."""


class FamilyNotFoundError(ValueError):
    """No trained member of the requested repeated-data family was found."""


# ------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class InductionConfig:
    """What to measure. `n` rows per (span length, offset); seeds make every number repeatable."""

    n: int = 16
    span_lengths: tuple = (8, 13, 21)
    offsets: tuple = (0, 17)
    seed: int = 0
    batch_size: int = 32
    threshold: float = 0.4
    n_boot: int = 500
    ci: float = 0.95
    top_k: int = 2
    n_random: int = 20
    ablation: str = "mean"           # "mean": each head's mean z over every position of the sequences; "zero"; "uniform"
    rank_by: str = "effect"          # which heads the causal check ablates (see `top_heads_by_effect`): "effect" | "pattern"
    causal: bool = True
    located_ratio: float = 1.2       # single-head ablation ratio that puts a head in the located circuit
    behaviour_ratio: float = 0.8
    token_ids: Optional[tuple] = None

    def __post_init__(self):
        object.__setattr__(self, "span_lengths", tuple(int(x) for x in self.span_lengths))
        object.__setattr__(self, "offsets", tuple(int(x) for x in self.offsets))
        if self.token_ids is not None:
            object.__setattr__(self, "token_ids", tuple(int(x) for x in self.token_ids))
        for name in ("n", "batch_size", "n_boot", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"InductionConfig.{name} must be a positive int, got {value!r}")
        if len(set(self.span_lengths)) < 2:
            raise ValueError(f"give at least two different span lengths (to tell induction from positional "
                             f"heads), got {self.span_lengths}")
        if not 0 < self.behaviour_ratio <= 1:
            raise ValueError(f"behaviour_ratio must be in (0, 1], got {self.behaviour_ratio}")
        if not 0 < self.threshold <= 1 or not 0 < self.ci < 1:
            raise ValueError(f"threshold must be in (0, 1] and ci in (0, 1), got {self.threshold}, {self.ci}")
        if self.ablation not in ABLATIONS:
            raise ValueError(f"ablation must be one of {ABLATIONS}, got {self.ablation!r}")
        if self.rank_by not in RANKINGS:
            raise ValueError(f"rank_by must be one of {RANKINGS}, got {self.rank_by!r}")

    @classmethod
    def from_dict(cls, data: dict) -> "InductionConfig":
        known = {f.name for f in fields(cls)}
        extra = set(data) - known
        if extra:
            raise ValueError(f"unknown InductionConfig key(s) {sorted(extra)}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)


def make_sequences(model, cfg: InductionConfig) -> RepeatSet:
    """The seeded repeated-span set of `cfg` for `model` (its vocab, BOS, specials, context)."""
    return repeat_sequences_for(model, token_ids=cfg.token_ids, n=cfg.n, span_lengths=cfg.span_lengths,
                                offsets=cfg.offsets, seed=cfg.seed)


# ------------------------------------------------------------------------------ streaming stats


def _query_index(seqs: RepeatSet):
    """[b, Lmax] second-copy query positions, their prefix / duplicate keys, and a validity mask."""
    lmax = int(seqs.span_len.max())
    i = torch.arange(lmax)[None]
    valid = i < seqs.span_len[:, None]
    q = (seqs.second[:, None] + i).clamp(max=seqs.seq_len - 1)
    dup = (seqs.first[:, None] + i).clamp(max=seqs.seq_len - 1)
    return q, dup + 1, dup, valid


class _Observer:
    """Pattern edits that reduce each layer's [b, H, T, T] pattern to per-sequence statistics."""

    def __init__(self, seqs: RepeatSet, n_layers: int, n_heads: int):
        self.q, self.k_pref, self.k_dup, self.valid = _query_index(seqs)
        b, t = len(seqs), seqs.seq_len
        self.second_mask = seqs.copy_mask("second").float()
        self.prefix = torch.zeros(b, n_layers, n_heads)
        self.dup = torch.zeros(b, n_layers, n_heads)
        self.prev = torch.zeros(b, n_layers, n_heads)
        self.offsets = torch.zeros(b, n_layers, n_heads, t)  # [.., d]: mean attention to q - d
        self.rows: dict[int, torch.Tensor] = {}  # layer -> pattern rows of second-copy queries

    def edit(self, layer: int) -> Edit:
        def observe(pattern: torch.Tensor, ctx) -> torch.Tensor:
            self._reduce(layer, pattern.detach().float().cpu())
            return pattern
        return Edit(layer, "pattern", observe)

    def _masked_mean(self, values: torch.Tensor) -> torch.Tensor:  # values [b, Lmax, H]
        w = self.valid.float()[:, :, None]
        return (values * w).sum(1) / w.sum(1)

    def _reduce(self, layer: int, a: torch.Tensor) -> None:
        bi = torch.arange(a.shape[0])[:, None]
        self.prefix[:, layer] = self._masked_mean(a[bi, :, self.q, self.k_pref])
        self.dup[:, layer] = self._masked_mean(a[bi, :, self.q, self.k_dup])
        self.prev[:, layer] = torch.diagonal(a, offset=-1, dim1=-2, dim2=-1).mean(-1)
        m = self.second_mask
        for d in range(1, a.shape[-1]):
            diag = torch.diagonal(a, offset=-d, dim1=-2, dim2=-1)  # queries d .. T-1
            w = m[:, d:]
            self.offsets[:, layer, :, d] = (diag * w[:, None]).sum(-1) / w.sum(-1).clamp(min=1)[:, None]
        self.rows[layer] = a[bi, :, self.q].permute(0, 2, 1, 3)  # [b, H, Lmax, T]


def _final_norm_parts(model):
    """(weight [d_model], eps, is_layernorm) of the final norm."""
    norm = model.final_norm
    weight = getattr(norm, "weight", None)
    if weight is None:
        raise ValueError(f"the final norm {type(norm).__name__} has no weight; copying scores need one")
    eps = float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-5)))
    return weight.detach().float().cpu(), eps, isinstance(norm, torch.nn.LayerNorm)


def _norm_scale(x: torch.Tensor, eps: float, layernorm: bool) -> torch.Tensor:
    x = x.float()
    if layernorm:
        return (x.var(-1, unbiased=False) + eps).sqrt()
    return (x.pow(2).mean(-1) + eps).sqrt()


def _unembed_weight(model) -> torch.Tensor:
    """W_U as [vocab, d_model] (HF's output embedding where the arch table's name is stale)."""
    try:
        module = model.unembed
    except AttributeError:
        module = model.hf.get_output_embeddings()
    return module.weight.detach().float().cpu()


def _unembed_dirs(model) -> torch.Tensor:
    """Unembedding rows seen through the final norm weight, mean-centred over the vocabulary."""
    w_u = _unembed_weight(model)  # [V, d_model]
    weight, _, layernorm = _final_norm_parts(model)
    u = w_u * weight
    if layernorm:  # LayerNorm centres its input across d_model: fold that projection in
        u = u - u.mean(-1, keepdim=True)
    return u - u.mean(0, keepdim=True)


def _copying(model, seqs: RepeatSet, obs: _Observer, zs: dict, final_in: torch.Tensor) -> torch.Tensor:
    """[b, n_layers, H]: attention-weighted direct logit effect on attended tokens, second-copy queries."""
    _, eps, layernorm = _final_norm_parts(model)
    u = _unembed_dirs(model)[seqs.input_ids]  # [b, T, d_model]
    scale = _norm_scale(final_in, eps, layernorm)  # [b, T]
    bi = torch.arange(len(seqs))[:, None]
    out = torch.zeros(len(seqs), model.n_layers, model.n_heads)
    for layer in range(model.n_layers):
        w_o = model.w_out(layer).detach().float().cpu()  # [H, d_head, d_model]
        u_h = torch.einsum("bkm,hdm->bkhd", u, w_o)
        zq = zs[layer].float().cpu()[bi, obs.q]  # [b, Lmax, H, d_head]
        de = torch.einsum("bqhd,bkhd->bhqk", zq, u_h) / scale[bi, obs.q][:, None, :, None]
        per_query = (obs.rows[layer] * de).sum(-1).permute(0, 2, 1)  # [b, Lmax, H]
        out[:, layer] = obs._masked_mean(per_query)
    return out


def _tokens(ids: torch.Tensor, device) -> Tokens:
    return Tokens(ids.to(device), torch.ones_like(ids, device=device))


def _nll(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits[:, :-1].float().cpu(), -1)
    return -logp.gather(-1, ids[:, 1:, None])[..., 0]


def _copy_losses(nll: torch.Tensor, seqs: RepeatSet) -> tuple[torch.Tensor, torch.Tensor]:
    out = []
    for which in ("first", "second"):
        m = seqs.target_mask(which).float()
        out.append((nll * m).sum(1) / m.sum(1))
    return out[0], out[1]


def _run_batch(model, seqs: RepeatSet, interventions=None) -> dict:
    obs = _Observer(seqs, model.n_layers, model.n_heads)
    edits = model._edits(interventions, True) + [obs.edit(l) for l in range(model.n_layers)]
    plan = RunPlan(edits, capture=[(l, "z") for l in range(model.n_layers)], w_out=model.w_out)
    captured = {}
    handle = model.final_norm.register_forward_pre_hook(lambda mod, args: captured.__setitem__("x", args[0].detach()))
    try:
        with torch.no_grad():
            logits = model.run_plan(_tokens(seqs.input_ids, model.device), plan).logits
    finally:
        handle.remove()
    if "x" not in captured:
        raise RuntimeError("the final norm was not called during the forward pass; cannot compute copying")
    zs = {l: t for (l, s), t in plan.captured().items() if s == "z"}
    first, second = _copy_losses(_nll(logits, seqs.input_ids), seqs)
    return {"prefix": obs.prefix, "dup": obs.dup, "prev": obs.prev, "offsets": obs.offsets,
            "copy": _copying(model, seqs, obs, zs, captured["x"].cpu()), "loss_first": first,
            "loss_second": second}


def score_heads(model, seqs: RepeatSet, *, batch_size: int = 32, interventions=None) -> dict:
    """Per-sequence statistics for every head, batched: dict of tensors with a leading [n_seqs] dim.

    keys: prefix, dup, prev, copy ([n, n_layers, n_heads]), offsets ([n, n_layers, n_heads, seq_len]),
    loss_first, loss_second ([n]). Pure: the model and `seqs` are not modified.
    """
    if seqs.seq_len > model.n_ctx:
        raise ValueError(f"sequences of {seqs.seq_len} tokens exceed the context window of {model.n_ctx}")
    parts = [_run_batch(model, chunk, interventions) for chunk in seqs.batches(batch_size)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def sequence_losses(model, seqs: RepeatSet, interventions=None, batch_size: int = 32):
    """(first-copy loss [n], second-copy loss [n]) per sequence, under `interventions`."""
    firsts, seconds = [], []
    for chunk in seqs.batches(batch_size):
        with torch.no_grad():
            logits = model.forward(_tokens(chunk.input_ids, model.device), interventions=interventions)
        f, s = _copy_losses(_nll(logits, chunk.input_ids), chunk)
        firsts.append(f)
        seconds.append(s)
    return torch.cat(firsts), torch.cat(seconds)


# ---------------------------------------------------------------------------------- statistics


def _boot_means(x: torch.Tensor, n_boot: int, seed: int) -> torch.Tensor:
    """[n_boot, ...] means of `x` [n, ...] over resampled rows (bootstrap over sequences)."""
    n = x.shape[0]
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(n, (n_boot, n), generator=g)
    weights = torch.zeros(n_boot, n, dtype=torch.float64).scatter_add_(1, idx, torch.ones(n_boot, n, dtype=torch.float64)) / n
    return (weights @ x.reshape(n, -1).double()).reshape(n_boot, *x.shape[1:])


def _interval(boot: torch.Tensor, ci: float) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = torch.quantile(boot.float(), torch.tensor([(1 - ci) / 2, (1 + ci) / 2]), dim=0)
    return lo, hi


def _ranks(x) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    x = np.asarray(x, float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tie = x == value
        ranks[tie] = ranks[tie].mean()
    return ranks


def _spearman(a, b) -> float:
    """Spearman rank correlation (Pearson correlation of average ranks)."""
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


# ---------------------------------------------------------------------------------- OV circuit


def _value_weight(model, layer: int) -> Optional[torch.Tensor]:
    """W_V of one layer as [n_kv_heads, d_model, d_head], or None where the layout is unknown."""
    spec, attn = model.spec, model.attention_modules()[layer]
    kv, dh, h = model.n_kv_heads, model.d_head, model.n_heads
    if spec.qkv_layout == "separate":
        w = getattr(attn, spec.qkv[2]).weight.detach().float().cpu()  # [kv*dh, d_model]
        return w.T.reshape(-1, kv, dh).permute(1, 0, 2)
    fused = getattr(attn, spec.qkv[0])
    w = fused.weight.detach().float().cpu()
    if spec.qkv_layout == "concat":  # GPT-2 Conv1D: [d_model, q | k | v]
        w = w if spec.conv1d_out else w.T
        v = w[:, (h + kv) * dh:(h + 2 * kv) * dh]
        return v.reshape(-1, kv, dh).permute(1, 0, 2)
    if spec.qkv_layout == "per_head":  # GPT-NeoX Linear: out features [head, (q, k, v), d_head]
        return w.T.reshape(-1, h, 3, dh)[:, :, 2].permute(1, 0, 2)
    return None


def _input_norm_weight(model, layer: int) -> Optional[torch.Tensor]:
    block = model.layer_modules()[layer]
    for name in ("input_layernorm", "ln_1", "attention_norm"):
        norm = getattr(block, name, None)
        if norm is not None and getattr(norm, "weight", None) is not None:
            return norm.weight.detach().float().cpu()
    return None


def ov_eigen_scores(model) -> HeadScores:
    """Eigenvalue positivity sum(Re l)/sum|l| of each head's full OV circuit W_E W_V W_O W_U.

    The non-zero eigenvalues of the [vocab x vocab] circuit equal those of the [d_head x d_head]
    product W_V W_O W_U W_E, which is what is computed. Norm weights (the layer's input norm and
    the final norm) are folded in; norm scales, biases and positional embeddings are left out.
    Heads of layouts without a known value projection are left unscored (NaN, mask False).
    """
    w_e = model.hf.get_input_embeddings().weight.detach().float().cpu()  # [V, d_model]
    w_u = _unembed_weight(model) * _final_norm_parts(model)[0]
    scores = torch.full((model.n_layers, model.n_heads), float("nan"))
    group = model.n_heads // model.n_kv_heads
    for layer in range(model.n_layers):
        w_v = _value_weight(model, layer)
        if w_v is None:
            continue
        ln = _input_norm_weight(model, layer)
        g = w_u.T @ (w_e * ln if ln is not None else w_e)  # [d_model, d_model]: W_U W_E (column form)
        w_o = model.w_out(layer).detach().float().cpu()
        for head in range(model.n_heads):
            # circuit W_E W_V W_O W_U^T (row vectors); same non-zero eigenvalues as W_O W_U^T W_E W_V
            m = w_o[head].double() @ g.double() @ w_v[head // group].double()  # [d_head, d_head]
            lam = torch.linalg.eigvals(m)
            scores[layer, head] = float(lam.real.sum() / lam.abs().sum().clamp(min=1e-30))
    return HeadScores(scores, model=model.name, method="OV eigenvalue positivity sum(Re l)/sum|l|",
                      threshold=0.0, meta={"folded": "input-norm and final-norm weights"})


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True, eq=False)
class InductionResult:
    """Head scores (with bootstrap CIs), per-length scores, roles, copy losses and the causal check.

    scores: HeadScores by name: prefix_matching, duplicate_token, previous_token, copying, ov_eigen,
      induction (= the smallest per-span-length prefix-matching score: high only if the head matches
      at every length). Each (except ov_eigen) carries ``meta["ci_low"]``/``meta["ci_high"]``.
    by_length: {span length: {"prefix_matching": [L, H], "copying": [L, H], "copying_ci_low": [L, H]}}.
    offset, offset_mass: [L, H] the relative distance each head attends to most from second-copy
      queries, and its mean attention there.
    roles: {"L1H2": role}; loss: first/second-copy losses with CIs, overall and per span length.
    """

    model: str
    config: InductionConfig
    data: dict
    scores: dict
    by_length: dict
    offset: torch.Tensor
    offset_mass: torch.Tensor
    roles: dict
    loss: dict
    causal: Optional[dict] = None

    def heads_with_role(self, role: str) -> list[str]:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {ROLES}")
        ranked = [f"L{l}H{h}" for l, h, _ in self.scores["induction"].top(self.scores["induction"].n_scored)]
        return [name for name in ranked if self.roles[name] == role]

    @property
    def induction_heads(self) -> list[str]:
        """Heads that prefix-match and copy at every span length, best first."""
        return self.heads_with_role("induction")

    @property
    def positional_heads(self) -> dict[str, int]:
        """{head: offset} of heads that attend at a fixed distance."""
        return {name: int(self.offset[Head.parse(name).layer, Head.parse(name).head])
                for name in self.heads_with_role("positional")}

    def ranked_induction(self, k: int) -> list[str]:
        """Top-k heads by induction score, induction heads first (then other heads by score)."""
        ranked = [f"L{l}H{h}" for l, h, _ in self.scores["induction"].top(self.scores["induction"].n_scored)]
        first = [n for n in ranked if self.roles[n] == "induction"]
        return (first + [n for n in ranked if n not in first])[:k]

    @property
    def has_induction_behaviour(self) -> bool:
        """In-context copying: second-copy loss at most ``behaviour_ratio`` x the first (whole CI below).

        Copying the continuation of an earlier occurrence cuts the loss on the second copy by a
        large factor; a few percent (which token statistics of the context can give) is not counted.
        """
        return bool(self.loss["ratio_ci"][1] < self.config.behaviour_ratio)

    @property
    def verdict(self) -> str:
        lo, hi = self.loss["ratio_ci"]
        r = self.loss["ratio"]
        if self.has_induction_behaviour:
            return f"induction behaviour: second-copy loss is {r:.2f}x the first (CI {lo:.2f}-{hi:.2f})"
        if hi < 1:
            return (f"no induction behaviour (negative case): second-copy loss is {r:.4f}x the first "
                    f"(CI {lo:.4f}-{hi:.4f}): lower by {100 * (1 - r):.1f}%, far from the <= "
                    f"{self.config.behaviour_ratio}x that copying the earlier continuation gives")
        return (f"no induction behaviour (negative case): second-copy loss is not lower than the first "
                f"({r:.4f}x, CI {lo:.4f}-{hi:.4f})")

    def summary(self) -> dict:
        """Every measured number, JSON-ready."""
        pm = self.scores["prefix_matching"]
        top = pm.top(1)[0]
        ind = self.scores["induction"]
        return {
            "max_prefix_matching": top[2], "max_prefix_matching_head": f"L{top[0]}H{top[1]}",
            "heads_prefix_matching_ge_0.5": [f"L{l}H{h}" for l, h in pm.heads(0.5)],
            "top_induction_score": [{"head": f"L{l}H{h}", "score": s, "role": self.roles[f"L{l}H{h}"]}
                                    for l, h, s in ind.top(5)],
            "induction_heads": self.induction_heads,
            "positional_heads": self.positional_heads,
            "roles": {r: [n for n, v in self.roles.items() if v == r] for r in ROLES},
            "loss": self.loss,
            "induction_behaviour": self.has_induction_behaviour,
            "verdict": self.verdict,
            "causal": self.causal,
        }

    def figures(self) -> dict:
        """Plotly figures: head maps of each score, and the copy losses by span length."""
        from interp import plots

        groups = {"induction": self.induction_heads, "positional": list(self.positional_heads)}
        groups = {k: v for k, v in groups.items() if v}
        figs = {}
        for name in ("induction", "prefix_matching", "copying", "previous_token", "duplicate_token", "ov_eigen"):
            hs = self.scores[name]
            figs[f"heads_{name}"] = plots.head_heatmap(
                hs.scores, title=f"{self.model}: {name.replace('_', ' ')} ({hs.method})",
                highlight=groups or None, value_name=name)
        lengths = sorted(self.loss["by_length"])
        figs["copy_loss"] = plots.line_curves(
            lengths, {"first copy": [self.loss["by_length"][L]["first"] for L in lengths],
                      "second copy": [self.loss["by_length"][L]["second"] for L in lengths]},
            title=(f"{self.model}: next-token loss on the first vs second copy (mean over "
                   f"{self.data['n_seqs']} seqs; ratio {self.loss['ratio']:.3f})"),
            x_title="span length", y_title="loss (nats)")
        return figs


def _head_scores(model, method, mean, lo, hi, threshold, data_hash, seed, meta=None) -> HeadScores:
    meta = dict(meta or {})
    meta.update({"ci_low": lo.tolist(), "ci_high": hi.tolist()})
    return HeadScores(mean.float(), model=model, method=method, data_hash=data_hash, seed=seed,
                      threshold=threshold, meta=meta)


def _roles(prefix_len, copy_lo_len, prev, dup, offset, offset_mass, thr) -> dict:
    """Role of each head from its per-length prefix/copying scores and attention statistics."""
    roles = {}
    n_layers, n_heads = prev.shape
    for l in range(n_layers):
        for h in range(n_heads):
            p = prefix_len[:, l, h]
            name = f"L{l}H{h}"
            if bool((p >= thr).all()):
                roles[name] = "induction" if bool((copy_lo_len[:, l, h] > 0).all()) else "prefix-matching (no copying)"
            elif bool((p >= thr).any()):
                roles[name] = "positional"
            elif prev[l, h] >= thr:
                roles[name] = "previous-token"
            elif dup[l, h] >= thr:
                roles[name] = "duplicate-token"
            elif offset_mass[l, h] >= thr and offset[l, h] > 1:
                roles[name] = "positional"
            else:
                roles[name] = "other"
    return roles


def _loss_stats(first, second, seqs, cfg) -> dict:
    def block(f, s, seed):
        bf, bs = _boot_means(f, cfg.n_boot, seed), _boot_means(s, cfg.n_boot, seed)
        gap = _interval(bf - bs, cfg.ci)
        ratio = _interval(bs / bf, cfg.ci)
        return {"first": float(f.mean()), "second": float(s.mean()), "ratio": float(s.mean() / f.mean()),
                "first_ci": [float(x) for x in _interval(bf, cfg.ci)],
                "second_ci": [float(x) for x in _interval(bs, cfg.ci)],
                "gap_ci": [float(gap[0]), float(gap[1])], "ratio_ci": [float(ratio[0]), float(ratio[1])],
                "n_seqs": int(len(f))}
    out = block(first, second, cfg.seed)
    out["by_length"] = {L: block(first[seqs.span_len == L], second[seqs.span_len == L], cfg.seed + L)
                        for L in seqs.lengths}
    return out


def summarize(model, seqs: RepeatSet, stats: dict, cfg: InductionConfig) -> InductionResult:
    """Turn per-sequence statistics into means, CIs, per-length scores and roles."""
    dh, name = seqs.hash(), model.name
    thr = cfg.threshold
    scores, by_len = {}, {}
    labels = {"prefix": ("prefix_matching", "mean attention to the token after the earlier occurrence", thr),
              "dup": ("duplicate_token", "mean attention to the earlier occurrence", thr),
              "prev": ("previous_token", "mean attention to the previous position", thr),
              "copy": ("copying", "direct effect on the logits of attended tokens (centred)", 0.0)}
    for key, (label, method, t) in labels.items():
        lo, hi = _interval(_boot_means(stats[key], cfg.n_boot, cfg.seed), cfg.ci)
        scores[label] = _head_scores(name, method, stats[key].mean(0), lo, hi, t, dh, cfg.seed)
    prefix_len, copy_len, copy_lo_len, boots = [], [], [], []
    for i, L in enumerate(seqs.lengths):
        rows = seqs.span_len == L
        bp = _boot_means(stats["prefix"][rows], cfg.n_boot, cfg.seed + L)
        bc = _boot_means(stats["copy"][rows], cfg.n_boot, cfg.seed + L)
        boots.append(bp)
        prefix_len.append(stats["prefix"][rows].mean(0))
        copy_len.append(stats["copy"][rows].mean(0))
        copy_lo_len.append(_interval(bc, cfg.ci)[0])
        by_len[L] = {"prefix_matching": prefix_len[-1], "copying": copy_len[-1], "copying_ci_low": copy_lo_len[-1]}
    prefix_len, copy_lo_len = torch.stack(prefix_len), torch.stack(copy_lo_len)
    lo, hi = _interval(torch.stack(boots).min(0).values, cfg.ci)
    scores["induction"] = _head_scores(name, "min over span lengths of prefix-matching", prefix_len.min(0).values,
                                       lo, hi, thr, dh, cfg.seed, {"span_lengths": seqs.lengths})
    scores["ov_eigen"] = ov_eigen_scores(model)
    mass = stats["offsets"].mean(0)
    offset_mass, offset = mass.max(-1)
    roles = _roles(prefix_len, copy_lo_len, scores["previous_token"].scores, scores["duplicate_token"].scores,
                   offset, offset_mass, thr)
    data = {"n_seqs": len(seqs), "data_hash": dh, **seqs.config}
    return InductionResult(name, cfg, data, scores, by_len, offset, offset_mass, roles,
                           _loss_stats(stats["loss_first"], stats["loss_second"], seqs, cfg))


def run(model, cfg: Optional[InductionConfig] = None, *, seqs: Optional[RepeatSet] = None,
        interventions=None) -> InductionResult:
    """Score every head on seeded repeated-span sequences; with ``cfg.causal`` also ablate heads.

    >>> res = run(interp.load("world-base"), InductionConfig(n=16))      # doctest: +SKIP
    >>> res.induction_heads, res.loss["ratio"], res.causal["top_ratio"]  # doctest: +SKIP
    """
    cfg = cfg or InductionConfig()
    seqs = seqs if seqs is not None else make_sequences(model, cfg)
    stats = score_heads(model, seqs, batch_size=cfg.batch_size, interventions=interventions)
    result = summarize(model, seqs, stats, cfg)
    if cfg.causal:
        result = replace(result, causal=causal_check(model, seqs, result, cfg, stats if interventions is None else None))
    return result


def causal_check(model, seqs: RepeatSet, result: "InductionResult", cfg: InductionConfig, stats=None) -> dict:
    """Ablate the top-k induction heads (``cfg.rank_by``), random head sets, and each head alone."""
    base = (stats["loss_first"], stats["loss_second"]) if stats is not None else None
    pattern = result.ranked_induction(cfg.top_k)
    selection = top_heads_by_effect(model, result, cfg) if cfg.rank_by == "effect" else None
    heads = selection["heads"] if selection else pattern
    single = single_head_ratios(model, seqs, mode=cfg.ablation, batch_size=cfg.batch_size, base=base)
    by_role = [n for n, role in result.roles.items() if role in ("induction", "previous-token")]
    by_effect = [n for n, r in single.items() if r >= cfg.located_ratio]
    causal = ablation_check(model, seqs, heads, n_random=cfg.n_random, seed=cfg.seed, mode=cfg.ablation,
                            batch_size=cfg.batch_size, n_boot=cfg.n_boot, ci=cfg.ci, base=base,
                            circuit=sorted(set(by_role) | set(by_effect)))
    if set(pattern) != set(heads):
        second = (base or sequence_losses(model, seqs, batch_size=cfg.batch_size))[1]
        s_pat = sequence_losses(model, seqs, _prune(model, pattern, cfg.ablation, seqs), cfg.batch_size)[1]
        causal["top_by_pattern"] = {"heads": pattern, "ratio": float(s_pat.mean() / second.mean()),
                                    "ratio_ci": _ratio_ci(second, s_pat, cfg.n_boot, cfg.ci, cfg.seed)}
    causal.update(rank_by=cfg.rank_by, selection=selection, single_head_ratios=single,
                  located_by_role=sorted(by_role), located_by_effect=sorted(by_effect),
                  located_ratio=cfg.located_ratio)
    return causal


def top_heads_by_effect(model, result: "InductionResult", cfg: InductionConfig) -> dict:
    """The top-k induction heads by need: among the heads whose prefix-matching clears the
    threshold at every span length (direct copiers or not), the k whose ablation alone raises
    the second-copy loss most, measured on sequences of seed ``cfg.seed + 1`` so that choosing
    the heads and measuring them do not share data. Fewer candidates than k are topped up
    from the pattern ranking."""
    candidates = [n for n in result.ranked_induction(len(result.roles))
                  if result.roles[n] in ("induction", "prefix-matching (no copying)")]
    select = make_sequences(model, replace(cfg, seed=cfg.seed + 1))
    ratios = single_head_ratios(model, select, mode=cfg.ablation, batch_size=cfg.batch_size, heads=candidates)
    ranked = sorted(candidates, key=lambda n: -ratios[n])
    heads = (ranked + [n for n in result.ranked_induction(cfg.top_k + len(ranked)) if n not in ranked])[:cfg.top_k]
    return {"heads": heads, "selection_seed": cfg.seed + 1, "n_seqs": len(select), "candidate_ratios": ratios}


# ------------------------------------------------------------------------------- causal check


def _ratio_ci(base: torch.Tensor, new: torch.Tensor, n_boot: int, ci: float, seed: int) -> list[float]:
    b = _boot_means(torch.stack([base, new], -1), n_boot, seed)
    lo, hi = _interval(b[:, 1] / b[:, 0], ci)
    return [float(lo), float(hi)]


def _random_head_sets(pool: list, k: int, n: int, seed: int, salt: int) -> list[list]:
    """Up to ``n`` distinct random sets of ``k`` heads from ``pool`` (seeded)."""
    rng = np.random.default_rng([int(seed), salt])
    picks: list[list] = []
    n_sets = math.comb(len(pool), k) if len(pool) >= k else 0
    while len(picks) < min(n, n_sets):
        pick = [pool[j] for j in sorted(rng.choice(len(pool), size=k, replace=False))]
        if pick not in picks:
            picks.append(pick)
    return picks


def _prune(model, heads, mode: str, seqs: RepeatSet) -> PruneHeads:
    """`heads` ablated by `mode`; mean-ablation sets each head's z to its mean over every position
    of `seqs` (`Model.head_means`, cached on the model), so the rest of the model sees no shift
    of scale, only the loss of what the head says about this input."""
    if mode == "mean":
        return PruneHeads.with_means(model, heads, seqs.input_ids)
    return PruneHeads(list(model.heads(list(heads))), mode=mode)


def single_head_ratios(model, seqs: RepeatSet, *, mode: str = "mean", batch_size: int = 32, base=None,
                       heads: Optional[Sequence] = None) -> dict:
    """{head name: second-copy loss with that head alone ablated / clean}, for every head (or
    `heads`): which heads the copying needs one at a time, whatever role their attention
    pattern suggests."""
    second = (base if base is not None else sequence_losses(model, seqs, batch_size=batch_size))[1].mean()
    names = [h.name for h in (model.all_heads() if heads is None else model.heads(list(heads)))]
    return {n: float(sequence_losses(model, seqs, _prune(model, [n], mode, seqs), batch_size)[1].mean() / second)
            for n in names}


def ablation_check(model, seqs: RepeatSet, heads: Sequence, *, n_random: int = 20, seed: int = 0,
                   mode: str = "mean", batch_size: int = 32, n_boot: int = 500, ci: float = 0.95,
                   base=None, circuit: Sequence = (), control_ratio: float = 1.2) -> dict:
    """Second-copy loss when `heads` are ablated vs when as many random other heads are.

    Returns ratios (ablated / clean mean second-copy loss) with bootstrap CIs over sequences.
    Random sets come from every head outside `heads` (``random``) and, when `circuit` names
    the located circuit (`run` passes the induction and previous-token heads and every head
    whose single-head ablation raises the loss by `located_ratio`), also from the heads
    outside it (``random_outside_circuit``): in a small model the first control often hits
    other members of the circuit, which is a finding about redundancy, not about specificity.
    Beside the mean and max over draws: the median draw and the share of draws at most
    `control_ratio`, since one draw that hits a head the model cannot do without moves the mean.

    >>> ablation_check(model, seqs, ["L1H3", "L1H5"])["top_ratio"]   # doctest: +SKIP
    """
    heads = list(model.heads(list(heads)))
    if not heads:
        raise ValueError("ablation_check needs at least one head")
    circuit = set(model.heads(list(circuit))) | set(heads)
    first, second = base if base is not None else sequence_losses(model, seqs, batch_size=batch_size)
    f_top, s_top = sequence_losses(model, seqs, _prune(model, heads, mode, seqs), batch_size)

    def draws_from(pool: list, salt: int) -> list[dict]:
        out = []
        for i, pick in enumerate(_random_head_sets(pool, len(heads), n_random, seed, salt)):
            f_r, s_r = sequence_losses(model, seqs, _prune(model, pick, mode, seqs), batch_size)
            out.append({"heads": [h.name for h in pick], "second": float(s_r.mean()),
                        "ratio": float(s_r.mean() / second.mean()),
                        "ratio_ci": _ratio_ci(second, s_r, n_boot, ci, seed + i + 1)})
        return out

    draws = draws_from([h for h in model.all_heads() if h not in heads], 0xAB1A)
    ratios = [d["ratio"] for d in draws]
    out = {"heads": [h.name for h in heads], "mode": mode, "clean_second": float(second.mean()),
           "clean_first": float(first.mean()), "ablated_second": float(s_top.mean()),
           "ablated_first": float(f_top.mean()), "top_ratio": float(s_top.mean() / second.mean()),
           "top_ratio_ci": _ratio_ci(second, s_top, n_boot, ci, seed),
           "random": draws, "random_ratio_max": max(ratios) if ratios else None,
           "random_ratio_mean": float(np.mean(ratios)) if ratios else None,
           "random_ratio_median": float(np.median(ratios)) if ratios else None,
           "random_share_within_control": float(np.mean([r <= control_ratio for r in ratios])) if ratios else None,
           "control_ratio": control_ratio, "n_seqs": len(seqs)}
    if len(circuit) > len(heads):
        outside = draws_from([h for h in model.all_heads() if h not in circuit], 0xAB1B)
        r_out = [d["ratio"] for d in outside]
        out.update(circuit=sorted(h.name for h in circuit), random_outside_circuit=outside,
                   random_outside_circuit_ratio_max=max(r_out) if r_out else None,
                   random_outside_circuit_ratio_mean=float(np.mean(r_out)) if r_out else None)
    return out


# --------------------------------------------------------------------- transformer-lens check


def tl_agreement(model, seqs: RepeatSet, *, max_seqs: int = 24) -> dict:
    """Rank agreement of our induction scores with transformer-lens 4's `head_detector`.

    `detect_head(model, seq, "induction_head")` runs on the model's TransformerBridge through a thin
    adapter whose ``to_tokens`` hands over our token ids unchanged (no decode / re-tokenize round
    trip; the bridge built by `interp` has no tokenizer). Both scores use the same rows. TL's score is the attention mass on *every*
    query-key pair whose key follows an earlier copy of the query's token, divided by *all*
    attention (every query, BOS and first copy included), so it is diluted by the share of queries
    with no target; ours averages second-copy queries only.
    """
    from transformer_lens.head_detector import detect_head

    step = max(1, len(seqs) // max_seqs)
    kept = list(range(0, len(seqs), step))[:max_seqs]
    if seqs.seq_len >= model.bridge.cfg.n_ctx:  # head_detector asserts seq_len < n_ctx
        return {"n_seqs": 0, "note": f"head_detector needs sequences shorter than n_ctx={model.bridge.cfg.n_ctx}"}
    adapter = _IdsBridge(model.bridge)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl = torch.stack([detect_head(adapter, seqs.input_ids[i][None].to(model.device), "induction_head").float().cpu()
                          for i in kept]).mean(0)
    ours = score_heads(model, seqs.select(kept))
    prefix, induction = ours["prefix"].mean(0), _min_over_lengths(ours["prefix"], seqs.select(kept))
    share = float(seqs.select(kept).span_len.float().mean() / seqs.seq_len)
    keep = prefix.flatten() > 0.02
    return {"n_seqs": len(kept),
            "spearman_prefix_matching": _spearman(tl.flatten(), prefix.flatten()),
            "spearman_induction_min_over_lengths": _spearman(tl.flatten(), induction.flatten()),
            "pearson_prefix_matching": float(np.corrcoef(tl.flatten(), prefix.flatten())[0, 1]),
            "tl_max": float(tl.max()), "ours_max": float(prefix.max()),
            "second_copy_share_of_queries": share,
            "tl_over_ours_median": float(torch.median(tl.flatten()[keep] / prefix.flatten()[keep])) if keep.any() else None,
            "tl_scores": tl.tolist(), "our_scores": prefix.tolist(),
            "note": ("TL divides by all attention (every query) so its scores are ~ our prefix-matching x the "
                     "share of queries in the second copy, plus attention to chance repeats in the prefix/filler; "
                     "TL marks unscored heads with -1; we keep unscored heads out of HeadScores (mask).")}


class _IdsBridge:
    """head_detector's model protocol (cfg, to_tokens, run_with_cache) over a bridge, for token ids."""

    def __init__(self, bridge):
        self.bridge, self.cfg = bridge, bridge.cfg

    def to_tokens(self, ids):
        return ids

    def run_with_cache(self, tokens, **kwargs):
        return self.bridge.run_with_cache(tokens, **kwargs)


def _min_over_lengths(prefix: torch.Tensor, seqs: RepeatSet) -> torch.Tensor:
    return torch.stack([prefix[seqs.span_len == L].mean(0) for L in seqs.lengths]).min(0).values


# ------------------------------------------------------------------------------- checkpoints


def load_checkpoint(spec) -> tuple[Any, str, Optional[int]]:
    """(Model, label, training step or None) for a checkpoint spec.

    spec: an `interp.Model`; a zoo training state / weight snapshot (``*.pt`` holding recipe,
    step and weights); ``ID@REVISION`` (HF revision, e.g. ``EleutherAI/pythia-70m@step1000``);
    or anything `interp.load` takes (zoo name, HF folder, .gguf, HF id).
    """
    import interp

    if isinstance(spec, interp.Model):
        return spec, spec.name, None
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"a checkpoint is a Model, a path or a model id, got {type(spec).__name__}")
    spec = str(spec)
    if spec.endswith(".pt"):
        return _load_training_state(spec)
    if "@" in spec and not os.path.exists(spec):
        ident, rev = spec.rsplit("@", 1)
        step = int(rev[4:]) if rev.startswith("step") and rev[4:].isdigit() else None
        return interp.load(ident, revision=rev), spec, step
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = interp.load(spec)
    step, label = None, spec
    if os.path.isdir(spec):
        folder = Path(spec).resolve()
        label = folder.parent.name if folder.name == "model" else folder.name  # zoo run layout <name>/model
        model.name = label
        metrics = folder / "metrics.json"
        if metrics.is_file():
            step = json.loads(metrics.read_text()).get("steps")
    return model, label, step


def _load_training_state(path: str):
    import interp
    from interp.zoo.recipes import Recipe
    from interp.zoo.train import build_model
    from interp.zoo.world import World

    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or not {"recipe", "model", "step"} <= set(state):
        raise ValueError(f"{path} is not a zoo training state (needs 'recipe', 'model' and 'step')")
    recipe = Recipe(**state["recipe"])
    world = World(recipe.world_seed)
    tok = world.build_tokenizer()
    hf = build_model(recipe, len(world.vocab), tok)
    hf.load_state_dict({k: v.float() for k, v in state["model"].items()})
    label = f"{recipe.name}@step{state['step']}"
    return interp.Model(hf.eval(), tok, name=label), label, int(state["step"])


def world_content_tokens(spec) -> Optional[tuple]:
    """Content-token ids of the zoo world a checkpoint was trained on, or None for other models.

    Random spans of zoo models are drawn from these (the tokens of their random-span training
    documents), not from function words and special tokens.
    """
    from interp.zoo.world import World

    seed = None
    try:
        if isinstance(spec, (str, os.PathLike)) and str(spec).endswith(".pt") and os.path.isfile(spec):
            seed = torch.load(spec, map_location="cpu", weights_only=False)["recipe"]["world_seed"]
        elif isinstance(spec, (str, os.PathLike)):
            folder = Path(spec)
            if not folder.is_dir():
                from interp import zoo

                folder = zoo.path(str(spec)) if str(spec) in zoo.names() else None
            if folder is not None and (folder / "world.json").is_file():
                seed = json.loads((folder / "world.json").read_text())["seed"]
    except (OSError, KeyError, ValueError):
        return None
    return None if seed is None else tuple(int(i) for i in World(int(seed)).random_token_ids)


_ARCH_KEYS = ("architecture", "n_layers", "n_heads", "n_kv_heads", "d_head", "d_model", "vocab_size")


def architecture_of(model) -> dict:
    """The shape a trajectory must keep: architecture, layers, heads, kv heads, widths, vocabulary."""
    return {k: getattr(model, k) for k in _ARCH_KEYS}


def check_same_architecture(ref: dict, ref_label: str, model, label: str) -> None:
    """Raise CheckpointMismatchError if `model` differs in shape from the reference checkpoint."""
    got = architecture_of(model)
    diff = {k: (ref[k], got[k]) for k in _ARCH_KEYS if ref[k] != got[k]}
    if diff:
        detail = ", ".join(f"{k} {a} vs {b}" for k, (a, b) in diff.items())
        raise CheckpointMismatchError(
            f"checkpoint {label!r} does not match {ref_label!r} ({detail}); a trajectory follows the "
            f"same heads through training, so pass checkpoints of one architecture only")


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Scores of the same heads at each checkpoint: labels, steps, results (InductionResult each)."""

    labels: list
    steps: list
    results: list

    def x(self) -> list:
        return self.steps if all(s is not None for s in self.steps) else list(range(len(self.labels)))

    def series(self, score: str = "induction", heads: Optional[Sequence[str]] = None, k: int = 4) -> dict:
        """{head: [score at each checkpoint]} for `heads` (default: the last checkpoint's top k)."""
        if heads is None:
            heads = [f"L{l}H{h}" for l, h, _ in self.results[-1].scores[score].top(k)]
        out = {}
        for name in heads:
            hd = Head.parse(name)
            out[name] = [float(r.scores[score].scores[hd.layer, hd.head]) for r in self.results]
        out["best head (any)"] = [float(np.nanmax(r.scores[score].scores.numpy())) for r in self.results]
        return out

    def to_dict(self) -> dict:
        return {"labels": self.labels, "steps": self.steps, "x": self.x(),
                "induction": self.series("induction"), "prefix_matching": self.series("prefix_matching"),
                "copying": self.series("copying"),
                "loss_first": [r.loss["first"] for r in self.results],
                "loss_second": [r.loss["second"] for r in self.results],
                "loss_ratio": [r.loss["ratio"] for r in self.results],
                "roles": [r.roles for r in self.results]}

    def figures(self) -> dict:
        from interp import plots

        x_title = "training step" if self.x() is self.steps else "checkpoint"
        d = self.to_dict()
        return {
            "trajectory_heads": plots.line_curves(
                d["x"], d["induction"], title="induction score (min over span lengths of prefix-matching) "
                "of the final checkpoint's top heads", x_title=x_title, y_title="score"),
            "trajectory_loss": plots.line_curves(
                d["x"], {"first copy": d["loss_first"], "second copy": d["loss_second"],
                         "ratio second/first": d["loss_ratio"]},
                title="copy loss across checkpoints", x_title=x_title, y_title="loss (nats) / ratio"),
        }


def track(checkpoints: Sequence, cfg: Optional[InductionConfig] = None) -> Trajectory:
    """Score every checkpoint on the same sequences (architectures must match).

    >>> traj = track(["runs/x/ckpts/step00250.pt", "runs/x/ckpts/step00500.pt"])   # doctest: +SKIP
    >>> traj.figures()["trajectory_heads"]                                            # doctest: +SKIP
    """
    if isinstance(checkpoints, (str, os.PathLike)) or not checkpoints:
        raise ValueError("track needs a list of at least one checkpoint (paths, ids or Models)")
    cfg = replace(cfg or InductionConfig(), causal=False)
    if cfg.token_ids is None:
        cfg = replace(cfg, token_ids=world_content_tokens(checkpoints[0]) if not hasattr(checkpoints[0], "hf") else None)
    labels, steps, results, ref, seqs = [], [], [], None, None
    for spec in checkpoints:  # one model in memory at a time
        model, label, step = load_checkpoint(spec)
        if ref is None:
            ref, seqs = (architecture_of(model), label), make_sequences(model, cfg)
        else:
            check_same_architecture(ref[0], ref[1], model, label)
        labels.append(label)
        steps.append(step)
        results.append(run(model, cfg, seqs=seqs))
    return Trajectory(labels, steps, results)


# ------------------------------------------------------------------------ repeated-data study


def family_members(family: Union[str, os.PathLike]) -> list[dict]:
    """Trained members of a repeated-data family: a zoo name prefix (``rep2l``) or a folder.

    A folder holds one sub-folder per member: an HF model folder with its zoo card
    (``metrics.json`` with the recipe), or ``<member>/model`` plus optional ``<member>/ckpts/*.pt``.
    """
    path = Path(family)
    members = []
    if path.is_dir():
        for sub in sorted(p for p in path.iterdir() if p.is_dir()):
            folder = sub / "model" if (sub / "model" / "config.json").is_file() else sub
            card = folder / "metrics.json"
            if not (folder / "config.json").is_file() or not card.is_file():
                continue
            recipe = json.loads(card.read_text())["recipe"]
            ckpts = sorted(str(c) for c in (sub / "ckpts").glob("*.pt")) if (sub / "ckpts").is_dir() else []
            members.append({"name": recipe["name"], "spec": str(folder), "recipe": recipe, "checkpoints": ckpts})
        where = f"folder {path}"
    else:
        from interp import zoo

        prefix = str(family)
        for name in zoo.names():
            if name.startswith(prefix):
                members.append({"name": name, "spec": name, "recipe": zoo.get_recipe(name).to_dict(),
                                "checkpoints": []})
        planned = sorted(n for n in zoo.RECIPES if n.startswith(prefix))
        where = f"the zoo (shipped: {', '.join(zoo.names()) or 'none'}; recipes with this prefix: " \
                f"{', '.join(planned) or 'none'})"
    members = [m for m in members if "repeat_fraction" in m["recipe"]]
    if not members:
        raise FamilyNotFoundError(
            f"no trained member of family {str(family)!r} in {where}; train them with `interp zoo train NAME` "
            f"or pass a folder of member model folders (each with its metrics.json card)")
    for m in members:
        m["fraction"] = float(m["recipe"]["repeat_fraction"])
        m["seed"] = int(m["recipe"]["seed"])
    return members


def heldout_rows(recipe: dict, n_rows: int = 64, seed: int = 0) -> torch.Tensor:
    """Unique held-out rows of the family's corpus mixture (an RNG stream training never uses)."""
    from interp.zoo.world import World

    rng = np.random.default_rng([int(recipe["world_seed"]), 0x7E57, int(seed)])
    rows, _ = World(recipe["world_seed"]).make_batch(rng, recipe["mixture"], n_rows, recipe["seq_len"])
    return torch.from_numpy(rows)


def repeated_rows(recipe: dict, pool: int) -> torch.Tensor:
    """The repeated pool of a member with this seed (what repeated members saw many times)."""
    from interp.zoo.recipes import Recipe
    from interp.zoo.train import _RepeatPool
    from interp.zoo.world import World

    r = Recipe(**{**recipe, "repeat_pool": pool})
    return torch.from_numpy(_RepeatPool(World(r.world_seed), r).rows)


def lm_loss(model, ids: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Mean next-token loss of each row [n]."""
    out = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        with torch.no_grad():
            logits = model.forward(_tokens(chunk, model.device), use_interventions=False)
        out.append(_nll(logits, chunk).mean(1))
    return torch.cat(out)


def _member_numbers(model, recipe: dict, test: torch.Tensor, pool: torch.Tensor, cfg) -> dict:
    res = run(model, replace(cfg, causal=False))
    ind = res.scores["induction"]
    (l, h, best), = ind.top(1)
    return {"test_loss": float(lm_loss(model, test).mean()), "repeated_pool_loss": float(lm_loss(model, pool).mean()),
            "best_induction_score": best, "best_head": f"L{l}H{h}",
            "best_head_copying": float(res.scores["copying"].scores[l, h]),
            "max_prefix_matching": float(res.scores["prefix_matching"].scores.max()),
            "n_induction_heads": len(res.induction_heads), "copy_loss_first": res.loss["first"],
            "copy_loss_second": res.loss["second"], "copy_loss_ratio": res.loss["ratio"],
            "copy_loss_ratio_ci": res.loss["ratio_ci"], "induction_behaviour": res.has_induction_behaviour}


METRICS = (("test_loss", "unique held-out loss"), ("repeated_pool_loss", "loss on the repeated rows"),
           ("copy_loss_ratio", "copy loss ratio (2nd/1st copy)"), ("copy_loss_second", "second-copy loss"),
           ("best_induction_score", "best induction score"), ("best_head_copying", "copying of that head"))


@dataclass(frozen=True, eq=False)
class DamageResult:
    """Per-member measurements of a repeated-data family, aggregated by repeated fraction."""

    family: str
    members: list
    config: InductionConfig
    data: dict
    trajectories: dict = field(default_factory=dict)

    def by_fraction(self) -> dict:
        out = {}
        for f in sorted({m["fraction"] for m in self.members}):
            rows = [m for m in self.members if m["fraction"] == f]
            out[f] = {key: {"mean": float(np.mean([r[key] for r in rows])), "min": float(min(r[key] for r in rows)),
                            "max": float(max(r[key] for r in rows)), "seeds": [r["seed"] for r in rows],
                            "values": [r[key] for r in rows]} for key, _ in METRICS}
        return out

    def findings(self) -> dict:
        """What the numbers say, computed from them (control = fraction 0)."""
        agg = self.by_fraction()
        fracs = sorted(agg)
        out = {}
        if fracs[0] != 0.0 or len(fracs) < 2:
            return {"note": "no control (fraction 0) or a single fraction: no comparison"}
        ctrl = agg[0.0]
        for f in fracs[1:]:
            a = agg[f]
            out[f"f={f:g}"] = {
                "test_loss_change": a["test_loss"]["mean"] - ctrl["test_loss"]["mean"],
                "test_loss_worse_than_every_control_seed": a["test_loss"]["min"] > ctrl["test_loss"]["max"],
                "best_induction_change": a["best_induction_score"]["mean"] - ctrl["best_induction_score"]["mean"],
                "copy_ratio_change": a["copy_loss_ratio"]["mean"] - ctrl["copy_loss_ratio"]["mean"],
                "repeated_pool_loss_change": a["repeated_pool_loss"]["mean"] - ctrl["repeated_pool_loss"]["mean"],
            }
        out["control_has_induction"] = any(m["induction_behaviour"] for m in self.members if m["fraction"] == 0.0)
        return out

    def conclusion(self) -> str:
        """One sentence per measured effect, written from the numbers (not from the paper)."""
        f = self.findings()
        if "note" in f:
            return f["note"]
        parts = []
        for key, v in f.items():
            if not key.startswith("f="):
                continue
            spread = "beyond" if v["test_loss_worse_than_every_control_seed"] else "within"
            parts.append(f"{key}: unique test loss {v['test_loss_change']:+.4f} vs control ({spread} the seed spread), "
                         f"repeated-row loss {v['repeated_pool_loss_change']:+.2f}, best induction score "
                         f"{v['best_induction_change']:+.3f}, copy-loss ratio {v['copy_ratio_change']:+.3f}")
        if not f["control_has_induction"]:
            parts.append("the control shows no induction behaviour, so damage to induction heads cannot be measured "
                         "in this family (Hernandez et al.'s induction claim is untested here)")
        return "; ".join(parts)

    def summary(self) -> dict:
        return {"family": self.family, "conclusion": self.conclusion(), "members": self.members,
                "by_fraction": {f"{f:g}": v for f, v in self.by_fraction().items()},
                "findings": self.findings(), "trajectories": self.trajectories}

    def _caption(self, sep: str = "; ") -> str:
        agg = self.by_fraction()
        parts = []
        for f, a in agg.items():
            parts.append(f"f={f:.0%}: test loss {a['test_loss']['mean']:.3f} "
                         f"[{a['test_loss']['min']:.3f}, {a['test_loss']['max']:.3f}], "
                         f"copy ratio {a['copy_loss_ratio']['mean']:.3f}, best induction "
                         f"{a['best_induction_score']['mean']:.3f}, repeated-row loss {a['repeated_pool_loss']['mean']:.3f}")
        return "measured (mean [min, max] over seeds): " + sep.join(parts)

    def figure(self):
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=2, cols=3, subplot_titles=[t for _, t in METRICS])
        agg = self.by_fraction()
        fracs = sorted(agg)
        colors = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
        seeds = sorted({m["seed"] for m in self.members})
        for i, (key, title) in enumerate(METRICS):
            row, col = i // 3 + 1, i % 3 + 1
            x = [100 * f for f in fracs]
            mean = [agg[f][key]["mean"] for f in fracs]
            fig.add_trace(go.Scatter(
                x=x, y=mean, mode="lines", line={"color": "black"}, name="mean over seeds", showlegend=i == 0,
                error_y={"type": "data", "symmetric": False,
                         "array": [agg[f][key]["max"] - m for f, m in zip(fracs, mean)],
                         "arrayminus": [m - agg[f][key]["min"] for f, m in zip(fracs, mean)]}), row=row, col=col)
            for j, s in enumerate(seeds):
                pts = [m for m in self.members if m["seed"] == s]
                fig.add_trace(go.Scatter(x=[100 * m["fraction"] for m in pts], y=[m[key] for m in pts],
                                         mode="markers", marker={"color": colors[j % len(colors)], "size": 8},
                                         name=f"seed {s}", showlegend=i == 0), row=row, col=col)
            fig.update_xaxes(title_text="% of rows from the repeated pool", row=row, col=col)
        fig.update_layout(
            title={"text": f"Repeated-data family {self.family}: damage vs repetition<br><sup>{self._caption('<br>')}</sup>",
                   "font": {"size": 13}}, height=800, margin={"t": 170, "b": 120})
        fig.add_annotation(text=_wrap(self.conclusion(), 160), xref="paper", yref="paper", x=0, y=-0.16,
                           showarrow=False, align="left", font={"size": 11})
        return fig

    def trajectory_figure(self):
        from interp import plots

        if not self.trajectories:
            return None
        curves, x = {}, None
        for f, t in sorted(self.trajectories.items()):
            x = t["steps"]
            curves[f"f={float(f):.0%} best induction"] = t["best_induction_mean"]
            curves[f"f={float(f):.0%} test loss"] = t["test_loss_mean"]
        return plots.line_curves(x, curves, title="over training (mean over seeds): best induction score and "
                                 "unique held-out loss", x_title="training step", y_title="score / loss (nats)")


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "<br>".join(textwrap.wrap(text, width))


def damage_study(family: Union[str, os.PathLike], cfg: Optional[InductionConfig] = None, *,
                 test_rows: int = 64, test_seed: int = 0, trajectories: bool = True) -> DamageResult:
    """Measure every member of a repeated-data family (Hernandez et al. 2022 at toy scale).

    Per member: unique held-out loss, loss on the repeated rows, induction / copying scores and the
    copy loss on repeated random spans; across members: damage vs repeated fraction with seed spread.

    >>> res = damage_study("rep2l")                 # doctest: +SKIP
    >>> plots.save_html(res.figure(), "figures/induction/damage.html")  # doctest: +SKIP
    """
    cfg = replace(cfg or InductionConfig(), causal=False)
    members = family_members(family)
    ref = members[0]["recipe"]
    for m in members[1:]:
        for key in ("world_seed", "mixture", "seq_len"):
            if m["recipe"][key] != ref[key]:
                raise ValueError(f"member {m['name']} has {key}={m['recipe'][key]!r} but {members[0]['name']} has "
                                 f"{ref[key]!r}; a family must share its corpus to compare test losses")
    test = heldout_rows(ref, test_rows, test_seed)
    pool_size = max(int(m["recipe"]["repeat_pool"]) for m in members) or 16
    out, traj_rows = [], []
    for m in members:
        pool = repeated_rows(m["recipe"], pool_size)
        model, _, _ = load_checkpoint(m["spec"])
        model.name = m["name"]
        mcfg = replace(cfg, token_ids=world_content_tokens(m["spec"]))
        numbers = _member_numbers(model, m["recipe"], test, pool, mcfg)
        out.append({"name": m["name"], "fraction": m["fraction"], "seed": m["seed"], "spec": m["spec"], **numbers})
        if trajectories and m["checkpoints"]:
            for c in m["checkpoints"] + [m["spec"]]:
                ck, _, step = load_checkpoint(c)
                step = step if step is not None else int(m["recipe"]["steps"])
                res = run(ck, mcfg)
                traj_rows.append({"fraction": m["fraction"], "seed": m["seed"], "step": step,
                                  "best_induction": float(res.scores["induction"].scores.max()),
                                  "test_loss": float(lm_loss(ck, test).mean())})
    data = {"test_rows": test_rows, "test_seed": test_seed, "seq_len": ref["seq_len"], "repeated_pool": pool_size,
            "n_members": len(out), "induction_config": _config_record(cfg),
            "span_tokens": "each member's zoo-world content tokens where it has a world.json, else its vocabulary"}
    return DamageResult(str(family), out, cfg, data, _aggregate_trajectories(traj_rows))


def _aggregate_trajectories(rows: list) -> dict:
    out = {}
    for f in sorted({r["fraction"] for r in rows}):
        steps = sorted({r["step"] for r in rows if r["fraction"] == f})
        pick = lambda s, k: [r[k] for r in rows if r["fraction"] == f and r["step"] == s]  # noqa: E731
        out[f"{f:g}"] = {"steps": steps,
                         "best_induction_mean": [float(np.mean(pick(s, "best_induction"))) for s in steps],
                         "test_loss_mean": [float(np.mean(pick(s, "test_loss"))) for s in steps],
                         "best_induction_by_seed": [pick(s, "best_induction") for s in steps],
                         "test_loss_by_seed": [pick(s, "test_loss") for s in steps]}
    return out


# ------------------------------------------------------------------------------------- output


def _ints(text: str, what: str) -> tuple:
    try:
        return tuple(int(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, e.g. 8,13,21; got {text!r}") from None


def _config_record(cfg: InductionConfig) -> dict:
    d = cfg.to_dict()
    if d["token_ids"] is not None:
        d["token_ids"] = f"{len(d['token_ids'])} ids (the zoo world's content tokens)"
    return d


def write_report(out: Union[str, os.PathLike], result: InductionResult, *, tl: Optional[dict] = None,
                 trajectory: Optional[Trajectory] = None, command: Optional[str] = None) -> Path:
    """Figures (HTML) and summary.json with every measured number for one model."""
    from interp import plots
    from interp.report import write_summary

    out = Path(out)
    figs = result.figures()
    if trajectory is not None:
        figs.update(trajectory.figures())
    paths = [plots.save_html(fig, out / f"{name}.html") for name, fig in figs.items()]
    numbers = result.summary()
    c = result.causal or {}
    if c:
        numbers["ablation_top_heads"] = c["heads"]
        numbers["ablation_top_second_loss_ratio"] = c["top_ratio"]
        numbers["ablation_random_second_loss_ratios"] = [d["ratio"] for d in c["random"]]
        numbers["ablation_random_second_loss_ratio_max"] = c["random_ratio_max"]
        numbers["ablation_random_second_loss_ratio_mean"] = c["random_ratio_mean"]
        numbers["ablation_random_second_loss_ratio_median"] = c["random_ratio_median"]
        numbers["ablation_random_share_within_control"] = c["random_share_within_control"]
        numbers["ablation_mode"], numbers["ablation_rank_by"] = c["mode"], c.get("rank_by")
        if c.get("selection"):
            numbers["ablation_selection"] = c["selection"]
        if "top_by_pattern" in c:
            numbers["ablation_top_by_pattern"] = c["top_by_pattern"]
        if "single_head_ratios" in c:
            numbers["single_head_ablation_ratios"] = c["single_head_ratios"]
            numbers["located_by_role"], numbers["located_by_effect"] = c["located_by_role"], c["located_by_effect"]
        if "random_outside_circuit" in c:
            numbers["ablation_circuit"] = c["circuit"]
            numbers["ablation_random_outside_circuit_ratios"] = [d["ratio"] for d in c["random_outside_circuit"]]
            numbers["ablation_random_outside_circuit_ratio_max"] = c["random_outside_circuit_ratio_max"]
    if tl is not None:
        numbers["transformer_lens_agreement"] = {k: v for k, v in tl.items() if k not in ("tl_scores", "our_scores")}
        numbers["transformer_lens_scores"] = {"tl": tl.get("tl_scores"), "ours": tl.get("our_scores")}
    if trajectory is not None:
        numbers["trajectory"] = trajectory.to_dict()
    return write_summary(out, "induction", numbers, model=result.model, command=command,
                         seeds={"sequences": result.config.seed, "random_heads": result.config.seed},
                         data={**result.data, "config": _config_record(result.config)}, figures=paths)


def write_damage_report(out: Union[str, os.PathLike], result: DamageResult, command: Optional[str] = None) -> Path:
    from interp import plots
    from interp.report import write_summary

    out = Path(out)
    paths = [plots.save_html(result.figure(), out / "damage_vs_repetition.html")]
    traj = result.trajectory_figure()
    if traj is not None:
        paths.append(plots.save_html(traj, out / "damage_over_training.html"))
    return write_summary(out, "induction-damage", result.summary(), model=result.family, command=command,
                         seeds={"sequences": result.config.seed, "test_rows": result.data["test_seed"],
                                "members": sorted({m["seed"] for m in result.members})},
                         data=result.data, figures=paths)


def register(app) -> None:
    """Add `interp induction` and `interp induction-damage`."""
    import typer

    @app.command("induction")
    def induction_cmd(
        model: str = typer.Argument(..., help="HF id, local folder, .gguf file, zoo name, or a zoo *.pt state."),
        out: Path = typer.Option(Path("figures/induction"), "--out", help="Folder for figures and summary.json."),
        checkpoints: List[str] = typer.Option([], "--checkpoints", help="Checkpoints to track (repeatable or comma-separated), in training order."),
        n: int = typer.Option(16, "--n", help="Sequences per (span length, offset)."),
        lengths: str = typer.Option("8,13,21", "--lengths", help="Span lengths, comma-separated."),
        offsets: str = typer.Option("0,17", "--offsets", help="Prefix lengths before the first copy."),
        seed: int = typer.Option(0, "--seed"),
        top_k: int = typer.Option(2, "--top-k", help="Heads ablated in the causal check."),
        n_random: int = typer.Option(20, "--n-random", help="Random head sets ablated for comparison."),
        threshold: float = typer.Option(0.4, "--threshold"),
        ablation: str = typer.Option("mean", "--ablation", help=f"How heads are ablated: {', '.join(ABLATIONS)}."),
        rank_by: str = typer.Option("effect", "--rank-by", help="Top heads of the causal check: 'effect' (prefix-matching "
                                    "heads the copy needs most, chosen on other sequences) or 'pattern'."),
        compare_tl: bool = typer.Option(True, "--compare-tl/--no-compare-tl", help="Compare with transformer-lens head_detector."),
    ):
        """Induction heads of MODEL (scores, roles, copy loss, causal check), optionally over checkpoints."""
        from interp.report import command_line

        try:
            cfg = InductionConfig(n=n, span_lengths=_ints(lengths, "--lengths"), offsets=_ints(offsets, "--offsets"),
                                  seed=seed, top_k=top_k, n_random=n_random, threshold=threshold,
                                  ablation=ablation, rank_by=rank_by)
            m, _, _ = load_checkpoint(model)
            cfg = replace(cfg, token_ids=world_content_tokens(model))
            result = run(m, cfg)
            tl = tl_agreement(m, make_sequences(m, cfg)) if compare_tl else None
            specs = [c for item in checkpoints for c in item.split(",") if c]
            trajectory = track(specs + [model], cfg) if specs else None
            path = write_report(out, result, tl=tl, trajectory=trajectory, command=command_line())
        except (FileNotFoundError, ValueError, TypeError) as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2)
        s = result.summary()
        typer.echo(f"model: {result.model}; max prefix-matching {s['max_prefix_matching']:.3f} "
                   f"({s['max_prefix_matching_head']}); induction heads: {', '.join(s['induction_heads']) or 'none'}")
        typer.echo(f"copy loss first {result.loss['first']:.3f} second {result.loss['second']:.3f}; {result.verdict}")
        if result.causal:
            c = result.causal
            typer.echo(f"{c['mode']}-ablating {', '.join(c['heads'])} (top {len(c['heads'])} by {c.get('rank_by')}): "
                       f"second-copy loss x{c['top_ratio']:.2f}")
            if "top_by_pattern" in c:
                p = c["top_by_pattern"]
                typer.echo(f"top {len(p['heads'])} by pattern score ({', '.join(p['heads'])}): x{p['ratio']:.2f}")
            if c["random_ratio_max"] is not None:
                typer.echo(f"random head sets ({len(c['random'])}): mean x{c['random_ratio_mean']:.2f}, median "
                           f"x{c['random_ratio_median']:.2f}, max x{c['random_ratio_max']:.2f}; "
                           f"{100 * c['random_share_within_control']:.0f}% at most x{c['control_ratio']:.1f}")
            if c.get("random_outside_circuit_ratio_max") is not None:
                typer.echo(f"random heads outside the located circuit ({len(c['circuit'])} heads: induction / "
                           f"previous-token roles, or x{c.get('located_ratio', 1.2):.1f} when ablated alone): "
                           f"max x{c['random_outside_circuit_ratio_max']:.2f}")
        if tl is not None and tl.get("n_seqs"):
            typer.echo(f"transformer-lens head_detector: Spearman {tl['spearman_prefix_matching']:.3f} "
                       f"on {tl['n_seqs']} sequences")
        typer.echo(f"wrote {path}")

    @app.command("induction-damage")
    def damage_cmd(
        family: str = typer.Option(..., "--family", help="Zoo family prefix (e.g. rep2l) or a folder of member models."),
        out: Path = typer.Option(Path("figures/induction-damage"), "--out"),
        n: int = typer.Option(8, "--n", help="Sequences per (span length, offset)."),
        lengths: str = typer.Option("8,13,21", "--lengths"),
        offsets: str = typer.Option("0,17", "--offsets"),
        seed: int = typer.Option(0, "--seed"),
        test_rows: int = typer.Option(64, "--test-rows", help="Unique held-out rows for the test loss."),
        trajectories: bool = typer.Option(True, "--trajectories/--no-trajectories", help="Also score saved training checkpoints."),
    ):
        """Repeated-data damage: test loss, induction and copying vs repeated fraction (seed spread)."""
        from interp.report import command_line

        try:
            cfg = InductionConfig(n=n, span_lengths=_ints(lengths, "--lengths"), offsets=_ints(offsets, "--offsets"),
                                  seed=seed, causal=False)
            result = damage_study(family, cfg, test_rows=test_rows, trajectories=trajectories)
            path = write_damage_report(out, result, command=command_line())
        except (FileNotFoundError, ValueError, TypeError) as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2)
        typer.echo(result._caption())
        typer.echo(result.conclusion())
        typer.echo(f"wrote {path}")
