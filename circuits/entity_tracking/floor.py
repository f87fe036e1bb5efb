"""The fewest full-sequence forward equivalents an entity-tracking run needs (issue 17), derived
from what the run did; `interp.cost` compares it with the forwards it measured.

Every row of a batch counts one forward (batching saves wall time, not rows); only the analysed
model's forwards count (the CMAP source model has its own). With N path-patching prompts, E
held-out prompts and R reference prompts:

- accuracy of the full model: E;
- mean-ablation means: R (one forward per reference prompt, once per model);
- path patching, per scored group with S senders: N clean + N corrupted forwards (their head
  outputs), plus one forward per sender batch row, N x S (each sender's patched path);
- faithfulness checks: one forward per evaluated head set per prompt: the found groups on the
  N prompts, the full model and each pruning trial on them (N each), the circuit and each
  random circuit on the E prompts;
- DCM, per desideratum of n pairs split train / val / test: n source forwards (the values to
  patch in), one masked forward per training pair per epoch, one per validation pair per
  epoch, and three per test pair (learned mask, all heads, none);
- CMAP: the base model on the E prompts, and once more per patch (each group, the circuit);
- greedy and learned searches: one forward per evaluated head set per prompt, one per training
  row per step of the learned gates.
"""

from __future__ import annotations

__all__ = ["forward_floor", "greedy_floor"]


def greedy_floor(g: dict) -> float:
    """Forwards of a `greedy_circuit` run: full accuracy on its prompt sets, each round's
    single-head trials over the kept heads (plus the batch itself when several heads drop),
    the validation checks, and the held-out check."""
    n_sel, n_val, n_eval = g["n_select"], g["n_validation"] or 0, g["n_eval"]
    total = n_sel + n_val + 2 * n_eval
    for step in g["trajectory"]:
        dropped = len(step["dropped"].split())
        total += (step["n_heads"] + dropped) * n_sel + (n_sel if dropped > 1 else 0)
        total += n_val if "faithfulness_validation" in step else 0
    return float(total)


def _learned_floor(learned: dict) -> float:
    n_sel, n_val, n_eval = learned["n_select"], learned["n_validation"], learned["n_eval"]
    total = n_val + n_eval
    for run in learned["runs"]:
        total += learned["epochs"] * n_sel + n_val
        trajectory = run.get("refine_trajectory")
        total += (
            greedy_floor(
                {
                    "n_select": n_sel,
                    "n_validation": n_val,
                    "n_eval": n_eval,
                    "trajectory": trajectory,
                }
            )
            if trajectory is not None
            else n_eval
        )
    best = learned["best"] or {}
    return float(total + n_eval * len(best.get("random_faithfulness") or []))


def _dcm_floor(dcm: dict, epochs: int) -> float:
    total = 0
    for r in dcm.values():
        n_train, n_val, n_test = r.split
        total += (n_train + n_val + n_test) + epochs * (n_train + n_val) + 3 * n_test
    return float(total)


def forward_floor(result) -> tuple[float, str]:
    """(forward equivalents, how) for an entity-tracking `Result` (see the module docstring)."""
    cfg = result.config
    n, e = cfg.n_prompts, cfg.n_eval
    parts = {"full accuracy": e}
    if not result.at_chance:
        parts["reference means"] = cfg.n_reference
        parts["path patching"] = sum(2 * n + n * hs.n_scored for hs in result.scores.values())
    if result.circuit is not None:
        parts["faithfulness checks"] = (
            n
            + (n + n * result.prune_trials if result.prune_trials else 0)
            + e * (1 + len(result.random_faithfulness))
        )
    if result.dcm:
        parts["DCM"] = _dcm_floor(result.dcm, cfg.dcm_epochs)
    if result.cmap:
        parts["CMAP"] = e * (1 + len(result.cmap["rows"]))
    if result.greedy is not None:
        parts["greedy search"] = greedy_floor(result.greedy)
    if result.learned is not None:
        parts["learned gates"] = _learned_floor(result.learned)
    how = " + ".join(f"{k} {v:g}" for k, v in parts.items() if v)
    return float(
        sum(parts.values())
    ), f"forward equivalents: {how} (N = {n} prompts, E = {e} held out)"
