"""`run`: the whole analysis on one model: accuracy and the chance verdict, discovery by path
patching, minimality pruning, faithfulness against random circuits, DCM, CMAP from a second
model, and the optional greedy and learned searches.

    >>> res = run(interp.load("world-base"), Config(n_prompts=300))          # doctest: +SKIP
    >>> res.circuit.heads("value fetcher"), res.faithfulness                  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import interp
from interp import zoo
from interp.data.boxes import BoxDataset, box_dataset, corrupt, default_n_boxes, default_template

from .ablation import circuit_accuracy, prune_minimal, random_control
from .circuit import build_circuit
from .config import METRIC_NAME, Config
from .discovery import discover
from .greedy import greedy_circuit
from .learned import learned_circuit
from .metrics import accuracy, chance
from .result import Result
from .transfer import cmap_table, dcm_groups

__all__ = [
    "run",
    "datasets",
    "validation_dataset",
    "demo_config",
    "load_finetuned",
    "DEMO_MODEL",
    "DEMO_FINETUNED",
]

DEMO_MODEL, DEMO_FINETUNED = "world-base", "world-tracking-ft"


def datasets(model, cfg: Config) -> tuple[BoxDataset, BoxDataset, BoxDataset, BoxDataset]:
    """(path-patching prompts, their corrupt counterparts, held-out prompts, reference prompts),
    seeded as `Config.seeds` says."""
    kw = dict(objects=cfg.objects, labels=cfg.labels, template=cfg.template)
    seeds = cfg.seeds()
    data = box_dataset(model, cfg.n_prompts, cfg.n_boxes, seed=seeds["data"], **kw)
    corr = corrupt(model, data, objects=cfg.objects, labels=cfg.labels, seed=seeds["corrupt"])
    evaluation = box_dataset(model, cfg.n_eval, cfg.n_boxes, seed=seeds["eval"], **kw)
    reference = box_dataset(model, cfg.n_reference, cfg.n_boxes, seed=seeds["reference"], **kw)
    return data, corr, evaluation, reference


def validation_dataset(model, cfg: Config) -> BoxDataset:
    """Prompts that decide where a circuit search stops: neither the selection nor the held-out
    set."""
    return box_dataset(
        model,
        cfg.n_eval,
        cfg.n_boxes,
        seed=cfg.seed + 3000,
        objects=cfg.objects,
        labels=cfg.labels,
        template=cfg.template,
    )


def demo_config(model) -> Config:
    """The demo's config: the defaults, with the zoo's fine-tuned model as the CMAP source when
    the demo runs on the zoo's base model and the fine-tuned one is installed."""
    has_ft = getattr(model, "name", None) == DEMO_MODEL and DEMO_FINETUNED in zoo.names()
    return Config(finetuned=DEMO_FINETUNED if has_ft else None)


def load_finetuned(cfg: Config, backend=None):
    """The CMAP source model `cfg.finetuned` names (None when it names none), on `backend`
    (None: `interp.load`'s default)."""
    if cfg.finetuned is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if backend is None:
            return interp.load(cfg.finetuned)
        return interp.load(cfg.finetuned, backend=backend)


def _no_circuit_note(cfg: Config) -> str:
    note = (
        f"no head's path to the logits lowers the {METRIC_NAME[cfg.metric]} by {cfg.threshold:.0%}"
    )
    if cfg.metric == "prob":
        note += (
            "; a model that is sure of its answers saturates p(correct): try metric='logit_diff' "
            "(--metric logit_diff)"
        )
    return note


def _learned(model, cfg: Config, data, evaluation, reference):
    if not cfg.learned:
        return None
    return learned_circuit(
        model,
        data,
        evaluation,
        reference,
        validation=validation_dataset(model, cfg),
        lambdas=cfg.learned_lambdas,
        target=cfg.greedy_target,
        ablation=cfg.ablation,
        loss=cfg.learned_loss,
        refine=cfg.learned_refine,
        epochs=cfg.learned_epochs,
        seed=cfg.seed,
        n_random=cfg.n_random,
        random_pool=cfg.random_pool,
        backend=cfg.backend,
    )


