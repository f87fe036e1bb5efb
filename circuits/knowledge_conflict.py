"""Memory heads vs context heads, located by path patching, and PH3 pruning (Jin et al. 2024).

On a knowledge-conflict prompt ("the capital of Avaria is Rusk . the capital of Avaria is")
the model answers from memory (o_m) or copies the context (o_c). The metric is the logit
difference at the last position, LD = logit(o_m) - logit(o_c) (or p(o_m) - p(o_c)).

1. Path patching (`interp.patching.path_patch`, receivers = logits): for each head h, run the
   conflict prompt with every other head frozen at its conflict-run output, and h's output
   taken from a reference run, so the change reaches the logits only through the residual
   stream. The reference ("corrupted") is the same template with another subject and another
   context answer: it carries nothing about this item's o_m or o_c. A head's score is
   ``LD(conflict) - LD(path from reference)``: what its direct path adds to LD.
   Positive = memory head (it pushes o_m over o_c); negative = context head (it pushes o_c).
   (``source="clean"`` uses the no-context prompt as the reference instead, as the paper's
   wording has it: then the score is the head's push in the conflict run minus its push
   without context, and memory heads that do not change with the context score ~0.)
   Only the last position reaches the logits along this path, so prompts of different token
   lengths are aligned at their last token (left padding).
2. PH3: prune (zero) the first k context heads to push the model toward memory, or the first k
   memory heads to push it toward the context; k is the fewest heads within 10 points of the best
   on a validation split of subjects, from {1, 3, 5, 7, 9, 15} (capped by the heads of that sign).
   "First" follows ``Config.order``: "path" is the path-patching rank (the paper); "validation"
   (default) takes the located heads of that sign (|score| >= 10% of the largest) and orders them
   by how much pruning each alone moves the target rate on the validation split, because a
   head's direct path to the logits can understate what pruning it does through later heads
   (on the zoo's world-base the top memory head by path, L0H4, moves context use 7 points; the
   second, L0H5, moves it 58). Memory-usage and
   context-usage rates (greedy next token == first token of o_m / o_c) before and after, on
   held-out subjects, in the locating format and in the other format; and a control that
   prunes k random heads (several draws).
3. Attribution patching (one forward + one backward) approximates the same scores; its
   Spearman rank agreement with exact path patching is reported.

    >>> import interp                                                             # doctest: +SKIP
    >>> from circuits.knowledge_conflict import Config, run                       # doctest: +SKIP
    >>> result = run(interp.load("world-base"), Config(seed=0))                   # doctest: +SKIP
    >>> result.memory_heads, result.context_heads, result.numbers()["ph3"]        # doctest: +SKIP
"""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch

from interp.data.conflict import (ConflictDataError, ConflictSet, build_conflict_set, is_zoo_model,
                                  load_items, load_templates, templates_for, zoo_counts, zoo_items)
from interp.heads import Head
from interp.interventions import PruneHeads
from interp.patching import attribution_patch, logit_diff, path_patch
from interp.report import draw_spread
from interp.results import HeadScores, data_hash
from interp.tokens import Tokens

__all__ = ["Config", "ConflictResult", "KTooLargeError", "aligned_tokens", "conflict_metric",
           "locate_heads", "attribution_scores", "usage_rates", "spearman", "choose_k", "prune_eval",
           "random_control", "run", "register"]

K_GRID = (1, 3, 5, 7, 9, 15)
SIGN_NOTE = ("score = LD(conflict) - LD(conflict with the head's path to the logits from the reference "
             "run), LD = logit(memory answer) - logit(context answer) at the last position: positive = "
             "memory head (its direct path favours the memorised answer), negative = context head "
             "(favours the context answer)")


class KTooLargeError(ValueError):
    """A number of heads to prune larger than the model (or the located group) has."""


