"""Entity-tracking circuit (Prakash et al. ICLR 2024): path patching, faithfulness, DCM, CMAP.

Task: ``the apple is in box F , the key is in box Q , ... . box Q contains the`` -> ``key``.
The circuit is found backwards from the logits by exact path patching, group by group. Base
run = clean prompt, source run = a corrupt prompt (another sample whose correct segment is
elsewhere, its query label replaced by an absent label). A sender's score is the relative
change in p(correct) when only its path to the receivers carries the corrupt value (all other
heads frozen); the most negative heads form the group:

    A value fetchers        -> logits                    (last token)
    B position transmitters -> A's queries               (last token)
    C position detectors    -> B's values                (query label token)
    D structure readers     -> C's values                (earlier occurrence of the label)

Heads whose removal costs < 1% accuracy are then pruned (minimality). Faithfulness = accuracy
with every non-circuit head mean-ablated / full accuracy; random circuits of the same group
sizes give the floor. DCM (`interp.dcm`) learns which heads carry the positional, object and
box-label information; CMAP (`interp.cmap`) patches each group from a second model (e.g. the
fine-tuned one) into the base at the group's position and reports the share of the accuracy
gap it recovers. A model at chance on the task gets no circuit, only that verdict.

How few heads suffice, whatever path patching finds: `learned_circuit` learns a hard-concrete
gate per head and prunes the learned set while separate validation prompts keep the target;
`greedy_circuit` eliminates heads one (or a share) at a time from every head.

    >>> import interp                                                         # doctest: +SKIP
    >>> res = run(interp.load("world-base"), Config(n_prompts=300))           # doctest: +SKIP
    >>> res.circuit.heads("value fetcher"), res.faithfulness                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import random
import weakref
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import torch

from interp.circuit import Circuit
from interp.data.boxes import (DESIDERATA, ZOO_TEMPLATE, BoxDataset, BoxTemplate, box_dataset, corrupt,
                               default_n_boxes, desiderata, single_token_id)
from interp.heads import Head
from interp.interventions import Intervention, PruneHeads
from interp.patching import Receivers, path_patch
from interp.results import HeadScores, data_hash
from interp.tokens import Tokens

__all__ = ["Config", "EntityTrackingResult", "GROUPS", "accuracy", "group_scores", "select_group",
           "discover", "receiver_group", "prune_minimal", "greedy_circuit", "circuit_accuracy", "faithfulness",
           "random_faithfulness", "cmap_table", "dcm_groups", "circuit_figure", "run", "register"]

# (key, role, receiver site of the path into the previous group, position name)
GROUPS = (("A", "value fetcher", None, "last"),
          ("B", "position transmitter", "q", "last"),
          ("C", "position detector", "v", "query label"),
          ("D", "structure reader", "v", "earlier label"))
_ROLE = {key: role for key, role, _, _ in GROUPS}
ABLATIONS = ("mean", "position-mean")
METRICS = ("prob", "logit_diff")
MASK_LOSSES = ("ce", "logit_diff")     # task losses of learned_circuit


@dataclass(frozen=True)
class Config:
    """Sizes, thresholds and seeds of one entity-tracking analysis (paper values where stated)."""

    n_prompts: int = 300            # path-patching prompts (paper: 300)
    n_eval: int = 300               # held-out prompts for accuracy / faithfulness / CMAP
    n_reference: int = 200          # prompts whose mean head outputs replace ablated heads
    n_boxes: Optional[int] = None   # None: 4 on the zoo's world models (trained on 2-6), else the paper's 7
    threshold: float = 0.05         # min relative drop in the metric to join a group
    metric: str = "prob"            # path-patching metric: "prob" = p(correct) (paper); "logit_diff" = logit of
                                    # the correct object - mean logit of the prompt's other objects (does not
                                    # saturate when the model is sure: single-head effects stay visible)
    max_per_group: int = 8
    prune_cost: float = 0.01        # minimality: drop heads whose removal costs less accuracy
    n_random: int = 10
    dcm_pairs: int = 1000           # paper: 2000, split 50/25/25
    dcm_lambda: float = 0.01
    dcm_lr: float = 0.1
    dcm_epochs: int = 2
    batch_size: int = 64
    seed: int = 0
    template: BoxTemplate = ZOO_TEMPLATE
    objects: Optional[tuple] = None
    labels: Optional[tuple] = None
    ablation: str = "mean"          # "mean" (PruneHeads.with_means) or "position-mean"
    greedy: bool = False            # also search the smallest head set keeping `greedy_target` (slow: ~n^2/2 evals)
    greedy_target: float = 0.9
    learned: bool = False           # also learn a gate per head (learned_circuit; minutes, not hours)
    learned_lambdas: tuple = (0.1, 0.15, 0.2, 0.25, 0.3)
    learned_epochs: int = 20
    learned_loss: str = "ce"        # "ce" (-log p(correct)) or "logit_diff"
    learned_refine: bool = True     # prune each learned set by backward elimination, stopping on validation prompts
    backend: Optional[str] = None

    def __post_init__(self):
        for name in ("n_prompts", "n_eval", "n_reference", "n_random", "max_per_group", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Config.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.threshold < 1 or not 0 <= self.prune_cost < 1:
            raise ValueError("Config.threshold and Config.prune_cost are fractions in [0, 1)")
        if self.metric not in METRICS:
            raise ValueError(f"Config.metric must be one of {METRICS}, got {self.metric!r}")
        if self.ablation not in ABLATIONS:
            raise ValueError(f"Config.ablation must be one of {ABLATIONS}, got {self.ablation!r}")
        if self.learned_loss not in MASK_LOSSES:
            raise ValueError(f"Config.learned_loss must be one of {MASK_LOSSES}, got {self.learned_loss!r}")
        if self.dcm_pairs and self.dcm_pairs < 8:
            raise ValueError(f"Config.dcm_pairs must be 0 (skip DCM) or >= 8, got {self.dcm_pairs}")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["template"] = asdict(self.template)
        return json.loads(json.dumps(data))  # plain JSON values (tuples -> lists), as it reads back


@dataclass(frozen=True)
class EntityTrackingResult:
    """Everything one run measured; `circuit` is None when the model is at chance."""

    model: str
    config: Config
    full_accuracy: float
    chance: float
    at_chance: bool
    circuit: Optional[Circuit] = None
    scores: dict = field(default_factory=dict)          # group key -> HeadScores (relative effect)
    pruned: tuple = ()
    circuit_accuracy: Optional[float] = None
    faithfulness: Optional[float] = None
    random_faithfulness: tuple = ()
    dcm: dict = field(default_factory=dict)             # desideratum -> DCMResult
    dcm_overlap: dict = field(default_factory=dict)
    cmap: Optional[dict] = None
    note: str = ""
    n_heads_total: int = 1
    finetuned: Optional[str] = None
    finetuned_accuracy: Optional[float] = None
    greedy: Optional[dict] = None                       # greedy_circuit(...) when Config.greedy
    learned: Optional[dict] = None                      # learned_circuit(...) when Config.learned

    @property
    def head_share(self) -> Optional[float]:
        return None if self.circuit is None else len(self.circuit.heads()) / self.n_heads_total

    def numbers(self) -> dict:
        """The numbers a summary needs (JSON-ready apart from tensors)."""
        out = {"full_accuracy": self.full_accuracy, "chance": self.chance, "at_chance": self.at_chance,
               "note": self.note}
        if self.finetuned is not None:
            out.update(finetuned=self.finetuned, finetuned_accuracy=self.finetuned_accuracy)
        if self.circuit is not None:
            rf = list(self.random_faithfulness)
            out.update({
                "circuit": {k: [str(h) for h in self.circuit.heads(role)] for k, role in _ROLE.items()},
                "group_sizes": {k: len(self.circuit.heads(role)) for k, role in _ROLE.items()},
                "n_circuit_heads": len(self.circuit.heads()), "n_heads_total": self.n_heads_total,
                "head_share": self.head_share, "pruned_by_minimality": list(self.pruned),
                "circuit_accuracy": self.circuit_accuracy, "faithfulness": self.faithfulness,
                "random_faithfulness": rf, "random_faithfulness_mean": sum(rf) / len(rf) if rf else None,
                "random_faithfulness_max": max(rf) if rf else None})
        if self.dcm:
            out["dcm"] = {k: r.to_dict() for k, r in self.dcm.items()}
            out["dcm_overlap"] = self.dcm_overlap
        if self.cmap is not None:
            out["cmap"] = self.cmap
        if self.greedy is not None:
            out["greedy_circuit"] = self.greedy
        if self.learned is not None:
            best = self.learned["best"]
            out["learned_circuit"] = self.learned
            out["learned_smallest_at_target"] = None if best is None else {
                "n_heads": best["n_heads"], "head_share": best["n_heads"] / self.n_heads_total,
                "heads": best["heads"], "faithfulness_validation": best["faithfulness_validation"],
                "faithfulness_held_out": best["faithfulness_held_out"],
                "random_faithfulness_mean": (sum(best["random_faithfulness"]) / len(best["random_faithfulness"])
                                             if best.get("random_faithfulness") else None)}
        return out


# --- accuracy --------------------------------------------------------------------------------

def accuracy(model, data: BoxDataset, interventions=None, *, batch_size: int = 64, backend=None) -> float:
    """Share of prompts whose last-position argmax is the correct object."""
    hits = 0
    for start in range(0, len(data), batch_size):
        rows = slice(start, start + batch_size)
        with torch.no_grad():
            logits = model.forward(list(data.prompts[rows]), interventions=interventions, backend=backend)
        hits += int((logits[:, -1].argmax(-1).cpu() == data.answer_ids[rows]).sum())
    return hits / len(data)


def _chance(n_boxes: int, n: int) -> tuple[float, float]:
    """Chance accuracy (a random box's object) and the bar a model must clear (3 binomial SE)."""
    p = 1.0 / n_boxes
    return p, p + 3 * math.sqrt(p * (1 - p) / n)


# --- discovery -------------------------------------------------------------------------------

def _prob_metric(answer_ids: torch.Tensor):
    def metric(logits: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits.float().softmax(-1)[rows, answer_ids.to(logits.device)]
    return metric


def _other_object_ids(model, data: BoxDataset) -> torch.Tensor:
    """[n, n_boxes - 1] token ids of each prompt's objects other than the answer."""
    ids = {}
    return torch.tensor([[ids.setdefault(o, single_token_id(model.tokenizer, o)) for i, o in enumerate(s.objects)
                          if i != s.query] for s in data.samples])


def _logit_diff(logits: torch.Tensor, answers: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """logit(correct object) - mean logit of the prompt's other objects, per row."""
    logits = logits.float()
    rows = torch.arange(logits.shape[0], device=logits.device)
    other = logits.gather(1, others.to(logits.device)).mean(-1)
    return logits[rows, answers.to(logits.device)] - other


def _logit_diff_metric(model, data: BoxDataset):
    others = _other_object_ids(model, data)
    return lambda logits: _logit_diff(logits, data.answer_ids, others)


def _metric(model, data: BoxDataset, kind: str):
    return _prob_metric(data.answer_ids) if kind == "prob" else _logit_diff_metric(model, data)


_METRIC_NAME = {"prob": "p(correct)", "logit_diff": "logit diff (correct - other objects)"}


def _receivers(key: str, previous: list[Head], data: BoxDataset):
    if key == "A":
        return "logits"
    site = {"B": "q", "C": "v", "D": "v"}[key]
    positions = {"B": data.last_pos, "C": data.query_pos, "D": data.label_pos}[key]
    return Receivers(previous, site, positions=positions.tolist())


def group_scores(model, data: BoxDataset, corrupt_data: BoxDataset, key: str, previous=(), *,
                 batch_size: int = 64, backend=None, metric: str = "prob") -> HeadScores:
    """Relative change in the metric (p(correct) or the logit difference) from each sender's
    path into group `key`'s receivers."""
    receivers = _receivers(key, list(previous), data)
    effects = path_patch(model, list(data.prompts), list(corrupt_data.prompts), _metric(model, data, metric),
                         receivers=receivers, batch_size=batch_size, backend=backend)
    base = effects.meta["base_metric"]
    return HeadScores(effects.scores / max(base, 1e-12), model=model.name,
                      method=f"entity tracking group {key} ({_ROLE[key]}): {effects.method}, "
                             f"relative {_METRIC_NAME[metric]}",
                      data_hash=data_hash([list(data.prompts), list(corrupt_data.prompts)]),
                      meta={f"base_{metric}": base, "n_prompts": len(data), "group": key, "metric": metric})


def select_group(scores: HeadScores, threshold: float, max_heads: int, exclude=()) -> list[Head]:
    """Heads with relative drop >= threshold (most negative first), at most `max_heads`."""
    exclude = set(exclude)
    ranked = [(float(v), Head(l, h)) for l, h, v in scores.top(scores.n_scored, largest=False)]
    return [h for v, h in ranked if v <= -threshold and h not in exclude][:max_heads]


def receiver_group(key: str, groups: dict) -> Optional[str]:
    """Which group's heads receive group `key`'s paths: the previous group, except that C
    reads into A when B is empty (a model whose value fetchers' queries are positional
    moves the query label's content to the last token through A's values instead)."""
    if key == "A":
        return None
    if key == "C" and not groups.get("B"):
        return "A"
    return "ABCD"["ABCD".index(key) - 1]


def discover(model, data: BoxDataset, corrupt_data: BoxDataset, cfg: Config) -> tuple[dict, dict]:
    """Groups A..D by path patching: ({key: [Head]}, {key: HeadScores})."""
    groups, scores, chosen = {}, {}, set()
    for key, _, _, _ in GROUPS:
        previous = groups.get(receiver_group(key, groups), []) if key != "A" else []
        if key != "A" and (not previous or max(h.layer for h in previous) == 0):
            groups[key] = []
            continue
        scores[key] = group_scores(model, data, corrupt_data, key, previous,
                                   batch_size=cfg.batch_size, backend=cfg.backend, metric=cfg.metric)
        groups[key] = select_group(scores[key], cfg.threshold, cfg.max_per_group, chosen)
        chosen.update(groups[key])
    return groups, scores


# --- ablation, minimality, faithfulness ------------------------------------------------------

def _ablate_others(model, heads, reference: BoxDataset, ablation: str = "mean"):
    """Mean-ablation of every head not in `heads`: "mean" over all tokens of `reference`
    (`PruneHeads.with_means`), or "position-mean": the mean at each position (box prompts of
    one size share their layout, so position t means the same thing in every prompt)."""
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation must be one of {ABLATIONS}, got {ablation!r}")
    keep = set(heads)
    others = [h for h in model.all_heads() if h not in keep]
    if not others:
        return None
    if ablation == "mean":
        return PruneHeads.with_means(model, others, list(reference.prompts))
    return _PositionMeans(tuple(others), _position_means(model, reference))


_POSITION_MEANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _position_means(model, reference: BoxDataset) -> dict:
    from interp.patching import head_z

    key = data_hash(list(reference.prompts))
    cache = _POSITION_MEANS.setdefault(model, {})
    if key not in cache:
        z = head_z(model, model.to_tokens(list(reference.prompts)))
        cache[key] = {layer: t.mean(0) for layer, t in z.items()}   # [pos, H, d]
    return cache[key]


@dataclass(frozen=True)
class _PositionMeans(Intervention):
    """Set heads' z to a per-position mean ([pos, H, d] per layer); prompts must share that length."""

    heads: tuple
    means: dict = field(compare=False, repr=False)

    def edits(self, model):
        from interp.backends.plan import Edit

        layers = sorted({h.layer for h in self.heads})
        return [Edit(l, "z", _set_positions([h.head for h in self.heads if h.layer == l], self.means[l]))
                for l in layers]


def _set_positions(heads: list, mean: torch.Tensor):
    def fn(z: torch.Tensor, ctx) -> torch.Tensor:
        if z.shape[1] != mean.shape[0] or ctx.q_offset:
            raise ValueError(f"position-mean ablation needs prompts of {mean.shape[0]} tokens, got {z.shape[1]}")
        z = z.clone()
        z[:, :, heads] = mean[:, heads].to(device=z.device, dtype=z.dtype)
        return z
    return fn


def circuit_accuracy(model, heads, data: BoxDataset, reference: BoxDataset, *, batch_size: int = 64,
                     backend=None, ablation: str = "mean") -> float:
    """Accuracy with every head outside `heads` mean-ablated (means over `reference` prompts)."""
    return accuracy(model, data, _ablate_others(model, heads, reference, ablation), batch_size=batch_size,
                    backend=backend)


def faithfulness(model, heads, data: BoxDataset, reference: BoxDataset, full: Optional[float] = None,
                 ablation: str = "mean", **kw) -> float:
    """circuit accuracy / full-model accuracy."""
    full = accuracy(model, data, **kw) if full is None else full
    return circuit_accuracy(model, heads, data, reference, ablation=ablation, **kw) / max(full, 1e-12)


def prune_minimal(model, groups: dict, data: BoxDataset, reference: BoxDataset, cost: float,
                  scores: dict, full: float, current: Optional[float] = None, **kw) -> tuple[dict, list[Head]]:
    """Drop, weakest first, each head whose removal lowers circuit accuracy by < cost * full."""
    groups = {k: list(v) for k, v in groups.items()}
    order = sorted(((abs(float(scores[k].scores[h.layer, h.head])), k, h) for k, hs in groups.items()
                    for h in hs), key=lambda t: t[0])
    if current is None:     # the circuit's accuracy before pruning (callers that have it pass it)
        current = circuit_accuracy(model, [h for hs in groups.values() for h in hs], data, reference, **kw)
    removed = []
    for _, key, head in order:
        trial = [h for hs in groups.values() for h in hs if h != head]
        acc = circuit_accuracy(model, trial, data, reference, **kw)
        if current - acc < cost * full:
            groups[key].remove(head)
            removed.append(head)
            current = acc
    return groups, removed


def random_faithfulness(model, sizes: dict, data: BoxDataset, reference: BoxDataset, full: float,
                        n_draws: int, seed: int, **kw) -> list[float]:
    """Faithfulness of `n_draws` random circuits with the same group sizes."""
    rng = random.Random(seed)
    heads = model.all_heads()
    total = sum(sizes.values())
    return [circuit_accuracy(model, rng.sample(heads, total), data, reference, **kw) / max(full, 1e-12)
            for _ in range(n_draws)]


def greedy_circuit(model, select: BoxDataset, evaluation: BoxDataset, reference: BoxDataset, *,
                   target: float = 0.9, stop_below: Optional[float] = None, ablation: str = "mean",
                   drop_fraction: float = 0.0, start: Optional[Sequence] = None,
                   validation: Optional[BoxDataset] = None, **kw) -> dict:
    """How many heads does the behaviour need? Backward elimination from every head on the
    `select` prompts: repeatedly drop the head whose ablation costs the least accuracy (others
    ablated as in `circuit_accuracy`), until faithfulness falls below `stop_below` (default
    `target`). The smallest set that kept `target` on `select` is then measured on the held-out
    `evaluation` prompts (selection flatters the prompts it was chosen on). A reference for
    path-patching circuits: when no k-head set keeps the target here, a k-head circuit is unlikely
    (greedy, so an upper bound on the true minimum). About n_heads^2 / 2 accuracy evaluations.

    `drop_fraction` > 0 drops that share of the kept heads per round (at least one), the ones
    whose single removal costs least, and measures the new set: about 1 / drop_fraction times
    fewer evaluations, for models with many heads. Heads that are cheap one at a time can be
    needed together (redundant copies), so a batch that falls below `stop_below` is halved
    until it holds or is a single head.

    `start` begins the elimination from those heads instead of every head (e.g. a learned
    circuit, `learned_circuit`). With `validation` prompts, each set on the way is also measured
    there, and the answer is the smallest set that keeps `target` on them, so that neither the
    prompts that chose the heads nor the held-out ones decide where to stop."""
    stop = target if stop_below is None else stop_below
    full_select = accuracy(model, select, **kw)
    full_val = None if validation is None else accuracy(model, validation, **kw)
    keep, trajectory = list(model.all_heads() if start is None else model.heads(list(start))), []
    best, best_val = list(keep), None

    def acc_without(drop) -> float:
        return circuit_accuracy(model, [x for x in keep if x not in drop], select, reference, ablation=ablation, **kw)

    while len(keep) > 1:
        costs = sorted(((acc_without({h}), h) for h in keep), key=lambda t: -t[0])
        n_drop = min(max(1, int(len(keep) * drop_fraction)) if drop_fraction > 0 else 1, len(keep) - 1)
        while True:
            dropped = [h for _, h in costs[:n_drop]]
            acc = costs[0][0] if n_drop == 1 else acc_without(set(dropped))
            if n_drop == 1 or acc / max(full_select, 1e-12) >= stop:
                break
            n_drop //= 2
        keep = [h for h in keep if h not in dropped]
        faith = acc / max(full_select, 1e-12)
        step = {"n_heads": len(keep), "faithfulness_select": faith, "dropped": " ".join(str(h) for h in dropped)}
        if full_val is not None and faith >= stop:
            step["faithfulness_validation"] = circuit_accuracy(model, keep, validation, reference, ablation=ablation,
                                                               **kw) / max(full_val, 1e-12)
        trajectory.append(step)
        if step.get("faithfulness_validation", faith) >= target and faith >= stop:
            best, best_val = list(keep), step.get("faithfulness_validation")
        if faith < stop:
            break
    full_eval = accuracy(model, evaluation, **kw)
    held_out = circuit_accuracy(model, best, evaluation, reference, ablation=ablation, **kw) / max(full_eval, 1e-12)
    return {"target": target, "ablation": ablation, "drop_fraction": drop_fraction,
            "n_heads_total": model.n_layers * model.n_heads,
            "n_select": len(select), "n_eval": len(evaluation),
            "n_validation": None if validation is None else len(validation),
            "n_start": None if start is None else len(list(start)), "smallest_at_target": [str(h) for h in best],
            "n_heads": len(best), "faithfulness_validation": best_val,   # None: no validation, or the start set
            "faithfulness_held_out": held_out, "trajectory": trajectory}


def _ablation_sources(model, reference: BoxDataset, ablation: str) -> dict:
    """What an ablated head's z becomes, per layer, broadcastable to [batch, pos, H, d]."""
    if ablation == "mean":
        table = model.head_means(list(reference.prompts))
        return {layer: table[layer][None, None].float().to(model.device) for layer in range(model.n_layers)}
    return {layer: t[None].float() for layer, t in _position_means(model, reference).items()}


# Hard-concrete gates (Louizos, Welling & Kingma 2018): a stretched, clipped binary-concrete
# sample per head, so a gate is exactly 0 or 1 with positive probability and the expected number
# of open gates (the L0 norm) is differentiable in the gates' log-odds.
_HC_LOW, _HC_HIGH, _HC_TEMPERATURE = -0.1, 1.1, 2 / 3


def hard_concrete_sample(log_alpha: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """One gate value in [0, 1] per entry of `log_alpha` (differentiable in it)."""
    u = torch.rand(log_alpha.shape, generator=generator).clamp(1e-6, 1 - 1e-6)
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / _HC_TEMPERATURE)
    return (s * (_HC_HIGH - _HC_LOW) + _HC_LOW).clamp(0.0, 1.0)


def hard_concrete_gate(log_alpha: torch.Tensor) -> torch.Tensor:
    """The deterministic gate used after training (the noise-free sample)."""
    return (torch.sigmoid(log_alpha) * (_HC_HIGH - _HC_LOW) + _HC_LOW).clamp(0.0, 1.0)


def hard_concrete_l0(log_alpha: torch.Tensor) -> torch.Tensor:
    """Expected number of open gates, P(gate > 0) summed."""
    return torch.sigmoid(log_alpha - _HC_TEMPERATURE * math.log(-_HC_LOW / _HC_HIGH)).sum()


def _mask_loss(kind: str, logits: torch.Tensor, answers: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    if kind == "ce":     # -log p(correct) over the whole vocabulary: what argmax accuracy rewards
        return torch.nn.functional.cross_entropy(logits.float(), answers.to(logits.device))
    return -_logit_diff(logits, answers, others).mean()


def learned_circuit(model, select: BoxDataset, evaluation: BoxDataset, reference: BoxDataset, *,
                    validation: Optional[BoxDataset] = None, lambdas=(0.1, 0.15, 0.2, 0.25, 0.3),
                    target: float = 0.9, ablation: str = "mean", loss: str = "ce", refine: bool = True,
                    lr: float = 0.1, epochs: int = 20, batch_size: int = 32, seed: int = 0, n_random: int = 10,
                    backend=None) -> dict:
    """Which heads does the behaviour need? Learn a gate g_h per head, the rest of each head's z
    replaced by its mean (as `circuit_accuracy` ablates):

        z_h = g_h * z_h + (1 - g_h) * mean_h,   loss = task loss + lambda * E[#open gates]

    with hard-concrete gates (`hard_concrete_sample`: exactly 0 or 1 with positive probability,
    so training sees the hard ablation it is measured with) on the `select` prompts, Adam on the
    gates' log-odds. The task loss is ``"ce"``, -log p(correct object) over the vocabulary (what
    argmax accuracy rewards), or ``"logit_diff"`` (correct object - the prompt's other objects).
    Each lambda gives the heads whose noise-free gate is >= 0.5; with `refine`, a set that keeps
    `target` on the `validation` prompts is then pruned by backward elimination on `select`
    (`greedy_circuit` from that set), stopping at the smallest set that still keeps `target` on
    `validation`. The answer is the smallest set at `target` on `validation` over all lambdas,
    measured once on the held-out `evaluation` prompts, with `n_random` random head sets of its
    size beside it. Without `validation` the `select` prompts stand in (they flatter the heads
    they chose). A learned counterpart of `greedy_circuit`: gradients weigh all heads at once,
    so redundant heads are judged together instead of one at a time."""
    from interp.dcm import mask_plan

    if ablation not in ABLATIONS:
        raise ValueError(f"ablation must be one of {ABLATIONS}, got {ablation!r}")
    if loss not in MASK_LOSSES:
        raise ValueError(f"loss must be one of {MASK_LOSSES}, got {loss!r}")
    validation = select if validation is None else validation
    heads = list(model.all_heads())
    sources = _ablation_sources(model, reference, ablation)
    tokens = model.to_tokens(list(select.prompts))
    others = _other_object_ids(model, select)
    kw = dict(batch_size=64, backend=backend)
    full_val, full_eval = accuracy(model, validation, **kw), accuracy(model, evaluation, **kw)

    def faith(kept, data, full) -> float:
        return circuit_accuracy(model, kept, data, reference, ablation=ablation, **kw) / max(full, 1e-12)

    runs = []
    for lam in lambdas:
        log_alpha = torch.full((len(heads),), 3.0, requires_grad=True)
        opt = torch.optim.Adam([log_alpha], lr=lr)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(select), generator=gen)
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                with torch.enable_grad():
                    gates = hard_concrete_sample(log_alpha, gen)
                    plan = mask_plan(model, heads, gates, sources)
                    logits = model.run_plan(Tokens(tokens.input_ids[rows], tokens.attention_mask[rows]), plan,
                                            backend=backend).logits[:, -1]
                    value = (_mask_loss(loss, logits, select.answer_ids[rows], others[rows])
                             + lam * hard_concrete_l0(log_alpha))
                    (log_alpha.grad,) = torch.autograd.grad(value, [log_alpha])
                opt.step()
        learned = [h for h, g in zip(heads, hard_concrete_gate(log_alpha.detach()).tolist()) if g >= 0.5]
        run_ = {"lambda": lam, "n_heads_learned": len(learned), "heads_learned": [str(h) for h in learned],
                "faithfulness_validation_learned": faith(learned, validation, full_val)}
        kept, faith_val = learned, run_["faithfulness_validation_learned"]
        if refine and faith_val >= target and len(learned) > 1:
            pruned = greedy_circuit(model, select, evaluation, reference, target=target, ablation=ablation,
                                    start=learned, validation=validation, **kw)
            run_["refine_trajectory"] = pruned["trajectory"]
            kept, held_out = list(model.heads(pruned["smallest_at_target"])), pruned["faithfulness_held_out"]
            if pruned["faithfulness_validation"] is not None:      # None: no step kept the target
                faith_val = pruned["faithfulness_validation"]
        else:
            held_out = faith(kept, evaluation, full_eval)
        run_.update(n_heads=len(kept), heads=[str(h) for h in kept], faithfulness_validation=faith_val,
                    faithfulness_held_out=held_out)
        runs.append(run_)
    good = [r for r in runs if r["faithfulness_validation"] >= target]
    best = min(good, key=lambda r: (r["n_heads"], -r["faithfulness_validation"])) if good else None
    if best is not None and n_random:
        best = dict(best, random_faithfulness=random_faithfulness(
            model, {"all": best["n_heads"]}, evaluation, reference, full_eval, n_random, seed, ablation=ablation, **kw))
    return {"target": target, "ablation": ablation, "loss": loss, "refine": refine, "n_heads_total": len(heads),
            "n_select": len(select), "n_validation": len(validation), "n_eval": len(evaluation), "lr": lr,
            "epochs": epochs, "seed": seed, "runs": runs, "best": best}


# --- circuit object and figure ---------------------------------------------------------------

def build_circuit(model, groups: dict, scores: dict, meta: dict) -> Circuit:
    circuit = Circuit(model=model.name, method="path patching (Prakash et al. 2024)", meta=meta)
    for key, role, _, position in GROUPS:
        for head in groups.get(key, []):
            circuit = circuit.add_node(str(head), role=role, positions=(position,), group=key,
                                       score=float(scores[key].scores[head.layer, head.head]))
    for head in groups.get("A", []):
        circuit = circuit.add_edge(str(head), "logits", kind="out")
    for key, _, site, _ in GROUPS[1:]:
        prev = receiver_group(key, groups)
        for sender in groups.get(key, []):
            weight = float(scores[key].scores[sender.layer, sender.head])
            for receiver in groups.get(prev, []):
                circuit = circuit.add_edge(str(sender), str(receiver), kind=site, weight=weight)
    return circuit


_COLORS = {"value fetcher": "#d62728", "position transmitter": "#1f77b4",
           "position detector": "#2ca02c", "structure reader": "#9467bd"}


def circuit_figure(circuit: Circuit, n_layers: int, n_heads: int, title: Optional[str] = None):
    """Plotly diagram: layer on x, head on y, groups coloured, edges between groups, logits at the right."""
    import plotly.graph_objects as go

    pos = {n.name: (n.layer, n.head.head) for n in circuit.nodes if n.head is not None}
    pos["logits"] = (n_layers, (n_heads - 1) / 2)
    fig = go.Figure()
    for kind, dash in (("out", "solid"), ("q", "dot"), ("k", "dashdot"), ("v", "dash")):
        xs, ys = [], []
        for e in circuit.edges:
            if e.kind == kind and e.source in pos and e.target in pos:
                xs += [pos[e.source][0], pos[e.target][0], None]
                ys += [pos[e.source][1], pos[e.target][1], None]
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"edge -> {kind}",
                                     line=dict(color="#999", width=1, dash=dash), hoverinfo="skip"))
    for role in circuit.roles:
        nodes = [n for n in circuit.nodes if n.role == role and n.head is not None]
        fig.add_trace(go.Scatter(
            x=[n.layer for n in nodes], y=[n.head.head for n in nodes], mode="markers+text", name=role,
            text=[n.name for n in nodes], textposition="top center",
            marker=dict(size=14, color=_COLORS.get(role, "#444")),
            hovertext=[f"{n.name} {role}<br>score {n.score:.3f}<br>at {', '.join(n.positions)}" for n in nodes],
            hoverinfo="text"))
    fig.add_trace(go.Scatter(x=[n_layers], y=[pos["logits"][1]], mode="markers+text", text=["logits"],
                             name="logits", marker=dict(size=16, symbol="square", color="#000")))
    fig.update_layout(title=title or f"Entity-tracking circuit of {circuit.model}",
                      xaxis=dict(title="layer", tickmode="linear", range=[-0.5, n_layers + 0.5]),
                      yaxis=dict(title="head", range=[-0.8, n_heads - 0.2]))
    return fig


# --- DCM and CMAP ----------------------------------------------------------------------------

def dcm_groups(model, cfg: Config, groups: dict) -> tuple[dict, dict]:
    """DCM over all heads at the last token, per desideratum; overlap with the path-patching groups."""
    from interp.dcm import dcm

    base = box_dataset(model, cfg.dcm_pairs, cfg.n_boxes, objects=cfg.objects, labels=cfg.labels,
                       seed=cfg.seed + 3, template=cfg.template)
    results, overlap = {}, {}
    for kind in DESIDERATA:
        pairs = desiderata(model, base, kind, objects=cfg.objects, labels=cfg.labels, seed=cfg.seed + 4)
        results[kind] = dcm(model, list(pairs.base.prompts), list(pairs.source.prompts), pairs.target_ids,
                            positions=pairs.base.last_pos, desideratum=kind, lam=cfg.dcm_lambda,
                            lr=cfg.dcm_lr, epochs=cfg.dcm_epochs, seed=cfg.seed, backend=cfg.backend)
        selected = set(results[kind].heads)
        overlap[kind] = {key: sorted(str(h) for h in groups.get(key, []) if h in selected) for key in _ROLE}
        overlap[kind]["outside_circuit"] = sorted(
            str(h) for h in selected if not any(h in g for g in groups.values()))
    return results, overlap


def _group_patches(groups: dict, data: BoxDataset):
    from interp.cmap import CrossPatch

    where = {"A": data.last_pos, "B": data.last_pos, "C": data.query_pos, "D": data.label_pos}
    return {key: CrossPatch(heads, where[key]) for key, heads in groups.items() if heads}


def cmap_table(base, source, groups: dict, data: BoxDataset, reference: BoxDataset, *,
               batch_size: int = 64, backend=None, ablation: str = "mean") -> dict:
    """CMAP from `source` into `base` per group and for the whole circuit, and the base circuit
    evaluated inside `source` (its other heads mean-ablated with `source`'s own means)."""
    from interp.cmap import check_compatible, cmap_accuracy, recovered_share

    check_compatible(base, source)
    kw = dict(batch_size=batch_size, backend=backend)
    acc_base, acc_src = accuracy(base, data, **kw), accuracy(source, data, **kw)
    patches = _group_patches(groups, data)
    rows = []
    for key, patch in list(patches.items()) + [("circuit", list(patches.values()))]:
        acc = cmap_accuracy(base, source, list(data.prompts), data.answer_ids, patch, **kw)
        n = len(patch.heads) if key != "circuit" else sum(len(p.heads) for p in patch)
        rows.append({"group": key, "role": _ROLE.get(key, "whole circuit"), "n_heads": n, "accuracy": acc,
                     "recovered": recovered_share(acc, acc_base, acc_src)})
    heads = [h for hs in groups.values() for h in hs]
    inside = circuit_accuracy(source, heads, data, reference, ablation=ablation, **kw)
    return {"base_model": base.name, "source_model": source.name, "base_accuracy": acc_base,
            "source_accuracy": acc_src, "rows": rows, "base_circuit_in_source_accuracy": inside,
            "base_circuit_in_source_faithfulness": inside / max(acc_src, 1e-12)}


# --- the whole analysis ----------------------------------------------------------------------

def _datasets(model, cfg: Config):
    kw = dict(objects=cfg.objects, labels=cfg.labels, template=cfg.template)
    data = box_dataset(model, cfg.n_prompts, cfg.n_boxes, seed=cfg.seed, **kw)
    corr = corrupt(model, data, objects=cfg.objects, labels=cfg.labels, seed=cfg.seed + 1)
    evaluation = box_dataset(model, cfg.n_eval, cfg.n_boxes, seed=cfg.seed + 1000, **kw)
    reference = box_dataset(model, cfg.n_reference, cfg.n_boxes, seed=cfg.seed + 2000, **kw)
    return data, corr, evaluation, reference


def validation_dataset(model, cfg: Config) -> BoxDataset:
    """Prompts that decide where a circuit search stops: neither the selection nor the held-out set."""
    return box_dataset(model, cfg.n_eval, cfg.n_boxes, seed=cfg.seed + 3000, objects=cfg.objects,
                       labels=cfg.labels, template=cfg.template)


def run(model, cfg: Config = Config(), finetuned=None) -> EntityTrackingResult:
    """Discover the circuit, measure faithfulness (vs random circuits), DCM, and CMAP from `finetuned`."""
    if cfg.n_boxes is None:
        cfg = replace(cfg, n_boxes=default_n_boxes(model))
    data, corr, evaluation, reference = _datasets(model, cfg)
    kw = dict(batch_size=cfg.batch_size, backend=cfg.backend)
    ab = dict(kw, ablation=cfg.ablation)
    full = accuracy(model, evaluation, **kw)
    chance, bar = _chance(cfg.n_boxes, len(evaluation))
    n_total = model.n_layers * model.n_heads
    ft = {} if finetuned is None else dict(finetuned=finetuned.name,
                                           finetuned_accuracy=accuracy(finetuned, evaluation, **kw))
    if full <= bar:
        return EntityTrackingResult(model.name, cfg, full, chance, True, n_heads_total=n_total, **ft,
                                    note=f"model at chance: accuracy {full:.3f} <= {bar:.3f} (chance {chance:.3f} "
                                         f"+ 3 SE over {len(evaluation)} prompts); no circuit is reported")
    learned = (learned_circuit(model, data, evaluation, reference, validation=validation_dataset(model, cfg),
                               lambdas=cfg.learned_lambdas, target=cfg.greedy_target, ablation=cfg.ablation,
                               loss=cfg.learned_loss, refine=cfg.learned_refine, epochs=cfg.learned_epochs,
                               seed=cfg.seed, n_random=cfg.n_random, backend=cfg.backend) if cfg.learned else None)
    groups, scores = discover(model, data, corr, cfg)
    if not groups["A"]:
        return EntityTrackingResult(model.name, cfg, full, chance, False, scores=scores, n_heads_total=n_total, **ft,
                                    learned=learned,
                                    note=f"no head's path to the logits lowers the {_METRIC_NAME[cfg.metric]} by "
                                         f"{cfg.threshold:.0%}" + ("; a model that is sure of its answers saturates "
                                         "p(correct): try metric='logit_diff' (--metric logit_diff)"
                                         if cfg.metric == "prob" else ""))
    note = ""
    found = circuit_accuracy(model, [h for hs in groups.values() for h in hs], data, reference, **ab)
    if found > _chance(cfg.n_boxes, len(data))[1]:
        groups, removed = prune_minimal(model, groups, data, reference, cfg.prune_cost, scores,
                                        accuracy(model, data, **kw), current=found, **ab)
    else:   # pruning a circuit that does not work would remove every head: report it whole
        removed = []
        note = (f"the path-patching groups alone are at chance (accuracy {found:.3f} with every other head "
                f"{cfg.ablation}-ablated): the behaviour needs heads outside them; minimality pruning skipped")
    heads = [h for hs in groups.values() for h in hs]
    circ_acc = circuit_accuracy(model, heads, evaluation, reference, **ab)
    sizes = {k: len(v) for k, v in groups.items()}
    rand = random_faithfulness(model, sizes, evaluation, reference, full, cfg.n_random, cfg.seed, **ab)
    circuit = build_circuit(model, groups, scores, {"config": cfg.to_dict(), "n_prompts": len(data)})
    dcm_res, overlap = dcm_groups(model, cfg, groups) if cfg.dcm_pairs else ({}, {})
    table = None
    if finetuned is not None:
        table = cmap_table(model, finetuned, groups, evaluation, reference, **ab)
    greedy = greedy_circuit(model, data, evaluation, reference, target=cfg.greedy_target, **ab) if cfg.greedy else None
    return EntityTrackingResult(model.name, cfg, full, chance, False, circuit, scores, tuple(str(h) for h in removed),
                                circ_acc, circ_acc / max(full, 1e-12), tuple(rand), dcm_res, overlap, table,
                                note=note, n_heads_total=n_total, greedy=greedy, learned=learned, **ft)


# --- CLI -------------------------------------------------------------------------------------

def write_outputs(result: EntityTrackingResult, model, out: Path, command: Optional[str] = None) -> Path:
    """figures (circuit diagram, group score maps) + circuit.json + summary.json under `out`."""
    from interp import plots
    from interp.report import write_summary

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    if result.circuit is not None:
        result.circuit.to_json(out / "circuit.json")
        figures.append(plots.save_html(circuit_figure(result.circuit, model.n_layers, model.n_heads),
                                       out / "circuit.html"))
    for key, hs in result.scores.items():
        figures.append(plots.save_html(hs.plot(title=f"group {key} ({_ROLE[key]}): relative change in p(correct)"),
                                       out / f"group_{key}.html"))
    cfg = result.config
    return write_summary(out, "entity_tracking", result.numbers(), model=result.model, command=command,
                         seeds={"data": cfg.seed, "corrupt": cfg.seed + 1, "eval": cfg.seed + 1000,
                                "reference": cfg.seed + 2000, "dcm": cfg.seed + 3, "random_circuits": cfg.seed},
                         data={"n_prompts": cfg.n_prompts, "n_eval": cfg.n_eval, "n_reference": cfg.n_reference,
                               "n_boxes": cfg.n_boxes, "dcm_pairs": cfg.dcm_pairs, "config": cfg.to_dict()},
                         figures=figures)


def register(app) -> None:
    import typer

    @app.command("entity")
    def entity(model: str = typer.Argument(..., help="zoo name, HF folder/id or .gguf"),
               finetuned: Optional[str] = typer.Option(None, "--finetuned", help="second model for CMAP"),
               out: Path = typer.Option(Path("figures/entity"), "--out", help="output folder"),
               n_prompts: int = typer.Option(300, help="path-patching prompts"),
               n_eval: int = typer.Option(300, help="held-out prompts for accuracy and faithfulness"),
               n_boxes: Optional[int] = typer.Option(None, help="boxes per prompt (default: 4 on zoo world "
                                                      "models, else 7 as the paper)"),
               dcm_pairs: int = typer.Option(1000, help="DCM pairs per desideratum (0 skips DCM)"),
               threshold: float = typer.Option(0.05, help="min relative drop in the metric per head"),
               metric: str = typer.Option("prob", help="path-patching metric: prob (p(correct), the paper's) or "
                                          "logit_diff (correct - other objects; for models sure of their answers)"),
               max_per_group: int = typer.Option(8),
               ablation: str = typer.Option("mean", help="'mean' (PruneHeads.with_means) or 'position-mean'"),
               seed: int = typer.Option(0),
               greedy: bool = typer.Option(False, "--greedy", help="also search the smallest head set keeping 90% "
                                           "of the accuracy (about n_heads^2/2 accuracy evaluations)"),
               learned: bool = typer.Option(False, "--learned", help="also learn a gate per head, prune the learned set while "
                                            "validation prompts keep 90%, and measure it held out (over an hour for 96 "
                                            "heads on 2 CPU cores)"),
               backend: str = typer.Option("nnsight")):
        """Entity-tracking circuit (Prakash et al. 2024): path patching, faithfulness, DCM, CMAP."""
        import warnings

        import interp
        from interp.data.boxes import BoxDataError

        try:
            cfg = Config(n_prompts=n_prompts, n_eval=n_eval, n_boxes=n_boxes, dcm_pairs=dcm_pairs,
                         threshold=threshold, max_per_group=max_per_group, seed=seed, ablation=ablation,
                         greedy=greedy, metric=metric, learned=learned)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = interp.load(model, backend=backend)
                ft = interp.load(finetuned, backend=backend) if finetuned else None
            result = run(m, cfg, finetuned=ft)
        except (BoxDataError, ValueError, TypeError, KeyError) as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2)
        path = write_outputs(result, m, out)
        typer.echo(_report(result))
        typer.echo(f"wrote {path}")


