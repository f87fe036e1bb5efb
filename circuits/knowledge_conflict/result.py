"""`ConflictResult`: located memory / context heads, the PH3 outcomes, the random-head controls and
the attribution check, on the analyzer protocol (`interp.analysis.AnalysisResult`): numbers,
figures, roles, circuits, provenance, report, floor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from interp import plots
from interp.atlas import RoleMap
from interp.checks import Check, heads_phrase, rate_check
from interp.heads import Head
from interp.results import HeadScores
from interp.stats import spearman

from .config import SIGN_NOTE, Config

__all__ = ["ConflictResult", "DIRECTIONS"]

DIRECTIONS = (("toward_memory", "context", "memory"), ("toward_context", "memory", "context"))
"""(PH3 direction, role of the pruned heads, the rate that pruning should raise)."""

SOURCE = "knowledge conflict (Jin et al.)"


@dataclass
class ConflictResult:
    """Located heads, PH3 outcomes, controls and the attribution check, with provenance.

    scores / attribution: memory (+) vs context (-) scores by exact path patching and by
      attribution patching, on the locating split.
    memory_heads / context_heads: the heads PH3 pruned (toward context / toward memory).
    ph3: per direction (`DIRECTIONS`) the pruned heads, k and its validation curve, rates before
      and after on held-out subjects and on the other format, and the random-head controls.
    data: each format's conflict-set summary, split sizes and subjects.
    """

    analyzer = "knowledge_conflict"

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
        for direction, _, rate in DIRECTIONS:
            r = self.ph3.get(direction, {})
            if "held_out" not in r:
                out[direction] = {"error": r.get("error", "not run")}
                continue
            row = {"k": r["k"], "rate": rate}
            for part in ("held_out", "other_format"):
                row[part] = _claims(r, part, rate)
            out[direction] = row
        return out

    def numbers(self) -> dict:
        """Every measured number (summary.json's ``numbers``)."""
        return {
            "must_show": self.must_show(),
            "memory_heads": [str(h) for h in self.memory_heads],
            "context_heads": [str(h) for h in self.context_heads],
            "top_scores": {
                str(Head(l, h)): s for l, h, s in self.scores.top(min(10, self.scores.n_scored))
            },
            "sign": SIGN_NOTE,
            "ph3": self.ph3,
            "k_curves_validation": self.k_curves,
            "attribution_spearman_vs_path_patching": spearman(
                self.attribution.scores, self.scores.scores
            ),
            "path_patched_heads": self.scores.n_scored,
            "path_patched_of": self.scores.scores.numel(),
            "timings_s": self.timings,
        }

    def figure(self):
        """Head map of the path-patching scores, the pruned heads marked."""
        return plots.head_heatmap(
            self.scores.scores,
            title=f"{self.model}: memory (+) vs context (-) heads, path patching to logits",
            highlight={
                "memory heads (pruned toward context)": [
                    (h.layer, h.head) for h in self.memory_heads
                ],
                "context heads (pruned toward memory)": [
                    (h.layer, h.head) for h in self.context_heads
                ],
            },
            value_name="LD(conflict) - LD(patched)",
        )

    def k_figure(self):
        """The validation curves of the k search: target rate vs number of pruned heads."""
        ks = sorted({k for curve in self.k_curves.values() for k in curve})
        curves = {
            name: [curve.get(k, float("nan")) for k in ks] for name, curve in self.k_curves.items()
        }
        return plots.line_curves(
            ks,
            curves,
            title="PH3 validation: target rate vs number of pruned heads",
            x_title="k",
            y_title="rate",
        )

    def figures(self) -> dict:
        figs = {"conflict_heads": self.figure()}
        if self.k_curves:
            figs["conflict_k_validation"] = self.k_figure()
        return figs

    def write_files(self, out) -> list[Path]:
        """The data files beside the figures: the path-patching scores (conflict_scores.json)."""
        path = Path(out) / "conflict_scores.json"
        self.scores.to_json(path)
        return [path]

    def roles(self) -> list[RoleMap]:
        """Memory and context heads for the atlas; the memory map carries the held-out checks."""
        grid = self.scores.scores
        score = lambda h: float(grid[h.layer, h.head])  # noqa: E731
        checks = {
            f"{d}: {k}": v
            for d, row in self.must_show().items()
            if isinstance(row, dict)
            for k, v in row.get("held_out", {}).items()
            if isinstance(v, (int, float))
        }
        return [
            RoleMap(
                "memory",
                SOURCE,
                {str(h): score(h) for h in self.memory_heads},
                checks,
                checks=self.checks(),
            ),
            RoleMap("context", SOURCE, {str(h): score(h) for h in self.context_heads}),
        ]

    def checks(self) -> list[Check]:
        """Each PH3 direction's held-out and other-format check as a sentence, against its bars:
        the target rate rises by 20 points or more, random single heads move the rates by 5
        or less (also when drawn outside every located head)."""
        out, shown = [], self.must_show()
        for direction, pruned_role, rate in DIRECTIONS:
            r = self.ph3.get(direction, {})
            for part, where in (("held_out", "held out"), ("other_format", "other format")):
                row = shown.get(direction, {}).get(part)
                if not isinstance(row, dict) or "before" not in row:
                    continue
                control = r[f"random_heads_{part}"]
                heads = heads_phrase(r["pruned"], pruned_role)
                bars = [("rise >= 20", row["rise_ge_20"]), ("control <= 5", row["random_le_5"])]
                if "random_outside_located_le_5" in row:
                    bars.append(("outside control <= 5", row["random_outside_located_le_5"]))
                out.append(
                    rate_check(
                        f"{where}: pruning {heads}",
                        f"{rate} use",
                        row["before"],
                        row["after"],
                        random_move=row["random_mean_abs_move_points"],
                        n_draws=control["n_draws"],
                        k=control["k"],
                        outside_move=row.get("random_outside_located_mean_abs_move_points"),
                        bars=tuple(bars),
                    )
                )
        return out

    def circuits(self) -> list:
        """No circuit graph: the heads are reported as roles, with the pruning checks."""
        return []

    def provenance(self) -> dict:
        return {
            "model": self.model,
            "data": {**self.data, "config": asdict(self.config)},
            "seeds": {"seed": self.config.seed},
        }

    def report(self) -> str:
        """What a terminal user reads: the pruned heads and each direction's held-out move."""
        lines = [
            f"pruned memory heads: {', '.join(map(str, self.memory_heads))}",
            f"pruned context heads: {', '.join(map(str, self.context_heads))}",
        ]
        for direction, row in self.must_show().items():
            if "held_out" in row:
                h = row["held_out"]
                lines.append(
                    f"{direction}: k={row['k']}, "
                    f"{row['rate']} rate {h['before']:.2f} -> {h['after']:.2f} "
                    f"held out ({h['rise_points']:+.1f} points; random heads move at most "
                    f"{h['random_mean_abs_move_points']:.1f} on average)"
                )
        return "\n".join(lines)

    def floor(self) -> tuple[float, str]:
        """The fewest full-sequence forward equivalents this analysis needs, and how.

        Each prompt of a batch counts one forward (batching saves wall time, not rows):

        - data: one closed-book forward per candidate item and format (does the model know it?);
        - path patching on the N locating prompts: one clean and one corrupted forward each,
          plus one per sender head (H = the heads patched exactly: every head, or the
          attribution shortlist on a large model; all reach the logits): N x (2 + H);
        - attribution patching: the same clean and corrupted forwards, 2N (backward not counted);
        - PH3, per direction: one forward per validation prompt for each single-head pruning
          that orders the candidates and for each k of the grid; the pruned model on the
          held-out and the other-format prompts; one per prompt per random draw;
        - the unpruned rates on the held-out and other-format prompts, once.
        """
        n_heads = self.scores.n_scored
        parts = {
            "data": sum(
                _candidates(s)
                for s in self.data.values()
                if isinstance(s, dict) and "template" in s
            ),
            "path patching": self.data["n_locate"] * (2 + n_heads),
            "attribution patching": 2 * self.data["n_locate"],
            "unpruned rates": self.data["n_test"] + self.data["n_test_other_format"],
        }
        for direction, r in self.ph3.items():
            parts[direction] = _direction_floor(r, self.data)
        how = " + ".join(f"{k} {v:g}" for k, v in parts.items() if v)
        return float(sum(parts.values())), f"forward equivalents: {how}"


def _claims(r: dict, part: str, rate: str) -> dict:
    """One direction's claims on one split: the rise of the target rate and the controls' moves."""
    if "skipped" in r[part]:
        return {"skipped": r[part]["skipped"]}
    rise = r[part]["delta_points"][rate]
    control = r[f"random_heads_{part}"]
    worst = max(abs(v) for v in control["mean_delta_points"].values())
    row = {
        "before": r[part]["before"][rate],
        "after": r[part]["after"][rate],
        "rise_points": rise,
        "rise_ge_20": rise >= 20,
        "random_mean_abs_move_points": worst,
        "random_max_abs_move_points": control["max_abs_delta_points"],
        "random_median_abs_move_points": control["median_abs_move_points"],
        "random_share_within_5_points": control["share_of_draws_within_5_points"],
        "random_le_5": worst <= 5,
    }
    outside = r.get(f"random_outside_located_{part}")
    if outside is not None:
        w_out = max(abs(v) for v in outside["mean_delta_points"].values())
        row.update(
            random_outside_located_mean_abs_move_points=w_out,
            random_outside_located_max_abs_move_points=outside["max_abs_delta_points"],
            random_outside_located_le_5=w_out <= 5,
        )
    return row


def _candidates(summary: dict) -> int:
    """Items of a conflict set that reached the model's closed-book check."""
    excluded = summary["excluded"]
    return (
        summary["n_candidates"] - excluded["context_equals_memory"] - excluded["same_first_token"]
    )


def _direction_floor(r: dict, data: dict) -> int:
    if "k" not in r:
        return 0
    n_val, sizes = (
        data["n_val"],
        {"held_out": data["n_test"], "other_format": data["n_test_other_format"]},
    )
    ordering = len(r["candidates"]) * n_val if r.get("order") == "validation" else 0
    total = ordering + len(r["k_validation_curve"]) * n_val
    for part, n in sizes.items():
        draws = sum(
            len(r.get(f"{pool}_{part}", {}).get("draws", []))
            for pool in ("random_heads", "random_outside_located")
        )
        total += n * (1 + draws)
    return total