@dataclass(frozen=True)
class Config:
    """Settings of one PH3 run (seeded; same config and model -> same numbers)."""

    formats: Optional[tuple[str, str]] = None        # locate on the first, test transfer on the second;
                                                     # None: the first two of the model's templates
    n_per_subject: int = 3
    source: str = "corrupted"                        # reference run of path patching: corrupted | clean
    metric: str = "logit_diff"                       # logit_diff | prob_diff
    k_grid: Optional[tuple[int, ...]] = None        # None: K_GRID capped by the model's heads
    split: tuple[float, float, float] = (0.4, 0.3, 0.3)   # subjects: locate / choose k / held out
    n_random: int = 5
    located_frac: float = 0.1                        # |path effect| >= this x the largest: a located head
    order: str = "validation"                        # which located heads to prune first: "path" (by path
                                                     # effect, as the paper) or "validation" (by the
                                                     # target-rate change of pruning each alone, val split)
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self):
        if self.source not in ("corrupted", "clean"):
            raise ValueError(f"Config.source must be 'corrupted' or 'clean', got {self.source!r}")
        if self.order not in ("path", "validation"):
            raise ValueError(f"Config.order must be 'path' or 'validation', got {self.order!r}")
        if self.metric not in ("logit_diff", "prob_diff"):
            raise ValueError(f"Config.metric must be 'logit_diff' or 'prob_diff', got {self.metric!r}")
        if self.k_grid is not None and (not self.k_grid or any(
                not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in self.k_grid)):
            raise ValueError(f"Config.k_grid must be positive ints, got {self.k_grid!r}")
        if len(self.split) != 3 or abs(sum(self.split) - 1) > 1e-6 or min(self.split) <= 0:
            raise ValueError(f"Config.split must be three positive fractions summing to 1, got {self.split}")


# --- metric and alignment --------------------------------------------------------------------

def conflict_metric(data: ConflictSet, kind: str = "logit_diff"):
    """Per-prompt memory-minus-context metric on last-position logits [n, vocab]."""
    if kind == "logit_diff":
        return logit_diff(data.memory_ids, data.context_ids)
    mem, ctx = torch.tensor(data.memory_ids), torch.tensor(data.context_ids)

    def prob_diff(logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits.float(), -1)
        rows = torch.arange(probs.shape[0], device=probs.device)
        return probs[rows, mem.to(probs.device)] - probs[rows, ctx.to(probs.device)]
    return prob_diff


def aligned_tokens(model, base: Sequence[str], source: Sequence[str]) -> tuple[Tokens, Tokens]:
    """Both prompt lists left-padded to one width, so their last tokens share a position."""
    if len(base) != len(source):
        raise ValueError(f"need one source prompt per base prompt, got {len(base)} and {len(source)}")
    both = model.to_tokens(list(base) + list(source))
    n = len(base)
    return (Tokens(both.input_ids[:n], both.attention_mask[:n]),
            Tokens(both.input_ids[n:], both.attention_mask[n:]))


def _reference(data: ConflictSet, source: str, seed: int, model=None) -> list[str]:
    return data.corrupted_prompts(seed, model) if source == "corrupted" else data.clean_prompts()


def _groups(model, base: list[str], ref: list[str]) -> list[list[int]]:
    """Prompt indices grouped so that each group needs no padding (base and reference of one
    token length); pairs of unequal lengths form the last group, patched with left padding."""
    lengths = [len(t) for t in model.tokenizer(base + ref, add_special_tokens=False)["input_ids"]]
    n = len(base)
    by_len: dict[int, list[int]] = {}
    padded = []
    for i in range(n):
        if lengths[i] == lengths[n + i]:
            by_len.setdefault(lengths[i], []).append(i)
        else:
            padded.append(i)
    return list(by_len.values()) + ([padded] if padded else [])