def run(model, cfg: Config = Config(), finetuned=None) -> Result:
    """Discover the circuit, measure faithfulness (vs random circuits), DCM, and CMAP from
    `finetuned` (a Model; default: the model `cfg.finetuned` names, if any)."""
    if cfg.n_boxes is None:
        cfg = replace(cfg, n_boxes=default_n_boxes(model))
    if cfg.template is None:  # the model's wording, used for both models (CMAP)
        cfg = replace(cfg, template=default_template(model))
    if finetuned is None:
        finetuned = load_finetuned(cfg, cfg.backend or getattr(model, "backend", None))
    data, corr, evaluation, reference = datasets(model, cfg)
    kw = dict(batch_size=cfg.batch_size, backend=cfg.backend)
    ab = dict(kw, ablation=cfg.ablation)
    full = accuracy(model, evaluation, **kw)
    p_chance, bar = chance(cfg.n_boxes, len(evaluation))
    base = dict(n_heads_total=model.n_layers * model.n_heads)
    if finetuned is not None:
        base.update(
            finetuned=finetuned.name, finetuned_accuracy=accuracy(finetuned, evaluation, **kw)
        )
    if full <= bar:
        return Result(
            model.name,
            cfg,
            full,
            p_chance,
            True,
            **base,
            note=f"model at chance: accuracy {full:.3f} <= {bar:.3f} (chance {p_chance:.3f} "
            f"+ 3 SE over {len(evaluation)} prompts); no circuit is reported",
        )
    learned = _learned(model, cfg, data, evaluation, reference)
    groups, scores = discover(model, data, corr, cfg)
    if not groups["A"]:
        return Result(
            model.name,
            cfg,
            full,
            p_chance,
            False,
            scores=scores,
            learned=learned,
            note=_no_circuit_note(cfg),
            **base,
        )
    note, trials = "", 0
    found = circuit_accuracy(
        model, [h for hs in groups.values() for h in hs], data, reference, **ab
    )
    if found > chance(cfg.n_boxes, len(data))[1]:
        trials = sum(len(hs) for hs in groups.values())
        groups, removed = prune_minimal(
            model,
            groups,
            data,
            reference,
            cfg.prune_cost,
            scores,
            accuracy(model, data, **kw),
            current=found,
            **ab,
        )
    else:  # pruning a circuit that does not work would remove every head: report it whole
        removed = []
        note = (
            f"the path-patching groups alone are at chance (accuracy {found:.3f} with every "
            f"other head {cfg.ablation}-ablated): the behaviour needs heads outside them; "
            f"minimality pruning skipped"
        )
    heads = [h for hs in groups.values() for h in hs]
    circ_acc = circuit_accuracy(model, heads, evaluation, reference, **ab)
    control = random_control(
        model,
        len(heads),
        evaluation,
        reference,
        full,
        cfg.n_random,
        cfg.seeds()["random_circuits"],
        located=heads,
        pool=cfg.random_pool,
        **ab,
    )
    circuit = build_circuit(
        model, groups, scores, {"config": cfg.to_dict(), "n_prompts": len(data)}
    )
    dcm_res, overlap = dcm_groups(model, cfg, groups) if cfg.dcm_pairs else ({}, {})
    table = (
        cmap_table(model, finetuned, groups, evaluation, reference, **ab)
        if finetuned is not None
        else None
    )
    greedy = (
        greedy_circuit(model, data, evaluation, reference, target=cfg.greedy_target, **ab)
        if cfg.greedy
        else None
    )
    return Result(
        model.name,
        cfg,
        full,
        p_chance,
        False,
        circuit,
        scores,
        tuple(str(h) for h in removed),
        circ_acc,
        circ_acc / max(full, 1e-12),
        tuple(d["value"] for d in control["draws"]),
        dcm_res,
        overlap,
        table,
        note=note,
        greedy=greedy,
        learned=learned,
        prune_trials=trials,
        random_control={k: v for k, v in control.items() if k != "draws"}
        | {"heads": [d["heads"] for d in control["draws"]]},
        **base,
    )
