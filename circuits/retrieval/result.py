"""`Result`: the whole default run of the retrieval analyzer (`circuits.retrieval.analyze`) on
the analyzer protocol (`interp.analysis.AnalysisResult`): both modes, their agreement, the
no-needle control and the pruning check, with numbers, figures, roles, provenance, report and
floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from interp.atlas import RoleMap
from interp.checks import Check, heads_phrase, percent, random_sets, signed

from .config import MODES, Config
from .modes import RetrievalResult, decode_share
from .pruning import PruneResult, curve_numbers, prune_curve_figure

__all__ = ["Result", "describe"]


@dataclass(frozen=True, eq=False)
class Result:
    """The whole default run (`circuits.retrieval.analyze`) on the analyzer protocol.

    primary / other: the configured mode's `RetrievalResult` and the other mode's, on the same
    prompts; agreement: their rank agreement (`compare_modes`); control_no_needle_accuracy: NIAH
    accuracy with the needle cut out (can the model answer without it?); prune: the pruning
    check at k (None when skipped); prune_curve: the check at every k (None when not run);
    heads_total: the model's head count; control: the no-needle prompts' (tokens, answer
    tokens) lengths, for `floor`.
    """

    analyzer = "retrieval"

    primary: RetrievalResult
    other: RetrievalResult
    agreement: dict
    control_no_needle_accuracy: float
    heads_total: int
    prune: Optional[PruneResult] = None
    prune_curve: Optional[tuple] = None
    control: tuple = ()

    @property
    def model(self) -> str:
        return self.primary.model_name

    @property
    def config(self) -> Config:
        return self.primary.config

    def numbers(self) -> dict:
        """Every number of the run: summary.json's ``numbers``."""
        primary, other = self.primary, self.other
        numbers = {
            "model": self.model,
            "heads_total": self.heads_total,
            primary.config.mode: primary.numbers(),
            other.config.mode: other.numbers(),
            "mode_agreement": self.agreement,
            "control_no_needle_accuracy": self.control_no_needle_accuracy,
        }
        if self.prune is not None:
            numbers["prune"] = self.prune.to_dict()
            numbers["prune"]["unpruned_accuracy_by_metric"] = {  # what teacher forcing changes
                run.config.mode: run.n_kept / max(run.n_tests, 1) for run in (primary, other)
            }
        else:
            numbers["prune"] = {
                "skipped": True,
                "reason": "no test solved" if not primary.retrieves else "--no-prune",
            }
        if self.prune_curve:
            numbers["prune_curve"] = curve_numbers(self.prune_curve)
        return numbers

    def write_files(self, out) -> list:
        """The data file beside the figures: the configured mode's head scores
        (retrieval_scores.json, which `HeadScores.from_json` and ``interp kv --scores`` read)."""
        path = Path(out) / "retrieval_scores.json"
        self.primary.scores.to_json(path)
        return [path]

    def figures(self) -> dict:
        """Score heatmaps of both modes, the NIAH accuracy grid, and the pruning check's bars and
        curve when they ran."""
        figs = {
            "retrieval_scores": self.primary.plot(),
            "niah_accuracy": self.primary.plot_accuracy(),
            f"retrieval_scores_{self.other.config.mode}": self.other.plot(),
        }
        if self.prune is not None:
            figs["prune"] = self.prune.figure()
        if self.prune_curve:
            figs["prune_curve"] = prune_curve_figure(self.prune_curve)
        return figs

    def roles(self) -> list[RoleMap]:
        """The retrieval heads (score above the threshold) for the atlas, with the pruning
        check's numbers as their causal evidence."""
        if not self.primary.retrieves:
            return []
        grid = self.primary.scores.scores
        heads = {f"L{l}H{h}": float(grid[l, h]) for l, h in self.primary.scores.heads()}
        prune = self.numbers()["prune"]
        checks = {k: v for k, v in prune.items() if isinstance(v, (int, float))}
        return [RoleMap("retrieval", "retrieval (Wu et al.)", heads, checks, checks=self.checks())]

    def checks(self) -> list[Check]:
        """The pruning check as a sentence, against its bars: masking the top-k heads drops
        NIAH accuracy more than masking k random heads does, and the random heads drop it by
        5 points or less (the paper: random masking leaves NIAH near 100%)."""
        prune = self.numbers()["prune"]
        if prune.get("skipped"):
            return []
        top, random_drop = prune["drop_top_points"], prune["mean_random_drop_points"]
        effect = (
            f"masking {heads_phrase(prune['top_heads'], 'retrieval')} drops NIAH accuracy "
            f"{percent(prune['baseline_accuracy'])} -> {percent(prune['top_accuracy'])} "
            f"({signed(-top)})"
        )
        draws = len(prune["random_draws"])
        if not draws:
            return [Check(effect, "no random heads left to draw as the control")]
        control = f"{random_sets(draws, prune['k'])} drop it {random_drop:.1f} points on average"
        bars = (("drop > control", top > random_drop), ("control <= 5", random_drop <= 5))
        return [Check(effect, control, bars)]

    def circuits(self) -> list:
        """No circuit graph: the retrieval heads are reported as a role."""
        return []

    def provenance(self) -> dict:
        cfg, primary = self.config, self.primary
        return {
            "model": self.model,
            "data": {
                "n_tests": primary.n_tests,
                "lengths": list(primary.lengths),
                "depths": list(primary.depths),
                "needles": primary.scores.meta["needles"],
                "template": cfg.template,
                "haystack_chars": len(cfg.haystack or ""),
            },
            "seeds": {"data": cfg.seed, "random_heads": cfg.seed},
        }

    def report(self) -> str:
        """What a terminal user reads: each mode's heads, the control, the agreement, the
        pruning."""
        return describe(self.numbers())

    def floor(self) -> tuple[float, str]:
        """The fewest full-sequence forward equivalents this run needs, and how.

        With N test prompts (each row of a batch counts: batching saves time, not rows):

        - teacher-forced scoring: N, one forward over prompt + reference answer per prompt
          scores every answer position of every head;
        - decode-mode scoring and the no-needle control need the model's own text: per
          prompt one forward over the prompt and each further answer step over the cache,
          counting its share 1 / (tokens before it + 1) (`interp.cost`), for the answer's
          length (the shortest decode that can emit the reference);
        - the pruning check: with the answer fixed by the reference, one teacher-forced forward
          per prompt per head set: the unpruned baseline once, then the located set and each
          random draw at every k of the curve (and at k when the curve did not run it).
        """
        n = self.primary.n_tests
        parts = {
            f"{self.primary.config.mode} scoring": self.primary.floor(),
            f"{self.other.config.mode} scoring": self.other.floor(),
            "no-needle control": decode_share(self.control),
        }
        checks = list(self.prune_curve or ())
        if self.prune is not None and all(c.k != self.prune.k for c in checks):
            checks.append(self.prune)
        if checks:
            parts["pruning"] = float(n * (1 + sum(1 + len(c.random_draws) for c in checks)))
        how = " + ".join(f"{k} {v:.3g}" for k, v in parts.items() if v)
        return float(sum(parts.values())), f"forward equivalents: {how} (N = {n} test prompts)"