def _grouped(model, data: ConflictSet, source: str, seed: int, run_one) -> HeadScores:
    """Run a patching function per padding-free group; average the scores weighted by size.

    Pairs that need padding are patched as one left-padded group when `interp.patching` takes
    padded `Tokens`; where it cannot yet, they are left out with a warning and counted."""
    base, ref = data.prompts(), _reference(data, source, seed, model)
    total, parts, scores, used = None, [], None, 0
    for idx in _groups(model, base, ref):
        base_t, ref_t = aligned_tokens(model, [base[i] for i in idx], [ref[i] for i in idx])
        padded = base_t.has_padding or ref_t.has_padding
        if not padded:
            base_t, ref_t = base_t.input_ids, ref_t.input_ids   # plain ids: no mask needed
        try:
            scores = run_one(base_t, ref_t, data.subset(idx))
        except TypeError as err:
            if not padded or "data_hash" not in str(err):
                raise
            warnings.warn(f"{len(idx)} prompt pairs need padding, which this version of "
                          "interp.patching cannot take; they are left out of the head scores",
                          stacklevel=3)
            parts.append({"n_prompts": len(idx), "padded": True, "left_out": True})
            continue
        weighted = scores.scores * len(idx)
        total = weighted if total is None else total + weighted
        used += len(idx)
        parts.append({"n_prompts": len(idx), "padded": padded, "base_metric": scores.meta.get("base_metric")})
    if total is None:
        raise ConflictDataError("no prompt pair could be patched (all needed padding); use a "
                                "reference of the same token length (source='corrupted')")
    return HeadScores(total / used, model=model.name, method=scores.method, data_hash=data_hash([base, ref]),
                      meta={"groups": parts, "n_prompts": used, "n_left_out": len(data) - used})


def locate_heads(model, data: ConflictSet, *, source: str = "corrupted", metric: str = "logit_diff",
                 batch_size: int = 256, seed: int = 0) -> HeadScores:
    """Memory (+) / context (-) score of every head by exact path patching to the logits."""
    effects = _grouped(model, data, source, seed, lambda b, r, d: path_patch(
        model, b, r, conflict_metric(d, metric), batch_size=batch_size))
    return _as_memory_scores(effects, f"path patching -> logits ({source} reference, {metric})", seed)


def attribution_scores(model, data: ConflictSet, *, source: str = "corrupted",
                       metric: str = "logit_diff", seed: int = 0) -> HeadScores:
    """First-order (attribution patching, path to logits) estimate of `locate_heads`."""
    effects = _grouped(model, data, source, seed, lambda b, r, d: attribution_patch(
        model, b, r, conflict_metric(d, metric), path=True))
    return _as_memory_scores(effects, f"attribution patching -> logits ({source} reference, {metric})", seed)


def _as_memory_scores(effects: HeadScores, method: str, seed: int) -> HeadScores:
    return HeadScores(-effects.scores, model=effects.model, method=method, data_hash=effects.data_hash,
                      seed=seed, meta={**effects.meta, "sign": SIGN_NOTE})


def ranked(scores: HeadScores, role: str) -> list[Head]:
    """Heads of one sign, strongest first: role "memory" (> 0) or "context" (< 0)."""
    flat = [(Head(l, h), float(scores.scores[l, h])) for l in range(scores.n_layers)
            for h in range(scores.n_heads) if bool(scores.mask[l, h])]
    if role == "memory":
        return [h for h, s in sorted(flat, key=lambda x: -x[1]) if s > 0]
    if role == "context":
        return [h for h, s in sorted(flat, key=lambda x: x[1]) if s < 0]
    raise ValueError(f"role must be 'memory' or 'context', got {role!r}")


