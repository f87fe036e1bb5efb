"""The whole PH3 analysis: conflict sets from the model's own memory, split by subject; heads
located on one split, k chosen on another, pruning and controls measured on held-out subjects
in the locating format and in a second format."""

from __future__ import annotations

import time
import warnings

from interp.data.conflict import ConflictDataError, build_conflict_set, templates_for
from interp.data.defaults import default_items

from .config import Config, check_k_grid, resolve_formats, shortlist_size
from .locate import attribution_scores, locate_heads, shortlisted
from .pruning import ph3_direction
from .result import DIRECTIONS, ConflictResult

__all__ = ["build_sets", "run", "demo_config", "SPLITS"]

SPLITS = ("locate", "val", "test", "test_other_format")


def build_sets(model, cfg: Config, items=None, templates=None) -> dict:
    """Conflict sets per format from the model's own memory, split by subject.

    Returns {"sets": {format: ConflictSet}, "locate", "val", "test" (first format),
    "test_other_format" (the held-out subjects in the second format), "subjects": {split: [...]}}.
    Items default to `interp.data.defaults.default_items`: the zoo world's for zoo models, the
    English facts otherwise (`cfg.n_per_subject` per subject, seeded)."""
    templates = templates or templates_for(model)
    cfg = resolve_formats(cfg, templates)
    for name in cfg.formats:
        if name not in templates:
            raise ConflictDataError(f"unknown format {name!r}; templates: {', '.join(templates)}")
    if items is None:
        items = default_items(model, cfg.n_per_subject, seed=cfg.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sets = {
            name: build_conflict_set(model, items, templates[name], batch_size=cfg.batch_size)
            for name in cfg.formats
        }
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=2)
    first = sets[cfg.formats[0]]
    locate_s, val_s, test_s = first.split_subjects(cfg.split, cfg.seed)
    parts = {
        "locate": first.of_subjects(locate_s),
        "val": first.of_subjects(val_s),
        "test": first.of_subjects(test_s),
        "test_other_format": sets[cfg.formats[1]].of_subjects(test_s),
    }
    keep = _patchable_relations(parts)
    parts = {
        name: part.subset([i for i, it in enumerate(part.items) if it.relation in keep])
        for name, part in parts.items()
    }
    return {"sets": sets, **parts, "subjects": {"locate": locate_s, "val": val_s, "test": test_s}}


class RelationDroppedWarning(UserWarning):
    """A relation the model knows too few facts of to build path patching's reference prompts."""


def _patchable_relations(parts: dict) -> set:
    """The relations with at least 2 subjects and 4 distinct answers in every split it appears in
    (what a corrupted reference prompt needs: another subject and another answer of the same
    relation).
    The others are dropped with a `RelationDroppedWarning` naming them: on a real model a
    relation it barely knows (SmolLM2-135M: 4 of 68 city -> country facts) cannot be patched."""
    relations = {it.relation for part in parts.values() for it in part.items}
    keep, dropped = set(), {}
    for rel in sorted(relations):
        counts = []
        for name, part in parts.items():
            members = [it for it in part.items if it.relation == rel]
            if not members:
                continue
            answers = {a for it in members for a in (it.memory_answer, it.context_answer)}
            counts.append((name, len({it.subject for it in members}), len(answers)))
        short = [c for c in counts if c[1] < 2 or c[2] < 4]
        if short:
            dropped[rel] = short[0]
        else:
            keep.add(rel)
    if dropped:
        said = "; ".join(
            f"{rel!r} ({name} split: {s} subjects, {a} answers)"
            for rel, (name, s, a) in dropped.items()
        )
        warnings.warn(
            f"relations dropped, too few known facts to build reference prompts "
            f"(needs 2 subjects and "
            f"4 answers per split): {said}",
            RelationDroppedWarning,
            stacklevel=3,
        )
    if not keep:
        raise ConflictDataError(
            "no relation has at least 2 subjects and 4 distinct answers in every split; give "
            "more items (--items FILE) or more known subjects"
        )
    return keep


def run(model, cfg: Config = Config(), items=None, templates=None) -> ConflictResult:
    """Locate memory/context heads, choose k, prune, control, and check attribution patching.

    Attribution patching runs first; exact path patching then scores every head, or on a large
    model only the `shortlist_size` heads the estimate ranks highest (`Config.shortlist`)."""
    check_k_grid(cfg, model)
    cfg = resolve_formats(cfg, templates or templates_for(model))
    data = build_sets(model, cfg, items, templates)
    for part in SPLITS[:3]:  # the transfer format may be empty: its check is then skipped
        if len(data[part]) == 0:
            raise ConflictDataError(
                f"the {part!r} split is empty "
                f"({ {k: len(v) for k, v in data['subjects'].items()} } "
                "subjects); give more items or known subjects"
            )
    t0 = time.perf_counter()
    attribution = attribution_scores(
        model, data["locate"], source=cfg.source, metric=cfg.metric, seed=cfg.seed
    )
    t1 = time.perf_counter()
    senders = shortlisted(attribution, shortlist_size(cfg, model))
    scores = locate_heads(
        model,
        data["locate"],
        source=cfg.source,
        metric=cfg.metric,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        senders=senders,
    )
    t2 = time.perf_counter()
    ph3, curves, chosen = {}, {}, {}
    for direction, role, target in DIRECTIONS:
        ph3[direction] = ph3_direction(model, scores, data, role, target, cfg)
        if "k" in ph3[direction]:
            curves[f"{target} rate, pruning {role} heads"] = ph3[direction]["k_validation_curve"]
            chosen[role] = list(model.heads(ph3[direction]["pruned"]))
    info = {name: s.summary() for name, s in data["sets"].items()}
    info.update({f"n_{part}": len(data[part]) for part in SPLITS})
    info["subjects"] = data["subjects"]
    return ConflictResult(
        model.name,
        cfg,
        scores,
        attribution,
        chosen.get("memory", []),
        chosen.get("context", []),
        ph3,
        info,
        {"attribution_patching": t1 - t0, "path_patching": t2 - t1},
        curves,
    )


def demo_config(model=None) -> Config:
    """The Config the demo and the atlas run with: the defaults (zoo items, the model's first two
    formats)."""
    return Config()
