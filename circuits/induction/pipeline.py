"""`run`: score every head on seeded repeated-span sequences, then the causal check; `analyze`:
`run` plus the TransformerLens cross-check, as the CLI and the demo run it; `track`: the same
sequences scored at every training checkpoint.

    >>> res = run(interp.load("world-base"), Config(n=16))               # doctest: +SKIP
    >>> res.induction_heads, res.loss["ratio"], res.causal["top_ratio"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Optional, Sequence

from interp.data.repeats import RepeatSet
from interp.errors import InvalidArgumentError
from interp.progress import track as progress

from .causal import causal_check
from .checkpoints import (
    architecture_of,
    check_same_architecture,
    load_checkpoint,
    world_content_tokens,
)
from .config import Config, make_sequences
from .result import Result
from .scoring import score_heads
from .summary import summarize
from .tl import tl_agreement
from .trajectory import Trajectory

__all__ = ["run", "analyze", "demo_config", "track"]


def run(
    model, cfg: Optional[Config] = None, *, seqs: Optional[RepeatSet] = None, interventions=None
) -> Result:
    """Score every head on seeded repeated-span sequences; with ``cfg.causal`` also ablate heads.

    seqs: the sequences (default: `make_sequences(model, cfg)`); interventions: applied while
    scoring (the causal check then measures its own clean baseline).
    """
    cfg = (cfg or Config()).for_model(model)
    seqs = seqs if seqs is not None else make_sequences(model, cfg)
    stats = score_heads(model, seqs, batch_size=cfg.batch_size, interventions=interventions)
    result = summarize(model, seqs, stats, cfg)
    if cfg.causal:
        clean = stats if interventions is None else None
        result = replace(result, causal=causal_check(model, seqs, result, cfg, clean))
    return result


def analyze(model, cfg: Optional[Config] = None, *, compare_tl: bool = True) -> Result:
    """`run`, and with `compare_tl` the TransformerLens cross-check on the same sequences
    (`Result.tl`): the registry's entry point, what ``interp induction`` and the demo run."""
    cfg = (cfg or Config()).for_model(model)
    seqs = make_sequences(model, cfg)
    result = run(model, cfg, seqs=seqs)
    return replace(result, tl=tl_agreement(model, seqs)) if compare_tl else result


def demo_config(model) -> Config:
    """The demo's config: random spans from the zoo world's content tokens, as the CLI draws
    them."""
    return Config(token_ids=world_content_tokens(model.name))


def track(checkpoints: Sequence, cfg: Optional[Config] = None) -> Trajectory:
    """Score every checkpoint on the same sequences (architectures must match); one model is in
    memory at a time. Checkpoint specs: see `circuits.induction.checkpoints`.

    >>> traj = track(["runs/x/ckpts/step00250.pt", "runs/x/ckpts/step00500.pt"])   # doctest: +SKIP
    >>> traj.figures()["trajectory_heads"]                                         # doctest: +SKIP
    """
    if isinstance(checkpoints, (str, os.PathLike)) or not checkpoints:
        raise InvalidArgumentError(
            "track needs a list of at least one checkpoint (paths, ids or Models)"
        )
    cfg = replace(cfg or Config(), causal=False)
    if cfg.token_ids is None:
        first = checkpoints[0]
        cfg = replace(
            cfg, token_ids=world_content_tokens(first) if not hasattr(first, "hf") else None
        )
    labels, steps, results, ref, seqs = [], [], [], None, None
    for spec in progress(list(checkpoints), "induction: checkpoints", unit="checkpoint"):
        model, label, step = load_checkpoint(spec)
        if ref is None:
            cfg = cfg.for_model(model)
            ref, seqs = (architecture_of(model), label), make_sequences(model, cfg)
        else:
            check_same_architecture(ref[0], ref[1], model, label)
        labels.append(label)
        steps.append(step)
        results.append(run(model, cfg, seqs=seqs))
    return Trajectory(labels, steps, results)
