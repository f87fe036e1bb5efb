"""Factual-recall heads: head attribution and value-vector scaling (Yu, Merullo, Pavlick 2023).

Counterfactual prompts state a wrong answer in context and then ask (Q/A template):
"The capital of X is Y.\\nQ: What is the capital of X?\\nA:" (the zoo uses its own vocabulary).

1. Behaviour: greedy generation, the answer text cut at the template's stop strings; it
   contains the memorised answer gt -> "memorised", else the in-context answer ct ->
   "in_context", else "other" (counted, never dropped). Rates carry Wilson 95% intervals.
2. Head attribution (direct logit attribution): at the last position, each head's output
   z_h W_O[h] is passed through the final norm *as the model applies it* (the norm's scale
   is computed from the full residual and held fixed, LayerNorm's centring applied to every
   term) and dotted with W_U[ct] - W_U[gt]. Head terms + the non-head terms (embeddings,
   MLPs, biases, the norm's shift) sum to the model's logit(ct) - logit(gt). Averaged over
   prompts conditioned on the observed behaviour: positive heads on in-context prompts =
   in-context heads, negative heads on memorised prompts = memory heads.
3. Value scaling: z_h (linear in h's values, so this equals scaling the values, also under
   GQA) times alpha at every position and generation step. Sweeps (paper defaults): memory
   head alpha in [-5, 5] step 0.1, in-context head alpha in [-10, 10] step 0.5, re-scored
   by generation. Prompts and alphas are batched together: each batch row carries its own
   alpha (`RowScaleValues`). The best alpha is chosen on one split and reported on held-out
   prompts, with a random-head control at the same alpha, and saved as a `ScaleValues`
   recipe that ``interp generate --recipe`` applies.
4. Frequency: context-use rate per frequency bin of the queried subject.

    >>> import interp                                                            # doctest: +SKIP
    >>> from circuits.factual_recall import Config, run                          # doctest: +SKIP
    >>> result = run(interp.load("world-base"), Config(format="statement"))      # doctest: +SKIP
    >>> result.memory_heads[:3], result.best["in_context"]                        # doctest: +SKIP
"""

from __future__ import annotations

import math
import random
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import torch

from interp.backends.plan import Edit, EditContext, RunPlan
from interp.data.conflict import (ConflictDataError, ConflictSet, build_conflict_set, is_zoo_model,
                                  load_counts, load_items, load_templates, templates_for, zoo_counts,
                                  zoo_items)
from interp.heads import Head
from interp.interventions import Intervention, ScaleValues
from interp.report import draw_spread
from interp.results import HeadScores, data_hash

__all__ = ["Config", "RecallResult", "RowScaleValues", "classify", "wilson", "behaviour",
           "head_dla", "head_attribution", "scale_sweep", "check_alphas", "frequency_bins",
           "sign_agreement", "run", "register", "LABELS"]

LABELS = ("memorised", "in_context", "other")
MEMORY_ALPHAS = tuple(round(-5 + 0.1 * i, 10) for i in range(101))
CONTEXT_ALPHAS = tuple(round(-10 + 0.5 * i, 10) for i in range(41))


@dataclass(frozen=True)
class Config:
    """Settings of one run (seeded; same config and model -> same numbers)."""

    format: Optional[str] = None        # None: "statement" on zoo models (their training format), else "qa"
    n_per_subject: int = 3
    max_new_tokens: int = 4
    memory_alphas: tuple[float, ...] = MEMORY_ALPHAS
    context_alphas: tuple[float, ...] = CONTEXT_ALPHAS
    split: tuple[float, float, float] = (0.4, 0.3, 0.3)   # subjects: attribution / choose alpha / held out
    n_top: int = 3
    n_random: int = 5
    n_bins: int = 4
    min_group: int = 5            # fewest prompts of a behaviour to condition the attribution on it
    batch_size: int = 512
    seed: int = 0

    def __post_init__(self):
        check_alphas(self.memory_alphas)
        check_alphas(self.context_alphas)
        if len(self.split) != 3 or abs(sum(self.split) - 1) > 1e-6 or min(self.split) <= 0:
            raise ValueError(f"Config.split must be three positive fractions summing to 1, got {self.split}")
        if self.max_new_tokens < 1:
            raise ValueError(f"Config.max_new_tokens must be >= 1, got {self.max_new_tokens}")


