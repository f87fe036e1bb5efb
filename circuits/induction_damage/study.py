"""The study: measure every member of a repeated-data family (Hernandez et al. 2022 at toy scale).

Per member: unique held-out loss, loss on the repeated rows, induction / copying scores and the
copy loss on repeated random spans (`circuits.induction.run`, causal check off); across
members: damage vs repeated fraction with the seed spread; with trajectories, the same at each
saved checkpoint. The cost is metered on every model the study loads and summed.

    >>> res = damage_study("rep2l")                                      # doctest: +SKIP
    >>> plots.save_html(res.figure(), "figures/induction/damage.html")   # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Optional, Union

import numpy as np

from circuits.induction import InductionConfig, config_record, load_checkpoint, world_content_tokens
from circuits.induction import run as induction_run
from interp.cost import Cost, measure_cost
from interp.progress import track

from .config import Config
from .family import check_shared_corpus, family_members, heldout_rows, lm_loss, repeated_rows
from .result import Result

__all__ = ["run", "damage_study", "member_numbers"]

SPAN_TOKENS = (
    "each member's zoo-world content tokens where it has a world.json, else its vocabulary"
)


def member_numbers(model, test, pool, cfg: InductionConfig) -> dict:
    """One member's losses (held-out, repeated pool) and induction numbers."""
    res = induction_run(model, replace(cfg, causal=False))
    ((l, h, best),) = res.scores["induction"].top(1)
    return {
        "test_loss": float(lm_loss(model, test).mean()),
        "repeated_pool_loss": float(lm_loss(model, pool).mean()),
        "best_induction_score": best,
        "best_head": f"L{l}H{h}",
        "best_head_copying": float(res.scores["copying"].scores[l, h]),
        "max_prefix_matching": float(res.scores["prefix_matching"].scores.max()),
        "n_induction_heads": len(res.induction_heads),
        "copy_loss_first": res.loss["first"],
        "copy_loss_second": res.loss["second"],
        "copy_loss_ratio": res.loss["ratio"],
        "copy_loss_ratio_ci": res.loss["ratio_ci"],
        "induction_behaviour": res.has_induction_behaviour,
    }


def _checkpoint_row(member: dict, spec, test, cfg: InductionConfig, costs: list) -> dict:
    ck, _, step = load_checkpoint(spec)
    with measure_cost(ck) as meter:
        res = induction_run(ck, cfg)
        test_loss = float(lm_loss(ck, test).mean())
    costs.append(meter.cost)
    return {
        "fraction": member["fraction"],
        "seed": member["seed"],
        "step": step if step is not None else int(member["recipe"]["steps"]),
        "best_induction": float(res.scores["induction"].scores.max()),
        "test_loss": test_loss,
    }


def _aggregate_trajectories(rows: list) -> dict:
    """{fraction: steps, per-step means over seeds and per-seed values} of the checkpoint rows."""
    out = {}
    for f in sorted({r["fraction"] for r in rows}):
        steps = sorted({r["step"] for r in rows if r["fraction"] == f})
        pick = lambda s, k: [r[k] for r in rows if r["fraction"] == f and r["step"] == s]  # noqa: E731
        out[f"{f:g}"] = {
            "steps": steps,
            "best_induction_mean": [float(np.mean(pick(s, "best_induction"))) for s in steps],
            "test_loss_mean": [float(np.mean(pick(s, "test_loss"))) for s in steps],
            "best_induction_by_seed": [pick(s, "best_induction") for s in steps],
            "test_loss_by_seed": [pick(s, "test_loss") for s in steps],
        }
    return out


def _total_cost(costs: list, seconds: float) -> Optional[Cost]:
    if not costs:
        return None
    return Cost(
        seconds,
        sum(c.forward_passes for c in costs),
        sum(c.tokens for c in costs),
        max(c.peak_memory_mb for c in costs),
    )


def _measure_member(m: dict, test, pool_size: int, cfg: InductionConfig, costs: list) -> dict:
    pool = repeated_rows(m["recipe"], pool_size)
    model, _, _ = load_checkpoint(m["spec"])
    model.name = m["name"]
    with measure_cost(model) as meter:
        numbers = member_numbers(model, test, pool, cfg)
    costs.append(meter.cost)
    return {
        "name": m["name"],
        "fraction": m["fraction"],
        "seed": m["seed"],
        "spec": m["spec"],
        **numbers,
    }


def damage_study(
    family: Union[str, os.PathLike],
    cfg: Optional[InductionConfig] = None,
    *,
    test_rows: int = 64,
    test_seed: int = 0,
    trajectories: bool = True,
) -> Result:
    """Measure every member of `family` (a zoo prefix such as ``rep2l``, or a folder), each with
    `cfg` (causal check off) on spans of its own world's content tokens."""
    start = time.perf_counter()
    cfg = replace(cfg or InductionConfig(), causal=False)
    members = family_members(family)
    check_shared_corpus(members)
    ref = members[0]["recipe"]
    test = heldout_rows(ref, test_rows, test_seed)
    pool_size = max(int(m["recipe"]["repeat_pool"]) for m in members) or 16
    out, traj_rows, costs = [], [], []
    for m in track(members, "induction-damage: members", unit="member"):
        mcfg = replace(cfg, token_ids=world_content_tokens(m["spec"]))
        out.append(_measure_member(m, test, pool_size, mcfg, costs))
        if trajectories and m["checkpoints"]:
            traj_rows += [
                _checkpoint_row(m, c, test, mcfg, costs) for c in m["checkpoints"] + [m["spec"]]
            ]
    data = {
        "test_rows": test_rows,
        "test_seed": test_seed,
        "seq_len": ref["seq_len"],
        "repeated_pool": pool_size,
        "n_members": len(out),
        "induction_config": config_record(cfg),
        "span_tokens": SPAN_TOKENS,
    }
    return Result(
        str(family),
        out,
        cfg,
        data,
        _aggregate_trajectories(traj_rows),
        cost=_total_cost(costs, time.perf_counter() - start),
        n_checkpoints=sum(len(m["checkpoints"]) for m in members) if trajectories else 0,
    )


def run(model, cfg: Config) -> Result:
    """The registry's entry point: the study of ``cfg.family`` (`model` is not used: every
    member is loaded in turn, one in memory at a time)."""
    return damage_study(
        cfg.family,
        cfg.induction,
        test_rows=cfg.test_rows,
        test_seed=cfg.test_seed,
        trajectories=cfg.trajectories,
    )