def located(scores: HeadScores, frac: float = 0.1) -> list[Head]:
    """Heads whose |path effect| is at least `frac` of the largest, of either sign: the heads
    path patching says carry the conflict (the pool that a specificity control must avoid)."""
    return [Head(l, h) for l, h in scores.strongest(frac)]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two equal-shape score grids (NaNs dropped, ties averaged)."""
    import pandas as pd

    x, y = a.reshape(-1).double(), b.reshape(-1).double()
    keep = ~(torch.isnan(x) | torch.isnan(y))
    rx = pd.Series(x[keep].numpy()).rank().to_numpy()
    ry = pd.Series(y[keep].numpy()).rank().to_numpy()
    return float(torch.corrcoef(torch.from_numpy(np.stack([rx, ry])))[0, 1])


# --- behaviour --------------------------------------------------------------------------------

def usage_rates(model, data: ConflictSet, interventions=None, batch_size: int = 256) -> dict:
    """Share of conflict prompts whose greedy next token is o_m / o_c / something else."""
    prompts, picks = data.prompts(), []
    for start in range(0, len(prompts), batch_size):
        logits = model.forward(prompts[start:start + batch_size], interventions=interventions,
                               use_interventions=False)
        picks.append(logits[:, -1].argmax(-1).cpu())
    pick = torch.cat(picks)
    mem = pick == torch.tensor(data.memory_ids)
    ctx = pick == torch.tensor(data.context_ids)
    n = len(prompts)
    return {"memory": float(mem.float().mean()), "context": float(ctx.float().mean()),
            "other": float((~(mem | ctx)).float().mean()), "n": n}


def _check_k(k: int, available: int, n_total: int, role: str) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise KTooLargeError(f"k must be a positive int, got {k!r}")
    if k > n_total:
        raise KTooLargeError(f"k={k} is larger than the model's {n_total} heads; use k <= {n_total}")
    if k > available:
        raise KTooLargeError(f"k={k} asks for more {role} heads than the {available} located; "
                             f"use k <= {available}")


def choose_k(model, val: ConflictSet, heads: list[Head], target: str, k_grid=K_GRID,
             batch_size: int = 256, within: float = 0.10) -> tuple[int, dict]:
    """The smallest k in `k_grid` (capped by len(heads)) whose target rate on the validation
    split is within `within` of the best k's: the fewest heads that do (nearly) the whole job,
    since every extra head pruned is a chance to hit something else."""
    n_total = model.n_layers * model.n_heads
    grid = sorted({k for k in k_grid if k <= min(len(heads), n_total)})
    for k in k_grid:
        if k > n_total:
            raise KTooLargeError(f"k={k} in the k grid is larger than the model's {n_total} heads; "
                                 f"use k <= {n_total}")
    if not grid:
        raise KTooLargeError(f"no k in {tuple(k_grid)} fits the {len(heads)} located heads")
    curve = {k: usage_rates(model, val, PruneHeads(heads[:k]), batch_size)[target] for k in grid}
    top = max(curve.values())
    return min(k for k in grid if curve[k] >= top - within), curve


def prune_eval(model, data: ConflictSet, heads: list[Head], batch_size: int = 256) -> dict:
    """Usage rates before and after pruning `heads`, and the change in points."""
    before = usage_rates(model, data, None, batch_size)
    after = usage_rates(model, data, PruneHeads(heads), batch_size)
    delta = {r: 100 * (after[r] - before[r]) for r in ("memory", "context", "other")}
    return {"before": before, "after": after, "delta_points": delta}


def random_control(model, data: ConflictSet, k: int, exclude: Sequence[Head], n_draws: int,
                   seed: int, batch_size: int = 256) -> dict:
    """Prune k random heads (not in `exclude`), `n_draws` times: change in rates, in points."""
    pool = [h for h in model.all_heads() if h not in set(exclude)]
    _check_k(k, len(pool), len(model.all_heads()), "non-located")
    rng = random.Random(f"random-heads-{seed}-{k}")
    before = usage_rates(model, data, None, batch_size)
    draws = []
    for _ in range(n_draws):
        heads = rng.sample(pool, k)
        after = usage_rates(model, data, PruneHeads(heads), batch_size)
        draws.append({"heads": [str(h) for h in heads],
                      "delta_points": {r: 100 * (after[r] - before[r]) for r in ("memory", "context")}})
    mean = {r: sum(d["delta_points"][r] for d in draws) / n_draws for r in ("memory", "context")}
    per_draw = [max(abs(d["delta_points"][r]) for r in ("memory", "context")) for d in draws]
    return {"k": k, "n_draws": n_draws, "mean_delta_points": mean, "max_abs_delta_points": max(per_draw),
            **draw_spread(per_draw), "draws": draws}


# --- the whole analysis -----------------------------------------------------------------------

@dataclass
class ConflictResult:
    """Located heads, PH3 outcomes, controls and the attribution check, with provenance."""

    model: str
    config: Config
    scores: HeadScores
    attribution: HeadScores
    memory_heads: list[Head]
    context_heads: list[Head]
    ph3: dict
    data: dict
    timings: dict
    k_curves: dict = field(default_factory=dict)

    def must_show(self) -> dict:
        """The issue's claims as measured numbers (points) and pass/fail against its thresholds."""
        out = {}
        for direction, rate in (("toward_memory", "memory"), ("toward_context", "context")):
            r = self.ph3.get(direction, {})
            if "held_out" not in r:
                out[direction] = {"error": r.get("error", "not run")}
                continue
            row = {"k": r["k"], "rate": rate}
            for part in ("held_out", "other_format"):
                rise = r[part]["delta_points"][rate]
                control = r[f"random_heads_{part}"]
                worst = max(abs(v) for v in control["mean_delta_points"].values())
                row[part] = {"before": r[part]["before"][rate], "after": r[part]["after"][rate],
                             "rise_points": rise, "rise_ge_20": rise >= 20,
                             "random_mean_abs_move_points": worst, "random_max_abs_move_points":
                             control["max_abs_delta_points"],
                             "random_median_abs_move_points": control["median_abs_move_points"],
                             "random_share_within_5_points": control["share_of_draws_within_5_points"],
                             "random_le_5": worst <= 5}
                outside = r.get(f"random_outside_located_{part}")
                if outside is not None:
                    w_out = max(abs(v) for v in outside["mean_delta_points"].values())
                    row[part].update(random_outside_located_mean_abs_move_points=w_out,
                                     random_outside_located_max_abs_move_points=outside["max_abs_delta_points"],
                                     random_outside_located_le_5=w_out <= 5)
            out[direction] = row
        return out

    def numbers(self) -> dict:
        return {
            "must_show": self.must_show(),
            "memory_heads": [str(h) for h in self.memory_heads],
            "context_heads": [str(h) for h in self.context_heads],
            "top_scores": {str(Head(l, h)): s for l, h, s in self.scores.top(min(10, self.scores.n_scored))},
            "sign": SIGN_NOTE,
            "ph3": self.ph3,
            "k_curves_validation": self.k_curves,
            "attribution_spearman_vs_path_patching": spearman(self.attribution.scores, self.scores.scores),
            "timings_s": self.timings,
        }

    def figure(self):
        from interp import plots

        grid = self.scores.scores
        return plots.head_heatmap(
            grid, title=f"{self.model}: memory (+) vs context (-) heads, path patching to logits",
            highlight={"memory heads (pruned toward context)": [(h.layer, h.head) for h in self.memory_heads],
                       "context heads (pruned toward memory)": [(h.layer, h.head) for h in self.context_heads]},
            value_name="LD(conflict) - LD(patched)")

    def k_figure(self):
        from interp import plots

        ks = sorted({k for curve in self.k_curves.values() for k in curve})
        curves = {name: [curve.get(k, float("nan")) for k in ks] for name, curve in self.k_curves.items()}
        return plots.line_curves(ks, curves, title="PH3 validation: target rate vs number of pruned heads",
                                 x_title="k", y_title="rate")