def describe(numbers: dict) -> str:
    """The terminal lines of a run's numbers."""
    lines = [f"model: {numbers['model']} ({numbers['heads_total']} heads)"]
    for mode in MODES:
        n = numbers[mode]
        if n["retrieves"]:
            lines.append(
                f"{mode}: kept {n['n_kept']}/{n['n_tests']}, share above {n['threshold']}: "
                f"{n['share_above']:.3f} ({n['n_above']} heads: {', '.join(n['heads_above'][:8])})"
            )
        else:
            lines.append(f"{mode}: {n['note']}")
    lines.append(
        f"control (needle cut out, answered anyway): {numbers['control_no_needle_accuracy']:.2f}"
    )
    agree = numbers["mode_agreement"]
    if "spearman_above_threshold" in agree:
        lines.append(
            f"spearman (heads above threshold): {agree['spearman_above_threshold']}, "
            f"all heads: {agree['spearman_all_heads']}"
        )
    prune = numbers["prune"]
    if not prune.get("skipped"):
        lines.append(
            f"prune top-{prune['k']} ({prune['mode']}, {prune.get('metric', 'decode')}): "
            f"accuracy {prune['baseline_accuracy']:.2f} "
            f"-> {prune['top_accuracy']:.2f} (drop {prune['drop_top_points']:.1f} pts); random "
            f"drops {[round(d['drop_points'], 1) for d in prune['random_draws']]} "
            f"(mean {prune['mean_random_drop_points']:.1f})"
        )
    for c in numbers.get("prune_curve") or []:
        lines.append(
            f"  k={c['k']}: top drop {c['drop_top_points']:.1f} pts, random mean "
            f"{c['mean_random_drop_points']:.1f}"
        )
    return "\n".join(lines)