def check_alphas(alphas) -> tuple[float, ...]:
    """Alphas as floats; NaN, inf or an empty list raise ValueError."""
    values = tuple(float(a) for a in alphas)
    if not values:
        raise ValueError("give at least one alpha, e.g. (0.0, 1.0, 2.0)")
    bad = [a for a in values if not math.isfinite(a)]
    if bad:
        raise ValueError(f"alphas must be finite numbers, got {bad[:3]}; drop NaN/inf from the sweep")
    return values


# --- behaviour --------------------------------------------------------------------------------

def classify(text: str, memorised: str, in_context: str, stop: Sequence[str] = (".",)) -> str:
    """'memorised' if the answer (text up to the first stop string) contains gt, else
    'in_context' if it contains ct, else 'other'. Whole-word, case-insensitive.

    >>> classify(" Paris. Q: What", "Paris", "Rome", stop=("Q:",))
    'memorised'
    >>> classify(" Rome is", "Paris", "Rome"), classify(" London", "Paris", "Rome")
    ('in_context', 'other')
    """
    cut = len(text)
    for s in stop:
        found = text.find(s)
        if found >= 0:
            cut = min(cut, found)
    answer = text[:cut]
    for label, target in (("memorised", memorised), ("in_context", in_context)):
        if re.search(r"(?<!\w)" + re.escape(target.strip()) + r"(?!\w)", answer, flags=re.IGNORECASE):
            return label
    return "other"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a rate k/n (95% by default).

    >>> [round(x, 3) for x in wilson(8, 10)]
    [0.49, 0.943]
    """
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def rates(labels: Sequence[str]) -> dict:
    """Rate and Wilson interval of each behaviour, and the counts."""
    n = len(labels)
    out = {"n": n}
    for label in LABELS:
        k = sum(1 for x in labels if x == label)
        out[label] = k / n if n else float("nan")
        out[f"{label}_ci"] = list(wilson(k, n))
        out[f"n_{label}"] = k
    return out


def behaviour(model, data: ConflictSet, *, interventions=None, max_new_tokens: int = 4,
              batch_size: int = 512) -> list[str]:
    """Label of each conflict prompt under greedy generation (see `classify`)."""
    return _labels(model, data.prompts(), data, list(range(len(data))), interventions,
                   max_new_tokens, batch_size)


def _labels(model, prompts, data, item_index, interventions, max_new_tokens, batch_size,
            row_scales: Optional[torch.Tensor] = None) -> list[str]:
    labels = []
    for start in range(0, len(prompts), batch_size):
        stop = start + batch_size
        iv = interventions
        if row_scales is not None:
            iv = RowScaleValues(row_scales[start:stop])
        gen = model.generate(prompts[start:stop], max_new_tokens=max_new_tokens, interventions=iv,
                             use_interventions=False)
        for text, i in zip(gen.texts, item_index[start:stop]):
            item = data.items[i]
            labels.append(classify(" " + text, item.memory_answer, item.context_answer, data.template.stop))
    return labels


# --- per-row value scaling ----------------------------------------------------------------------

class RowScaleValues(Intervention):
    """Scale head outputs z (= value vectors) by a different factor in every batch row.

    scales: [rows, n_layers, n_heads]; row r multiplies head (l, h) by scales[r, l, h]. It lets
    one batched forward (or generation) try many alphas, or many heads, at once. Not
    serialisable: the recipe a sweep finds is saved as a plain `ScaleValues`.
    """

    def __init__(self, scales: torch.Tensor):
        scales = torch.as_tensor(scales, dtype=torch.float32)
        if scales.dim() != 3:
            raise ValueError(f"scales must be [rows, n_layers, n_heads], got shape {tuple(scales.shape)}")
        if not bool(torch.isfinite(scales).all()):
            raise ValueError("scales must be finite numbers (no NaN/inf)")
        self.scales = scales

    def edits(self, model) -> list[Edit]:
        if tuple(self.scales.shape[1:]) != (model.n_layers, model.n_heads):
            raise ValueError(f"scales must be [rows, {model.n_layers}, {model.n_heads}] for this model, "
                             f"got {tuple(self.scales.shape)}")
        layers = [l for l in range(model.n_layers) if bool((self.scales[:, l] != 1).any())]
        return [Edit(l, "z", _row_scale_fn(self.scales[:, l])) for l in layers]

    def to_dict(self) -> dict:
        raise TypeError("RowScaleValues is a batched sweep device; save the chosen setting as ScaleValues")


def _row_scale_fn(scale: torch.Tensor):
    def edit(z: torch.Tensor, ctx: EditContext) -> torch.Tensor:
        if z.shape[0] != scale.shape[0]:
            raise ValueError(f"RowScaleValues has {scale.shape[0]} rows, the batch has {z.shape[0]}")
        return z * scale.to(device=z.device, dtype=z.dtype)[:, None, :, None]
    return edit


def _scales(model, rows: int, head: Head, alphas) -> torch.Tensor:
    scales = torch.ones(rows, model.n_layers, model.n_heads)
    scales[:, head.layer, head.head] = torch.as_tensor(alphas, dtype=torch.float32)
    return scales


def scale_sweep(model, data: ConflictSet, head, alphas, *, max_new_tokens: int = 4,
                batch_size: int = 512) -> dict:
    """Behaviour rates at every alpha for one head, prompts x alphas batched together."""
    (head,) = model.heads([head])
    alphas = check_alphas(alphas)
    prompts = data.prompts()
    n = len(prompts)
    rows_prompts = prompts * len(alphas)
    rows_items = list(range(n)) * len(alphas)
    row_alpha = [a for a in alphas for _ in range(n)]
    labels = _labels(model, rows_prompts, data, rows_items, None, max_new_tokens, batch_size,
                     row_scales=_scales(model, len(rows_prompts), head, row_alpha))
    per_alpha = [rates(labels[i * n:(i + 1) * n]) for i in range(len(alphas))]
    return {"head": str(head), "alphas": list(alphas), "rates": per_alpha,
            "n_prompts": n, "n_rows": len(rows_prompts)}


def best_alpha(sweep: dict, target: str, within: float = 0.10) -> tuple[float, dict]:
    """The least change (alpha closest to 1) whose `target` rate is within `within` of the best
    rate of the sweep: large scalings of any head disturb the model, so among settings that do
    about as well the mildest one is the steering recipe (and the fairest random-head control)."""
    pairs = [(a, r) for a, r in zip(sweep["alphas"], sweep["rates"]) if a != 1.0] or \
        list(zip(sweep["alphas"], sweep["rates"]))                  # alpha 1 is no change at all
    top = max(r[target] for _, r in pairs)
    alpha, r = min(((a, r) for a, r in pairs if r[target] >= top - within - 1e-9), key=lambda p: abs(p[0] - 1))
    return alpha, r


# --- direct logit attribution ---------------------------------------------------------------

def _norm_terms(norm: torch.nn.Module, resid: torch.Tensor):
    """The linear map the final norm applies to each residual term, with the norm's scale computed
    from the full residual [n, d_model] and held fixed, and its constant shift. Terms are
    [n, ..., d_model]. LayerNorm centres each term (the mean is linear); RMSNorm does not."""
    x = resid.float()
    weight = norm.weight.float()
    if isinstance(norm, torch.nn.LayerNorm):
        scale = (x.var(-1, unbiased=False) + norm.eps).sqrt()
        shift = norm.bias.float() if norm.bias is not None else torch.zeros_like(weight)
        centre = True
    else:
        eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
        if eps is None or getattr(norm, "bias", None) is not None:
            raise TypeError(f"head attribution supports LayerNorm and RMSNorm final norms, "
                            f"got {type(norm).__name__}")
        scale = (x.pow(2).mean(-1) + eps).sqrt()
        shift, centre = torch.zeros_like(weight), False

    def apply(t: torch.Tensor) -> torch.Tensor:
        t = t.float()
        if centre:
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
        raise ValueError(f"need one target and one foil id per prompt: {len(prompts)} prompts, "
                         f"{len(target_ids)} targets, {len(foil_ids)} foils")
    out = {"heads": [], "rest": [], "total": []}
    w_u = model.unembed.weight
    b_u = getattr(model.unembed, "bias", None)
    w_out = torch.stack([model.w_out(l) for l in range(model.n_layers)]).float()  # [L, H, d_head, d_model]
    for start in range(0, len(prompts), batch_size):
        sl = slice(start, start + batch_size)
        z, resid, logits = _last_position_run(model, prompts[sl])
        direction = (w_u[target_ids[sl]] - w_u[foil_ids[sl]]).float()          # [n, d_model]
        to_norm, shift = _norm_terms(model.final_norm, resid)
        per_head = torch.einsum("nlhd,lhdm->nlhm", z.float(), w_out)           # [n, L, H, d_model]
        heads = torch.einsum("nlhm,nm->nlh", to_norm(per_head), direction)
        rest_vec = resid.float() - per_head.sum((1, 2))
        rest = (to_norm(rest_vec) * direction).sum(-1) + direction @ shift
        if b_u is not None:
            rest = rest + (b_u[target_ids[sl]] - b_u[foil_ids[sl]]).float()
        rows = torch.arange(len(logits))
        out["heads"].append(heads.detach())
        out["rest"].append(rest.detach())
        out["total"].append((logits[rows, target_ids[sl]] - logits[rows, foil_ids[sl]]).float().detach())
    return {k: torch.cat(v) for k, v in out.items()}


def _last_position_run(model, prompts):
    """z at the last position [n, L, H, d_head], the final residual there [n, d_model], logits."""
    captured = {}
    hook = model.final_norm.register_forward_pre_hook(
        lambda module, args: captured.__setitem__("resid", args[0][:, -1].detach()))
    try:
        plan = RunPlan(model._edits(None, False), capture=[(l, "z") for l in range(model.n_layers)])
        with torch.no_grad():
            logits = model.run_plan(model.to_tokens(prompts), plan).logits[:, -1]
    finally:
        hook.remove()
    zs = plan.captured()
    z = torch.stack([zs[l, "z"][:, -1] for l in range(model.n_layers)], dim=1)
    return z, captured["resid"], logits


def head_attribution(model, data: ConflictSet, labels: Sequence[str], *, min_group: int = 5,
                     batch_size: int = 256, seed: int = 0) -> dict[str, HeadScores]:
    """Mean DLA onto logit(in-context) - logit(memorised), per behaviour group and over all."""
    if len(labels) != len(data):
        raise ValueError(f"need one behaviour label per prompt: {len(labels)} labels, {len(data)} prompts")
    dla = head_dla(model, data.prompts(), data.context_ids, data.memory_ids, batch_size)
    out = {}
    groups = {"all": [True] * len(labels)}
    groups.update({label: [x == label for x in labels] for label in LABELS})
    for name, keep in groups.items():
        idx = [i for i, k in enumerate(keep) if k]
        if len(idx) < (1 if name == "all" else min_group):
            continue
        out[name] = HeadScores(dla["heads"][idx].mean(0), model=model.name,
                               method=f"direct logit attribution: logit(in-context) - logit(memorised), "
                                      f"mean over {name} prompts",
                               data_hash=data_hash(data.prompts()), seed=seed,
                               meta={"n_prompts": len(idx), "group": name,
                                     "sign": "positive = in-context head, negative = memory head",
                                     "mean_total_logit_diff": float(dla["total"][idx].mean()),
                                     "mean_non_head_terms": float(dla["rest"][idx].mean())})
    return out


def top_heads(attr: dict[str, HeadScores], role: str, k: int) -> list[Head]:
    """Memory heads (most negative on memorised prompts) or in-context heads (most positive on
    in-context prompts); the pooled average stands in when a group is too small."""
    group = "memorised" if role == "memory" else "in_context"
    scores = attr.get(group, attr["all"])
    picked = scores.top(min(k, scores.n_scored), largest=(role != "memory"))
    return [Head(l, h) for l, h, s in picked if (s < 0 if role == "memory" else s > 0)]


# --- causal checks ------------------------------------------------------------------------------

def _mean_logit_diff(model, data: ConflictSet, row_scales: torch.Tensor, n_blocks: int, batch_size: int):
    """Mean logit(ct) - logit(gt) of each block of rows (block b = all prompts under setting b)."""
    prompts = data.prompts() * n_blocks
    ct = torch.tensor(data.context_ids * n_blocks)
    gt = torch.tensor(data.memory_ids * n_blocks)
    values = []
    for start in range(0, len(prompts), batch_size):
        sl = slice(start, start + batch_size)
        logits = model.forward(prompts[sl], interventions=RowScaleValues(row_scales[sl]),
                               use_interventions=False)[:, -1]
        rows = torch.arange(logits.shape[0])
        values.append((logits[rows, ct[sl]] - logits[rows, gt[sl]]).float())
    return torch.cat(values).reshape(n_blocks, len(data)).mean(1)


def sign_agreement(model, data: ConflictSet, heads: Sequence[Head], attribution: HeadScores,
                   batch_size: int = 512) -> dict:
    """Does each head's DLA sign match the sign of its causal effect, LD(alpha=1) - LD(alpha=0),
    with LD = logit(in-context) - logit(memorised)? (Ablating the head = scaling it to 0.)"""
    heads = list(heads)
    if not heads:
        return {"heads": {}, "agree": 0, "n": 0}
    n = len(data)
    scales = torch.ones(n * (len(heads) + 1), model.n_layers, model.n_heads)
    for b, head in enumerate(heads):
        scales[(b + 1) * n:(b + 2) * n, head.layer, head.head] = 0.0
    means = _mean_logit_diff(model, data, scales, len(heads) + 1, batch_size)
    table, agree = {}, 0
    for b, head in enumerate(heads):
        effect = float(means[0] - means[b + 1])
        dla = float(attribution.scores[head.layer, head.head])
        ok = (effect > 0) == (dla > 0)
        agree += ok
        table[str(head)] = {"dla": dla, "causal_effect_of_scaling_0_to_1": effect, "signs_agree": ok}
    return {"heads": table, "agree": agree, "n": len(heads)}


def random_head_control(model, data: ConflictSet, head: Head, alpha: float, n_draws: int, seed: int,
                        max_new_tokens: int, batch_size: int, exclude=()) -> dict:
    """Rates with a random other head at the same alpha (several draws), change in points."""
    pool = [h for h in model.all_heads() if h != head and h not in set(exclude)]
    rng = random.Random(f"random-head-{seed}-{head}-{alpha}")
    draws = rng.sample(pool, min(n_draws, len(pool)))
    n = len(data)
    scales = torch.ones(n * (len(draws) + 1), model.n_layers, model.n_heads)
    for b, h in enumerate(draws):
        scales[(b + 1) * n:(b + 2) * n, h.layer, h.head] = alpha
    labels = _labels(model, data.prompts() * (len(draws) + 1), data, list(range(n)) * (len(draws) + 1),
                     None, max_new_tokens, batch_size, row_scales=scales)
    base = rates(labels[:n])
    rows = []
    for b, h in enumerate(draws):
        r = rates(labels[(b + 1) * n:(b + 2) * n])
        rows.append({"head": str(h), "delta_points": {x: 100 * (r[x] - base[x]) for x in LABELS}})
    per_draw = [max(abs(d["delta_points"][x]) for x in LABELS) for d in rows]
    mean = {x: sum(d["delta_points"][x] for d in rows) / max(len(rows), 1) for x in LABELS}
    return {"alpha": alpha, "baseline": base, "draws": rows, "mean_delta_points": mean,
            "max_abs_delta_points": max(per_draw, default=0.0), **draw_spread(per_draw)}


# --- frequency --------------------------------------------------------------------------------

def frequency_bins(data: ConflictSet, labels: Sequence[str], counts: dict, n_bins: int = 4) -> list[dict]:
    """Context-use rate per quantile bin of the queried subject's training frequency."""
    subjects = sorted({i.subject for i in data.items}, key=lambda s: (counts.get(s, 0.0), s))
    missing = [s for s in subjects if s not in counts]
    if missing:
        warnings.warn(f"{len(missing)} subjects have no frequency in the count table (taken as 0): "
                      f"{missing[:5]}", stacklevel=2)
    n_bins = max(1, min(n_bins, len(subjects)))
    out = []
    for b in range(n_bins):
        members = set(subjects[b * len(subjects) // n_bins:(b + 1) * len(subjects) // n_bins])
        labs = [l for item, l in zip(data.items, labels) if item.subject in members]
        freqs = [counts.get(s, 0.0) for s in members]
        r = rates(labs)
        out.append({"bin": b, "n_subjects": len(members), "freq_min": min(freqs), "freq_max": max(freqs),
                    "context_rate": r["in_context"], "context_ci": r["in_context_ci"],
                    "memorised_rate": r["memorised"], "other_rate": r["other"], "n_prompts": r["n"]})
    return out


# --- the whole analysis -----------------------------------------------------------------------

@dataclass
class RecallResult:
    """Behaviour, attributed heads, sweeps, chosen settings, controls, frequency, provenance."""

    model: str
    config: Config
    baseline: dict
    attribution: dict
    memory_heads: list[Head]
    in_context_heads: list[Head]
    sweeps: dict
    best: dict
    held_out: dict
    controls: dict
    signs: dict
    frequency: list
    data: dict
    timings: dict = field(default_factory=dict)

    def recipes(self) -> dict[str, ScaleValues]:
        return {goal: ScaleValues(b["head"], b["alpha"]) for goal, b in self.best.items()}

    def must_show(self) -> dict:
        """The issue's claims as measured numbers and pass/fail against its thresholds."""
        base = self.held_out.get("baseline", {})
        out = {"baseline_held_out": {x: base.get(x) for x in LABELS}}
        for goal in ("in_context", "memorised"):
            if goal not in self.best:
                out[goal] = {"error": "no head of that role was found"}
                continue
            after, control = self.held_out[goal], self.controls[goal]
            worst = max(abs(v) for v in control["mean_delta_points"].values())
            out[goal] = {"head": self.best[goal]["head"], "alpha": self.best[goal]["alpha"],
                         "rate_before": base.get(goal), "rate_after": after[goal],
                         "rate_after_ci": after[f"{goal}_ci"], "raised": after[goal] > base.get(goal, 1),
                         "random_head_mean_abs_move_points": worst,
                         "random_head_max_abs_move_points": control["max_abs_delta_points"],
                         "random_head_median_abs_move_points": control["median_abs_move_points"],
                         "random_head_share_within_5_points": control["share_of_draws_within_5_points"],
                         "random_le_5": worst <= 5}
            if "outside_located" in control:
                o = control["outside_located"]
                w_out = max(abs(v) for v in o["mean_delta_points"].values())
                out[goal].update(random_outside_located_mean_abs_move_points=w_out,
                                 random_outside_located_max_abs_move_points=o["max_abs_delta_points"],
                                 random_outside_located_le_5=w_out <= 5)
        out["in_context"]["ge_80"] = out["in_context"].get("rate_after", 0) >= 0.8
        out["sign_agreement"] = f"{self.signs.get('agree', 0)}/{self.signs.get('n', 0)}"
        out["context_rate_per_frequency_bin"] = [(b["freq_min"], b["freq_max"], b["context_rate"])
                                                 for b in self.frequency]
        return out

    def numbers(self) -> dict:
        return {"must_show": self.must_show(), "baseline_held_out": self.held_out.get("baseline"), "baseline_attribution_split": self.baseline,
                "memory_heads": [str(h) for h in self.memory_heads],
                "in_context_heads": [str(h) for h in self.in_context_heads],
                "best": self.best, "held_out": self.held_out, "random_head_controls": self.controls,
                "sign_agreement": self.signs, "frequency_bins": self.frequency,
                "sweeps": {k: {"head": s["head"], "alphas": s["alphas"],
                               **{x: [r[x] for r in s["rates"]] for x in LABELS}}
                           for k, s in self.sweeps.items()},
                "timings_s": self.timings}

    def figures(self) -> dict:
        from interp import plots

        figs = {}
        main = self.attribution.get("all")
        if main is not None:
            figs["recall_attribution"] = plots.head_heatmap(
                main.scores, title=f"{self.model}: DLA onto logit(in-context) - logit(memorised)",
                highlight={"memory heads": [(h.layer, h.head) for h in self.memory_heads],
                           "in-context heads": [(h.layer, h.head) for h in self.in_context_heads]},
                value_name="DLA")
        for name, s in self.sweeps.items():
            figs[f"recall_sweep_{name}"] = plots.line_curves(
                s["alphas"], {x: [r[x] for r in s["rates"]] for x in LABELS},
                title=f"{self.model}: scaling {s['head']} ({name}), {s['n_prompts']} prompts",
                x_title="alpha", y_title="rate")
        if self.frequency:
            labels = [f"{b['freq_min']:.3g}-{b['freq_max']:.3g}" for b in self.frequency]
            fig = plots.line_curves(list(range(len(labels))),
                                    {"context-use rate": [b["context_rate"] for b in self.frequency],
                                     "memorised rate": [b["memorised_rate"] for b in self.frequency]},
                                    title=f"{self.model}: behaviour per subject-frequency bin",
                                    x_title="frequency bin (training mentions)", y_title="rate")
            fig.data[0].error_y = {"type": "data", "symmetric": False,
                                   "array": [b["context_ci"][1] - b["context_rate"] for b in self.frequency],
                                   "arrayminus": [b["context_rate"] - b["context_ci"][0] for b in self.frequency]}
            fig.update_xaxes(tickvals=list(range(len(labels))), ticktext=labels)
            figs["recall_frequency"] = fig
        return figs


def build_data(model, cfg: Config, items=None, templates=None) -> dict:
    templates = templates or templates_for(model)
    fmt = cfg.format or ("statement" if is_zoo_model(model) else "qa")
    if fmt not in templates:
        raise ConflictDataError(f"unknown format {fmt!r}; templates: {', '.join(templates)}")
    if items is None:
        items = zoo_items(cfg.n_per_subject, seed=cfg.seed, counts=zoo_counts(model.name)[0])
    full = build_conflict_set(model, items, templates[fmt], batch_size=cfg.batch_size)
    attr_s, sweep_s, test_s = full.split_subjects(cfg.split, cfg.seed)
    return {"full": full, "attribution": full.of_subjects(attr_s), "sweep": full.of_subjects(sweep_s),
            "test": full.of_subjects(test_s), "subjects": {"attribution": attr_s, "sweep": sweep_s, "test": test_s}}


def choose_settings(model, data: ConflictSet, sweeps: dict, gen: dict) -> dict:
    """Per goal (in-context, memorised): the head and alpha with the highest rate on `data`."""
    base = rates(behaviour(model, data, **gen)) if sweeps else {}
    best = {}
    for goal in ("in_context", "memorised"):
        candidates = [(best_alpha(s, goal), s["head"], name) for name, s in sweeps.items()]
        if candidates:
            (alpha, r), head, name = max(candidates, key=lambda c: c[0][1][goal])
            best[goal] = {"head": head, "alpha": alpha, "sweep": name, "rate_on_sweep_split": r[goal],
                          "baseline_on_sweep_split": base[goal], "raises_rate_on_sweep_split": r[goal] > base[goal]}
    return best


def evaluate_settings(model, data: ConflictSet, best: dict, exclude, cfg: Config, gen: dict,
                      located: Sequence[Head] = ()):
    """Held-out rates under each chosen setting, and the random-head control at its alpha: heads
    outside `exclude` (the top heads), and, when `located` is given, also heads outside every
    head attribution locates (``outside_located``: a specificity check in redundant models)."""
    held_out, controls = {"baseline": rates(behaviour(model, data, **gen))}, {}
    for goal, b in best.items():
        head = Head.parse(b["head"])
        held_out[goal] = rates(behaviour(model, data, interventions=ScaleValues(head, b["alpha"]), **gen))
        controls[goal] = random_head_control(model, data, head, b["alpha"], cfg.n_random, cfg.seed,
                                             cfg.max_new_tokens, cfg.batch_size, exclude=exclude)
        outside = set(located) | set(exclude)
        if located and len(model.all_heads()) - len(outside | {head}) >= 1:
            controls[goal]["outside_located"] = random_head_control(
                model, data, head, b["alpha"], cfg.n_random, cfg.seed, cfg.max_new_tokens, cfg.batch_size,
                exclude=sorted(outside))
    return held_out, controls


def _counts(model, items, counts):
    if counts is not None:
        return counts, "user count table"
    if items is None:
        return zoo_counts(model.name)
    return {i.subject: i.frequency for i in items if i.frequency is not None}, "items' frequency field"


def run(model, cfg: Config = Config(), items=None, templates=None, counts: Optional[dict] = None) -> RecallResult:
    """Behaviour, head attribution, alpha sweeps, held-out evaluation, controls, frequency bins."""
    d = build_data(model, cfg, items, templates)
    for part in ("attribution", "sweep", "test"):
        if len(d[part]) == 0:
            raise ConflictDataError(f"the {part!r} split is empty; give more items or known subjects")
    gen = dict(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    t0 = time.perf_counter()
    labels = behaviour(model, d["attribution"], **gen)
    attribution = head_attribution(model, d["attribution"], labels, min_group=cfg.min_group, seed=cfg.seed)
    memory_heads = top_heads(attribution, "memory", cfg.n_top)
    context_heads = top_heads(attribution, "in_context", cfg.n_top)
    t1 = time.perf_counter()
    sweeps = {}
    if memory_heads:
        sweeps["memory_head"] = scale_sweep(model, d["sweep"], memory_heads[0], cfg.memory_alphas, **gen)
    if context_heads:
        sweeps["in_context_head"] = scale_sweep(model, d["sweep"], context_heads[0], cfg.context_alphas, **gen)
    t2 = time.perf_counter()
    best = choose_settings(model, d["sweep"], sweeps, gen)
    located = [Head(l, h) for l, h in attribution["all"].strongest(0.1)]
    held_out, controls = evaluate_settings(model, d["test"], best, memory_heads + context_heads, cfg, gen,
                                           located=located)
    signs = sign_agreement(model, d["test"], memory_heads + context_heads, attribution["all"], cfg.batch_size)
    counts, source = _counts(model, items, counts)
    freq = frequency_bins(d["full"], behaviour(model, d["full"], **gen), counts, cfg.n_bins) if counts else []
    info = {"set": d["full"].summary(), "subjects": d["subjects"], "frequency_source": source,
            **{f"n_{p}": len(d[p]) for p in ("attribution", "sweep", "test")}}
    return RecallResult(model.name, cfg, rates(labels), attribution, memory_heads, context_heads, sweeps,
                        best, held_out, controls, signs, freq, info,
                        {"behaviour_and_attribution": t1 - t0, "sweeps": t2 - t1})


def write_outputs(result: RecallResult, out) -> Path:
    """Figures (HTML), the found recipes (JSON) and summary.json."""
    from interp import plots
    from interp.report import write_summary

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = [plots.save_html(fig, out / f"{name}.html") for name, fig in result.figures().items()]
    for goal, recipe in result.recipes().items():
        recipe.to_json(out / f"recipe_{goal}.json")
    for name, scores in result.attribution.items():
        scores.to_json(out / f"attribution_{name}.json")
    cfg = asdict(result.config)
    cfg["memory_alphas"] = [min(cfg["memory_alphas"]), max(cfg["memory_alphas"]), len(cfg["memory_alphas"])]
    cfg["context_alphas"] = [min(cfg["context_alphas"]), max(cfg["context_alphas"]), len(cfg["context_alphas"])]
    return write_summary(out, "factual_recall", result.numbers(), model=result.model,
                         seeds={"seed": result.config.seed}, data={**result.data, "config": cfg},
                         figures=figures)


def register(app) -> None:
    """Add ``interp recall MODEL [--items FILE] [--counts FILE] --out DIR``."""
    import typer

    @app.command("recall")
    def recall_command(
        model: str = typer.Argument(..., help="HF id, local folder, .gguf file or zoo name."),
        out: Path = typer.Option(Path("figures/recall"), "--out", help="Folder for figures, recipes, summary.json."),
        items: Optional[Path] = typer.Option(None, "--items", help="JSONL items (subject, memory_answer, context_answer)."),
        counts: Optional[Path] = typer.Option(None, "--counts", help="Subject frequency table (JSON or CSV)."),
        templates: Optional[Path] = typer.Option(None, "--templates", help="JSON list of templates."),
        fmt: Optional[str] = typer.Option(None, "--format", help="Template name (qa, statement, or one of "
                                          "--templates); default: statement on zoo models, qa otherwise."),
        n_per_subject: int = typer.Option(3, "--n-per-subject"),
        max_new_tokens: int = typer.Option(4, "--max-new-tokens"),
        n_random: int = typer.Option(5, "--n-random"),
        alpha_step: float = typer.Option(0.0, "--alpha-step",
                                         help="Coarser sweeps: step for both ranges (0 = paper defaults)."),
        seed: int = typer.Option(0, "--seed"),
    ):
        """Factual-recall heads: head attribution and value scaling (Yu, Merullo, Pavlick 2023)."""
        from interp.cli import _fail, _load

        try:
            m = _load(model)
            extra = {}
            if alpha_step:
                if not math.isfinite(alpha_step) or alpha_step <= 0:
                    raise ValueError(f"--alpha-step must be a positive number, got {alpha_step}")
                extra = {"memory_alphas": _grid(-5, 5, alpha_step), "context_alphas": _grid(-10, 10, alpha_step)}
            cfg = Config(format=fmt, n_per_subject=n_per_subject, max_new_tokens=max_new_tokens,
                         n_random=n_random, seed=seed, **extra)
            user_items = load_items(items) if items is not None else None
            if user_items is None and not is_zoo_model(m):
                raise ConflictDataError("this model is not a zoo model: give --items FILE (JSONL)")
            result = run(m, cfg, user_items, load_templates(templates) if templates else None,
                         load_counts(counts) if counts is not None else None)
            path = write_outputs(result, out)
        except (FileNotFoundError, ValueError, TypeError) as err:
            _fail(str(err))
        typer.echo(f"memory heads: {', '.join(map(str, result.memory_heads))}")
        typer.echo(f"in-context heads: {', '.join(map(str, result.in_context_heads))}")
        for goal, b in result.best.items():
            typer.echo(f"best for {goal}: scale {b['head']} by {b['alpha']} -> held-out "
                       f"{result.held_out[goal][goal]:.2f} (recipe_{goal}.json)")
        typer.echo(f"summary: {path}")


def _grid(lo: float, hi: float, step: float) -> tuple[float, ...]:
    n = int(round((hi - lo) / step))
    return tuple(round(lo + step * i, 10) for i in range(n + 1))