def _report(result: EntityTrackingResult) -> str:
    lines = [f"{result.model}: accuracy {result.full_accuracy:.3f} (chance {result.chance:.3f})"]
    if result.finetuned is not None:
        lines.append(f"{result.finetuned}: accuracy {result.finetuned_accuracy:.3f}")
    if result.note:
        lines.append(result.note)
    if result.circuit is not None:
        for key, role in _ROLE.items():
            lines.append(f"  {key} {role}: {', '.join(map(str, result.circuit.heads(role))) or '-'}")
        rf = result.random_faithfulness
        lines.append(f"  faithfulness {result.faithfulness:.3f} with {len(result.circuit.heads())}/{result.n_heads_total} "
                     f"heads; random circuits mean {sum(rf) / len(rf):.3f} max {max(rf):.3f}")
    for kind, r in result.dcm.items():
        lines.append(f"  DCM {kind}: {', '.join(map(str, r.heads)) or '-'} test accuracy {r.test_accuracy:.3f}")
    if result.cmap:
        lines.append(f"  CMAP {result.cmap['source_model']} -> {result.cmap['base_model']}: base "
                     f"{result.cmap['base_accuracy']:.3f}, source {result.cmap['source_accuracy']:.3f}")
        for row in result.cmap["rows"]:
            rec = "n/a" if row["recovered"] is None else f"{row['recovered']:.2f}"
            lines.append(f"    {row['group']:8s} {row['n_heads']:3d} heads  acc {row['accuracy']:.3f}  recovered {rec}")
    if result.learned is not None:
        for r in result.learned["runs"]:
            lines.append(f"  learned gates, lambda {r['lambda']:g}: {r['n_heads_learned']} heads learned, "
                         f"{r['n_heads']}/{result.n_heads_total} kept, validation {r['faithfulness_validation']:.3f}, "
                         f"held-out faithfulness {r['faithfulness_held_out']:.3f}")
    if result.greedy is not None:
        g = result.greedy
        lines.append(f"  greedy: {g['n_heads']}/{g['n_heads_total']} heads kept >= {g['target']} on the selection "
                     f"prompts; held out: faithfulness {g['faithfulness_held_out']:.3f} "
                     f"({', '.join(g['smallest_at_target'])})")
    return "\n".join(lines)