def resolve_formats(cfg: Config, templates: dict) -> Config:
    """``cfg`` with its formats set: by default the first two of the templates."""
    if cfg.formats is not None:
        return cfg
    if len(templates) < 2:
        raise ConflictDataError(f"PH3 needs two prompt formats (locate, transfer); templates: {', '.join(templates)}")
    return replace(cfg, formats=tuple(templates)[:2])


def build_sets(model, cfg: Config, items=None, templates=None) -> dict:
    """Conflict sets per format from the model's own memory, split by subject."""
    templates = templates or templates_for(model)
    cfg = resolve_formats(cfg, templates)
    for name in cfg.formats:
        if name not in templates:
            raise ConflictDataError(f"unknown format {name!r}; templates: {', '.join(templates)}")
    if items is None:
        items = zoo_items(cfg.n_per_subject, seed=cfg.seed, counts=zoo_counts(model.name)[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sets = {name: build_conflict_set(model, items, templates[name], batch_size=cfg.batch_size)
                for name in cfg.formats}
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=2)
    first = sets[cfg.formats[0]]
    locate_s, val_s, test_s = first.split_subjects(cfg.split, cfg.seed)
    return {"sets": sets, "locate": first.of_subjects(locate_s), "val": first.of_subjects(val_s),
            "test": first.of_subjects(test_s),
            "test_other_format": sets[cfg.formats[1]].of_subjects(test_s),
            "subjects": {"locate": locate_s, "val": val_s, "test": test_s}}


def validation_order(model, val: ConflictSet, scores: HeadScores, role: str, target: str, frac: float,
                     batch_size: int = 256) -> list[Head]:
    """The located `role` heads (|path effect| >= `frac` of the largest), ordered by how much
    pruning each one alone raises the `target` rate on the validation split (path rank breaks
    ties). Path patching measures a head's direct path to the logits; pruning also removes its
    effect through later heads, which is what PH3 acts on (a layer-0 head can matter far more
    than its direct path shows)."""
    keep = set(located(scores, frac))
    candidates = [h for h in ranked(scores, role) if h in keep]
    gain = {h: usage_rates(model, val, PruneHeads([h]), batch_size)[target] for h in candidates}
    return sorted(candidates, key=lambda h: -gain[h])       # stable: path rank among equals


def ph3_direction(model, scores: HeadScores, data: dict, role: str, target: str, cfg: Config) -> dict:
    """Prune the first k `role` heads (order: `cfg.order`; k chosen on the validation split for
    the `target` rate): rates before/after on held-out subjects and on the other format,
    random-heads controls."""
    heads = ranked(scores, role)
    if cfg.order == "validation" and heads:
        heads = validation_order(model, data["val"], scores, role, target, cfg.located_frac, cfg.batch_size)
    if not heads:
        return {"error": f"no {role} heads located (no head of that sign)"}
    grid = cfg.k_grid or tuple(k for k in K_GRID if k <= model.n_layers * model.n_heads)
    k, curve = choose_k(model, data["val"], heads, target, grid, cfg.batch_size)
    pruned = heads[:k]
    out = {"pruned": [str(h) for h in pruned], "k": k, "k_validation_curve": curve, "order": cfg.order,
           "candidates": [str(h) for h in heads]}
    circuit = sorted(set(located(scores, cfg.located_frac)) | set(pruned))
    out["located_heads"] = [str(h) for h in circuit]
    for part, key in (("held_out", "test"), ("other_format", "test_other_format")):
        out[part] = prune_eval(model, data[key], pruned, cfg.batch_size)
        out[f"random_heads_{part}"] = random_control(model, data[key], k, pruned, cfg.n_random, cfg.seed,
                                                     cfg.batch_size)
        # specificity: random heads that path patching says carry nothing (outside every located head)
        if len(model.all_heads()) - len(circuit) >= k:
            out[f"random_outside_located_{part}"] = random_control(model, data[key], k, circuit, cfg.n_random,
                                                                   cfg.seed, cfg.batch_size)
    return out


def run(model, cfg: Config = Config(), items=None, templates=None) -> ConflictResult:
    """Locate memory/context heads, choose k, prune, control, and check attribution patching."""
    cfg = resolve_formats(cfg, templates or templates_for(model))
    data = build_sets(model, cfg, items, templates)
    for part in ("locate", "val", "test", "test_other_format"):
        if len(data[part]) == 0:
            raise ConflictDataError(f"the {part!r} split is empty ({ {k: len(v) for k, v in data['subjects'].items()} } "
                                    "subjects); give more items or known subjects")
    t0 = time.perf_counter()
    scores = locate_heads(model, data["locate"], source=cfg.source, metric=cfg.metric,
                          batch_size=cfg.batch_size, seed=cfg.seed)
    t1 = time.perf_counter()
    attribution = attribution_scores(model, data["locate"], source=cfg.source, metric=cfg.metric, seed=cfg.seed)
    t2 = time.perf_counter()
    ph3, curves, chosen = {}, {}, {}
    for direction, role, target in (("toward_memory", "context", "memory"), ("toward_context", "memory", "context")):
        ph3[direction] = ph3_direction(model, scores, data, role, target, cfg)
        if "k" in ph3[direction]:
            curves[f"{target} rate, pruning {role} heads"] = ph3[direction]["k_validation_curve"]
            chosen[role] = list(model.heads(ph3[direction]["pruned"]))
    info = {name: s.summary() for name, s in data["sets"].items()}
    info.update({f"n_{part}": len(data[part]) for part in ("locate", "val", "test", "test_other_format")})
    info["subjects"] = data["subjects"]
    return ConflictResult(model.name, cfg, scores, attribution, chosen.get("memory", []),
                          chosen.get("context", []), ph3, info,
                          {"path_patching": t1 - t0, "attribution_patching": t2 - t1}, curves)


# --- command line -----------------------------------------------------------------------------

def register(app) -> None:
    """Add ``interp conflict MODEL [--items FILE] [--k ...] --out DIR``."""
    import typer

    @app.command("conflict")
    def conflict_command(
        model: str = typer.Argument(..., help="HF id, local folder, .gguf file or zoo name."),
        out: Path = typer.Option(Path("figures/conflict"), "--out", help="Folder for figures and summary.json."),
        items: Optional[Path] = typer.Option(None, "--items", help="JSONL items (subject, memory_answer, context_answer)."),
        templates: Optional[Path] = typer.Option(None, "--templates", help="JSON list of templates (default: built in)."),
        formats: str = typer.Option("", "--formats", help="Locating format, transfer format (default: the "
                                    "model's first two: statement,spaced for zoo models, statement,qa otherwise)."),
        k: List[int] = typer.Option([], "--k", help="Candidate k (repeatable); default 1 3 5 7 9 15."),
        source: str = typer.Option("corrupted", "--source", help="Path-patching reference: corrupted | clean."),
        metric: str = typer.Option("logit_diff", "--metric", help="logit_diff | prob_diff."),
        n_per_subject: int = typer.Option(3, "--n-per-subject", help="Zoo items per subject."),
        n_random: int = typer.Option(5, "--n-random", help="Random-head control draws."),
        seed: int = typer.Option(0, "--seed"),
        order: str = typer.Option("validation", "--order", help="Which located heads to prune first: "
                                  "validation (each head's pruning effect on the validation split) | "
                                  "path (path-patching rank, as the paper)."),
    ):
        """Memory vs context heads by path patching, and PH3 pruning (Jin et al. 2024)."""
        from interp.cli import _fail, _load

        try:
            m = _load(model)
            cfg = Config(formats=tuple(formats.split(",")) if formats else None, n_per_subject=n_per_subject, source=source,
                         metric=metric, k_grid=tuple(k) or None, n_random=n_random, seed=seed, order=order)
            user_items = load_items(items) if items is not None else None
            if user_items is None and not is_zoo_model(m):
                raise ConflictDataError("this model is not a zoo model: give --items FILE (JSONL)")
            result = run(m, cfg, user_items, load_templates(templates) if templates else None)
            path = write_outputs(result, out)
        except (FileNotFoundError, ValueError, TypeError) as err:
            _fail(str(err))
        typer.echo(f"pruned memory heads: {', '.join(map(str, result.memory_heads))}")
        typer.echo(f"pruned context heads: {', '.join(map(str, result.context_heads))}")
        typer.echo(f"summary: {path}")


def write_outputs(result: ConflictResult, out) -> Path:
    """Figures (HTML) and summary.json with every number of the result."""
    from interp import plots
    from interp.report import write_summary

    out = Path(out)
    figures = [plots.save_html(result.figure(), out / "conflict_heads.html")]
    if result.k_curves:
        figures.append(plots.save_html(result.k_figure(), out / "conflict_k_validation.html"))
    result.scores.to_json(out / "conflict_scores.json")
    return write_summary(out, "knowledge_conflict", result.numbers(), model=result.model,
                         seeds={"seed": result.config.seed}, data={**result.data, "config": asdict(result.config)},
                         figures=figures)
