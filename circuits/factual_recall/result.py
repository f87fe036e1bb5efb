"""`RecallResult`: behaviour, attributed heads, sweeps, chosen settings, controls and frequency
bins, on the analyzer protocol (`interp.analysis.AnalysisResult`): numbers, figures, roles,
circuits, provenance, report, floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from interp import plots
from interp.atlas import RoleMap
from interp.checks import Check, rate_check
from interp.heads import Head
from interp.interventions import ScaleValues

from .config import LABELS, Config, config_record

__all__ = ["RecallResult"]

SOURCE = "factual recall (Yu et al.)"


@dataclass
class RecallResult:
    """Behaviour, attributed heads, sweeps, chosen settings, controls, frequency, provenance.

    baseline: behaviour rates on the attribution split. attribution: DLA HeadScores per
    behaviour group ("all", "memorised", "in_context", ...). sweeps: per swept head the rates
    at every alpha. best: per goal the chosen head and alpha. held_out / controls: rates under
    each chosen setting on held-out subjects, and the random-head controls at its alpha.
    signs: DLA sign vs causal sign. frequency: context-use rate per subject-frequency bin.
    """

    analyzer = "factual_recall"

    model: str
    config: Config
    baseline: dict
    attribution: dict
    memory_heads: list[Head]
    in_context_heads: list[Head]
    sweeps: dict
    best: dict
    held_out: dict
    controls: dict
    signs: dict
    frequency: list
    data: dict
    timings: dict = field(default_factory=dict)

    def recipes(self) -> dict[str, ScaleValues]:
        return {goal: ScaleValues(b["head"], b["alpha"]) for goal, b in self.best.items()}

    def must_show(self) -> dict:
        """The issue's claims as measured numbers and pass/fail against its thresholds."""
        base = self.held_out.get("baseline", {})
        out = {"baseline_held_out": {x: base.get(x) for x in LABELS}}
        for goal in ("in_context", "memorised"):
            if goal not in self.best:
                out[goal] = {"error": "no head of that role was found"}
                continue
            after, control = self.held_out[goal], self.controls[goal]
            worst = max(abs(v) for v in control["mean_delta_points"].values())
            out[goal] = {
                "head": self.best[goal]["head"],
                "alpha": self.best[goal]["alpha"],
                "rate_before": base.get(goal),
                "rate_after": after[goal],
                "rate_after_ci": after[f"{goal}_ci"],
                "raised": after[goal] > base.get(goal, 1),
                "random_head_mean_abs_move_points": worst,
                "random_head_max_abs_move_points": control["max_abs_delta_points"],
                "random_head_median_abs_move_points": control["median_abs_move_points"],
                "random_head_share_within_5_points": control["share_of_draws_within_5_points"],
                "random_le_5": worst <= 5,
            }
            if "outside_located" in control:
                o = control["outside_located"]
                w_out = max(abs(v) for v in o["mean_delta_points"].values())
                out[goal].update(
                    random_outside_located_mean_abs_move_points=w_out,
                    random_outside_located_max_abs_move_points=o["max_abs_delta_points"],
                    random_outside_located_le_5=w_out <= 5,
                )
        out["in_context"]["ge_80"] = out["in_context"].get("rate_after", 0) >= 0.8
        out["sign_agreement"] = f"{self.signs.get('agree', 0)}/{self.signs.get('n', 0)}"
        out["context_rate_per_frequency_bin"] = [
            (b["freq_min"], b["freq_max"], b["context_rate"]) for b in self.frequency
        ]
        return out

    def numbers(self) -> dict:
        return {
            "must_show": self.must_show(),
            "baseline_held_out": self.held_out.get("baseline"),
            "baseline_attribution_split": self.baseline,
            "memory_heads": [str(h) for h in self.memory_heads],
            "in_context_heads": [str(h) for h in self.in_context_heads],
            "best": self.best,
            "held_out": self.held_out,
            "random_head_controls": self.controls,
            "sign_agreement": self.signs,
            "frequency_bins": self.frequency,
            "sweeps": {
                k: {
                    "head": s["head"],
                    "alphas": s["alphas"],
                    **{x: [r[x] for r in s["rates"]] for x in LABELS},
                }
                for k, s in self.sweeps.items()
            },
            "timings_s": self.timings,
        }

    def figures(self) -> dict:
        """Head map of the DLA, one curve per alpha sweep, and the rates per frequency bin."""
        figs = {}
        main = self.attribution.get("all")
        if main is not None:
            figs["recall_attribution"] = plots.head_heatmap(
                main.scores,
                title=f"{self.model}: DLA onto logit(in-context) - logit(memorised)",
                highlight={
                    "memory heads": [(h.layer, h.head) for h in self.memory_heads],
                    "in-context heads": [(h.layer, h.head) for h in self.in_context_heads],
                },
                value_name="DLA",
            )
        for name, s in self.sweeps.items():
            figs[f"recall_sweep_{name}"] = plots.line_curves(
                s["alphas"],
                {x: [r[x] for r in s["rates"]] for x in LABELS},
                title=f"{self.model}: scaling {s['head']} ({name}), {s['n_prompts']} prompts",
                x_title="alpha",
                y_title="rate",
            )
        if self.frequency:
            labels = [f"{b['freq_min']:.3g}-{b['freq_max']:.3g}" for b in self.frequency]
            fig = plots.line_curves(
                list(range(len(labels))),
                {
                    "context-use rate": [b["context_rate"] for b in self.frequency],
                    "memorised rate": [b["memorised_rate"] for b in self.frequency],
                },
                title=f"{self.model}: behaviour per subject-frequency bin",
                x_title="frequency bin (training mentions)",
                y_title="rate",
            )
            fig.data[0].error_y = {
                "type": "data",
                "symmetric": False,
                "array": [b["context_ci"][1] - b["context_rate"] for b in self.frequency],
                "arrayminus": [b["context_rate"] - b["context_ci"][0] for b in self.frequency],
            }
            fig.update_xaxes(tickvals=list(range(len(labels))), ticktext=labels)
            figs["recall_frequency"] = fig
        return figs

    def write_files(self, out) -> list[Path]:
        """The data files beside the figures: each chosen setting as a `ScaleValues` recipe
        (recipe_GOAL.json, which ``interp generate --recipe`` applies) and each attribution
        group's head scores (attribution_GROUP.json)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for goal, recipe in self.recipes().items():
            paths.append(out / f"recipe_{goal}.json")
            recipe.to_json(paths[-1])
        for name, scores in self.attribution.items():
            paths.append(out / f"attribution_{name}.json")
            scores.to_json(paths[-1])
        return paths

    def roles(self) -> list[RoleMap]:
        """Memory and in-context heads for the atlas; the memory map carries the held-out checks."""
        attribution = self.attribution.get("all")
        score = (
            (lambda h: float(attribution.scores[h.layer, h.head]))
            if attribution is not None
            else (lambda h: 0.0)
        )
        must = self.must_show()
        checks = {
            f"{goal}: {k}": v
            for goal in ("in_context", "memorised")
            for k, v in must.get(goal, {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        return [
            RoleMap(
                "recall: memory",
                SOURCE,
                {str(h): score(h) for h in self.memory_heads},
                checks,
                checks=self.checks(),
            ),
            RoleMap(
                "recall: in-context", SOURCE, {str(h): score(h) for h in self.in_context_heads}
            ),
        ]

    def checks(self) -> list[Check]:
        """Each goal's chosen scaling on the held-out prompts as a sentence, against its bars:
        the rate is raised (in-context: to 80% or more), random single heads at the same alpha
        move the rates by 5 points or less (also when drawn outside every located head)."""
        must, out = self.must_show(), []
        for goal, rate in (("in_context", "in-context use"), ("memorised", "memorised answers")):
            row = must.get(goal, {})
            if "rate_after" not in row:
                continue
            bars = [("raised", row["raised"])]
            if "ge_80" in row:
                bars.append((">= 80%", row["ge_80"]))
            bars.append(("control <= 5", row["random_le_5"]))
            if "random_outside_located_le_5" in row:
                bars.append(("outside control <= 5", row["random_outside_located_le_5"]))
            control = self.controls[goal]  # single random heads, one per draw
            out.append(
                rate_check(
                    f"held out: scaling {row['head']}'s values x{row['alpha']:g}",
                    rate,
                    row["rate_before"],
                    row["rate_after"],
                    random_move=row["random_head_mean_abs_move_points"],
                    n_draws=len(control.get("draws", [])),
                    k=1,
                    outside_move=row.get("random_outside_located_mean_abs_move_points"),
                    bars=tuple(bars),
                )
            )
        return out

    def circuits(self) -> list:
        """No circuit graph: the heads are reported as roles, with the scaling checks."""
        return []

    def provenance(self) -> dict:
        return {
            "model": self.model,
            "data": {**self.data, "config": config_record(self.config)},
            "seeds": {"seed": self.config.seed},
        }

    def report(self) -> str:
        """What a terminal user reads: the attributed heads and each chosen scaling's held-out
        rate."""
        lines = [
            f"memory heads: {', '.join(map(str, self.memory_heads))}",
            f"in-context heads: {', '.join(map(str, self.in_context_heads))}",
        ]
        for goal, b in self.best.items():
            lines.append(
                f"best for {goal}: scale {b['head']} by {b['alpha']} -> held-out "
                f"{self.held_out[goal][goal]:.2f} (recipe_{goal}.json)"
            )
        return "\n".join(lines)

    def floor(self) -> tuple[float, str]:
        """The fewest full-sequence forward equivalents this analysis needs, and how.

        Each prompt of a batch counts one forward; a generation counts its prompt's forward and
        leaves out its decode steps (each step is one new token over a context of T, 1/T of a
        forward by its KV share: a few percent for these short answers), so this is a floor:

        - data: one closed-book forward per candidate item (does the model know it?);
        - behaviour and attribution on the N_a attribution prompts: one generation and one
          capturing forward each, 2 N_a;
        - sweeps: one generation per sweep prompt per alpha; the unscaled sweep split once;
        - held out: the unscaled prompts once, each chosen setting once, one per random draw;
        - sign agreement: the unscaled prompts and one per checked head (scaled to 0);
        - frequency bins: one generation per prompt of the whole set.
        """
        n_test, n_sweep = self.data["n_test"], self.data["n_sweep"]
        summary = self.data["set"]
        excluded = summary["excluded"]
        draws = sum(
            len(c["draws"]) + len(c.get("outside_located", {}).get("draws", []))
            for c in self.controls.values()
        )
        parts = {
            "data": summary["n_candidates"]
            - excluded["context_equals_memory"]
            - excluded["same_first_token"],
            "behaviour and attribution": 2 * self.data["n_attribution"],
            "sweeps": sum(s["n_rows"] for s in self.sweeps.values())
            + (n_sweep if self.sweeps else 0),
            "held out": n_test * (1 + len(self.best) + draws),
            "sign agreement": n_test * (self.signs.get("n", 0) + 1) if self.signs.get("n") else 0,
            "frequency": summary["n_items"] if self.frequency else 0,
        }
        how = " + ".join(f"{k} {v:g}" for k, v in parts.items() if v)
        return float(sum(parts.values())), f"forward equivalents: {how} (decode steps left out)"
