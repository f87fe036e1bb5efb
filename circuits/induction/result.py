"""`Result`: what the induction analyzer found on one model, on the analyzer protocol
(`interp.analysis.AnalysisResult`): numbers, figures, roles, circuits, provenance, report, floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from interp import plots
from interp.atlas import RoleMap
from interp.checks import Check, heads_phrase, random_sets
from interp.errors import InvalidArgumentError
from interp.heads import Head

from .config import Config, config_record
from .trajectory import Trajectory

__all__ = ["Result", "InductionResult", "ROLES"]

ROLES = (
    "induction",
    "prefix-matching (no copying)",
    "positional",
    "previous-token",
    "duplicate-token",
    "other",
)
_HEATMAPS = (
    "induction",
    "prefix_matching",
    "copying",
    "previous_token",
    "duplicate_token",
    "ov_eigen",
)


@dataclass(frozen=True, eq=False)
class Result:
    """Head scores (with bootstrap CIs), per-length scores, roles, copy losses and the causal check.

    scores: HeadScores by name: prefix_matching, duplicate_token, previous_token, copying, ov_eigen,
      induction (= the smallest per-span-length prefix-matching score: high only if the head matches
      at every length). Each (except ov_eigen) carries ``meta["ci_low"]``/``meta["ci_high"]``.
    by_length: {span length: {"prefix_matching": [L, H], "copying": [L, H],
      "copying_ci_low": [L, H]}}.
    offset, offset_mass: [L, H] the relative distance each head attends to most from second-copy
      queries, and its mean attention there.
    head_roles: {"L1H2": role}; loss: first/second-copy losses with CIs, overall and per span
      length.
    causal: the causal check (`circuits.induction.causal.causal_check`), or None.
    tl: the TransformerLens cross-check (`tl_agreement`), or None.
    trajectory: the same heads across training checkpoints (`track`), or None.
    """

    ROLES = ROLES
    analyzer = "induction"

    model: str
    config: Config
    data: dict
    scores: dict
    by_length: dict
    offset: torch.Tensor
    offset_mass: torch.Tensor
    head_roles: dict
    loss: dict
    causal: Optional[dict] = None
    tl: Optional[dict] = None
    trajectory: Optional[Trajectory] = None

    # --- heads by role ------------------------------------------------------------------------

    def _ranked(self) -> list[str]:
        ind = self.scores["induction"]
        return [f"L{l}H{h}" for l, h, _ in ind.top(ind.n_scored)]

    def heads_with_role(self, role: str) -> list[str]:
        """Heads of `role`, best induction score first."""
        if role not in ROLES:
            raise InvalidArgumentError(f"unknown role {role!r}; roles: {ROLES}")
        return [name for name in self._ranked() if self.head_roles[name] == role]

    @property
    def induction_heads(self) -> list[str]:
        """Heads that prefix-match and copy at every span length, best first."""
        return self.heads_with_role("induction")

    @property
    def positional_heads(self) -> dict[str, int]:
        """{head: offset} of heads that attend at a fixed distance."""
        return {
            name: int(self.offset[Head.parse(name).layer, Head.parse(name).head])
            for name in self.heads_with_role("positional")
        }

    def ranked_induction(self, k: int) -> list[str]:
        """Top-k heads by induction score, induction heads first (then other heads by score)."""
        ranked = self._ranked()
        first = [n for n in ranked if self.head_roles[n] == "induction"]
        return (first + [n for n in ranked if n not in first])[:k]

    # --- behaviour ----------------------------------------------------------------------------

    @property
    def has_induction_behaviour(self) -> bool:
        """In-context copying: second-copy loss at most ``behaviour_ratio`` x the first (whole CI
        below).

        Copying the continuation of an earlier occurrence cuts the loss on the second copy by a
        large factor; a few percent (which token statistics of the context can give) is not counted.
        """
        return bool(self.loss["ratio_ci"][1] < self.config.behaviour_ratio)

    @property
    def verdict(self) -> str:
        lo, hi = self.loss["ratio_ci"]
        r = self.loss["ratio"]
        if self.has_induction_behaviour:
            return (
                f"induction behaviour: second-copy loss is {r:.2f}x the first "
                f"(CI {lo:.2f}-{hi:.2f})"
            )
        if hi < 1:
            return (
                f"no induction behaviour (negative case): second-copy loss is {r:.4f}x the first "
                f"(CI {lo:.4f}-{hi:.4f}): lower by {100 * (1 - r):.1f}%, far from the <= "
                f"{self.config.behaviour_ratio}x that copying the earlier continuation gives"
            )
        return (
            f"no induction behaviour (negative case): second-copy loss is not lower than the first "
            f"({r:.4f}x, CI {lo:.4f}-{hi:.4f})"
        )

    # --- the protocol -------------------------------------------------------------------------

    def summary(self) -> dict:
        """The scoring numbers, JSON-ready (`numbers` adds the flattened causal check)."""
        pm, ind = self.scores["prefix_matching"], self.scores["induction"]
        top = pm.top(1)[0]
        return {
            "max_prefix_matching": top[2],
            "max_prefix_matching_head": f"L{top[0]}H{top[1]}",
            "heads_prefix_matching_ge_0.5": [f"L{l}H{h}" for l, h in pm.heads(0.5)],
            "top_induction_score": [
                {"head": f"L{l}H{h}", "score": s, "role": self.head_roles[f"L{l}H{h}"]}
                for l, h, s in ind.top(5)
            ],
            "induction_heads": self.induction_heads,
            "positional_heads": self.positional_heads,
            "roles": {r: [n for n, v in self.head_roles.items() if v == r] for r in ROLES},
            "loss": self.loss,
            "induction_behaviour": self.has_induction_behaviour,
            "verdict": self.verdict,
            "causal": self.causal,
        }

    def numbers(self) -> dict:
        """Every measured number (summary.json's ``numbers``)."""
        numbers = self.summary()
        numbers.update(_causal_numbers(self.causal or {}))
        if self.tl is not None:
            numbers["transformer_lens_agreement"] = {
                k: v for k, v in self.tl.items() if k not in ("tl_scores", "our_scores")
            }
            numbers["transformer_lens_scores"] = {
                "tl": self.tl.get("tl_scores"),
                "ours": self.tl.get("our_scores"),
            }
        if self.trajectory is not None:
            numbers["trajectory"] = self.trajectory.to_dict()
        return numbers

    def figures(self) -> dict:
        """Plotly figures: head maps of each score, the copy losses by span length, and the
        trajectory's figures when checkpoints were tracked."""
        groups = {"induction": self.induction_heads, "positional": list(self.positional_heads)}
        groups = {k: v for k, v in groups.items() if v}
        figs = {}
        for name in _HEATMAPS:
            hs = self.scores[name]
            figs[f"heads_{name}"] = plots.head_heatmap(
                hs.scores,
                title=f"{self.model}: {name.replace('_', ' ')} ({hs.method})",
                highlight=groups or None,
                value_name=name,
            )
        figs["copy_loss"] = self._copy_loss_figure()
        if self.trajectory is not None:
            figs.update(self.trajectory.figures())
        return figs

    def _copy_loss_figure(self):
        lengths = sorted(self.loss["by_length"])
        by_length = self.loss["by_length"]
        return plots.line_curves(
            lengths,
            {
                "first copy": [by_length[L]["first"] for L in lengths],
                "second copy": [by_length[L]["second"] for L in lengths],
            },
            title=(
                f"{self.model}: next-token loss on the first vs second copy (mean over "
                f"{self.data['n_seqs']} seqs; ratio {self.loss['ratio']:.3f})"
            ),
            x_title="span length",
            y_title="loss (nats)",
        )

    def roles(self) -> list[RoleMap]:
        """The induction heads for the atlas, with the causal check and the copy-loss ratio,
        then the heads that prefix-match without copying (the other candidates the ablation
        draws from), each with its induction score."""
        grid = self.scores["induction"].scores

        def scored(names: list[str]) -> dict[str, float]:
            return {n: float(grid[Head.parse(n).layer, Head.parse(n).head]) for n in names}

        heads = scored(self.induction_heads)
        causal = self.causal or {}
        checks = {
            "second-copy loss x, top heads ablated": causal.get("top_ratio"),
            "second-copy loss x, random heads (max)": causal.get("random_ratio_max"),
            "second/first copy loss": self.loss.get("ratio"),
        }
        return [
            RoleMap(
                "induction",
                "induction (Olsson / Hernandez)",
                heads,
                {k: v for k, v in checks.items() if isinstance(v, (int, float))},
                note=self.verdict,
                checks=self.checks(),
            ),
            RoleMap(
                "prefix-matching (no copying)",
                "induction (Olsson / Hernandez)",
                scored(self.heads_with_role("prefix-matching (no copying)")),
                note="attend to the token after the earlier copy but do not raise its logit",
            ),
        ]

    def checks(self) -> list[Check]:
        """The ablation check as a sentence, against its bars: the median random head set of
        the same size multiplies the second-copy loss by at most the control ratio (x1.2 by
        default: one draw that hits a head the model cannot do without moves the mean, not
        the median), and so does the mean of sets drawn outside the located circuit."""
        c = self.causal
        if not c or c.get("random_ratio_max") is None:
            return []
        lo, hi = c["top_ratio_ci"]
        limit = c["control_ratio"]
        effect = (
            f"{c['mode']}-ablating {heads_phrase(c['heads'], 'induction')} multiplies the "
            f"second-copy loss x{c['top_ratio']:.2f} (CI {lo:.2f}-{hi:.2f})"
        )
        control = (
            f"{random_sets(len(c['random']), len(c['heads']))}: median "
            f"x{c['random_ratio_median']:.2f}, max x{c['random_ratio_max']:.2f}"
        )
        bars = [(f"control median <= x{limit:g}", c["random_ratio_median"] <= limit)]
        outside = c.get("random_outside_circuit_ratio_mean")
        if outside is not None:
            control += f"; drawn outside the located circuit: mean x{outside:.2f}"
            bars.append((f"outside control mean <= x{limit:g}", outside <= limit))
        return [Check(effect, control, tuple(bars))]

    def circuits(self) -> list:
        """No circuit graph: the located heads are reported as roles and in the causal check."""
        return []

    def provenance(self) -> dict:
        return {
            "model": self.model,
            "data": {**self.data, "config": config_record(self.config)},
            "seeds": {"sequences": self.config.seed, "random_heads": self.config.seed},
        }

    def report(self) -> str:
        """What a terminal user reads: headline scores, copy losses, causal check, TL agreement."""
        s = self.summary()
        lines = [
            f"model: {self.model}; max prefix-matching {s['max_prefix_matching']:.3f} "
            f"({s['max_prefix_matching_head']}); "
            f"induction heads: {', '.join(s['induction_heads']) or 'none'}",
            f"copy loss first {self.loss['first']:.3f} second {self.loss['second']:.3f}; "
            f"{self.verdict}",
        ]
        if self.causal:
            lines += _causal_lines(self.causal)
        if self.tl is not None and self.tl.get("n_seqs"):
            lines.append(
                f"transformer-lens head_detector: "
                f"Spearman {self.tl['spearman_prefix_matching']:.3f} "
                f"on {self.tl['n_seqs']} sequences"
            )
        return "\n".join(lines)

    def floor(self) -> tuple[float, str]:
        """The fewest full-sequence forward equivalents this analysis needs, and how.

        With N = `Config.n_seqs` repeated sequences and H = n_layers x n_heads heads, each row
        of a batch counting one forward (batching saves wall time, not rows):

        - scoring: N (one forward per sequence gives every head's statistics and both copy
          losses; the clean z it captures would also give the mean-ablation means);
        - single-head ablation ranking: H x N (each head alone, every sequence; the clean
          losses come from scoring); with the attribution sweep N (one forward and backward per
          sequence) + S x N, S = the shortlist ablated exactly;
        - effect ranking (``rank_by="effect"``): N clean + C x N on the second sequence set,
          C = the prefix-matching candidates (attribution: N clean + N + S x N);
        - the top-k set: N, and the pattern's top-k when it differs: N;
        - random control: N per draw, for each pool (outside the top-k, outside the circuit);
        - TransformerLens cross-check: one head_detector forward per compared sequence (our
          scores on those rows could come from the scoring pass).
        """
        n = self.data["n_seqs"]
        parts = {"scoring": n}
        parts.update(_causal_floor(self.causal, n, self.scores["induction"].scores.numel()))
        if self.tl is not None:
            parts["transformer-lens"] = self.tl.get("n_seqs", 0)
        how = " + ".join(f"{k} {v:g}" for k, v in parts.items() if v)
        return float(sum(parts.values())), f"forward equivalents: {how} (N = {n} sequences)"


InductionResult = Result
"""The name this result had before the analyzer became a package (kept for callers)."""


def _sweep_floor(sweep: Optional[dict], n_ablated: int, n_all: int, n: int) -> float:
    """Exact: one forward per head per sequence; attribution: one forward (and its backward,
    which the counter does not count) per sequence, then one per shortlisted head."""
    if sweep is None or sweep.get("method", "exact") == "exact":
        return n_all * n
    return n + n_ablated * n


def _causal_floor(causal: Optional[dict], n: int, n_heads: int) -> dict:
    if not causal:
        return {}
    selection = causal.get("selection")
    ranking = 0
    if selection:
        cands = selection["candidate_ratios"]
        every = selection.get("candidate_sweep", {}).get("estimates", cands)
        ranking = (
            1 + _sweep_floor(selection.get("candidate_sweep"), len(cands), len(every), 1)
        ) * selection["n_seqs"]
    single = _sweep_floor(
        causal.get("single_head_sweep"), len(causal.get("single_head_ratios", {})), n_heads, n
    )
    parts = {
        "single-head ablations": single,
        "effect ranking": ranking,
        "top-k sets": n * (2 if "top_by_pattern" in causal else 1),
        "random draws": n * (len(causal["random"]) + len(causal.get("random_outside_circuit", []))),
    }
    return parts


def _causal_numbers(c: dict) -> dict:
    """The causal check flattened into summary.json's top-level ``ablation_*`` keys."""
    if not c:
        return {}
    out = {
        "ablation_top_heads": c["heads"],
        "ablation_top_second_loss_ratio": c["top_ratio"],
        "ablation_random_second_loss_ratios": [d["ratio"] for d in c["random"]],
        "ablation_random_second_loss_ratio_max": c["random_ratio_max"],
        "ablation_random_second_loss_ratio_mean": c["random_ratio_mean"],
        "ablation_random_second_loss_ratio_median": c["random_ratio_median"],
        "ablation_random_share_within_control": c["random_share_within_control"],
        "ablation_mode": c["mode"],
        "ablation_rank_by": c.get("rank_by"),
    }
    if c.get("selection"):
        out["ablation_selection"] = c["selection"]
    if "top_by_pattern" in c:
        out["ablation_top_by_pattern"] = c["top_by_pattern"]
    if "single_head_ratios" in c:
        out["single_head_ablation_ratios"] = c["single_head_ratios"]
        sweep = c.get("single_head_sweep", {})
        out["single_head_sweep"] = sweep.get("method", "exact")
        if "estimates" in sweep:
            out["single_head_ablation_estimates"] = sweep["estimates"]
            out["single_head_estimate_spearman"] = sweep["spearman"]
        out["located_by_role"], out["located_by_effect"] = (
            c["located_by_role"],
            c["located_by_effect"],
        )
    if "random_outside_circuit" in c:
        out["ablation_circuit"] = c["circuit"]
        out["ablation_random_outside_circuit_ratios"] = [
            d["ratio"] for d in c["random_outside_circuit"]
        ]
        out["ablation_random_outside_circuit_ratio_max"] = c["random_outside_circuit_ratio_max"]
    return out


def _causal_lines(c: dict) -> list[str]:
    lines = [
        f"{c['mode']}-ablating {', '.join(c['heads'])} "
        f"(top {len(c['heads'])} by {c.get('rank_by')}): "
        f"second-copy loss x{c['top_ratio']:.2f}"
    ]
    if "top_by_pattern" in c:
        p = c["top_by_pattern"]
        lines.append(
            f"top {len(p['heads'])} by pattern score ({', '.join(p['heads'])}): x{p['ratio']:.2f}"
        )
    sweep = c.get("single_head_sweep", {})
    if sweep.get("method") == "attribution":
        rho = sweep.get("spearman")
        lines.append(
            f"single-head sweep by attribution: {len(sweep['estimates'])} heads estimated, top "
            f"{len(sweep['shortlist'])} ablated exactly (estimate vs exact Spearman "
            f"{'n/a' if rho is None else f'{rho:.2f}'})"
        )
    if c["random_ratio_max"] is not None:
        lines.append(
            f"random head sets ({len(c['random'])}): mean x{c['random_ratio_mean']:.2f}, median "
            f"x{c['random_ratio_median']:.2f}, max x{c['random_ratio_max']:.2f}; "
            f"{100 * c['random_share_within_control']:.0f}% at most x{c['control_ratio']:.1f}"
        )
    if c.get("random_outside_circuit_ratio_max") is not None:
        lines.append(
            f"random heads outside the located circuit ({len(c['circuit'])} heads: induction / "
            f"previous-token roles, or x{c.get('located_ratio', 1.2):.1f} when ablated alone): "
            f"max x{c['random_outside_circuit_ratio_max']:.2f}"
        )
    return lines
