"""`Result`: per-member measurements of a repeated-data family, aggregated by repeated fraction,
on the analyzer protocol (numbers, figures, roles, circuits, provenance, report, floor)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from circuits.induction import InductionConfig
from interp import plots
from interp.cost import Cost

__all__ = ["Result", "DamageResult", "METRICS"]

METRICS = (
    ("test_loss", "unique held-out loss"),
    ("repeated_pool_loss", "loss on the repeated rows"),
    ("copy_loss_ratio", "copy loss ratio (2nd/1st copy)"),
    ("copy_loss_second", "second-copy loss"),
    ("best_induction_score", "best induction score"),
    ("best_head_copying", "copying of that head"),
)
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _wrap(text: str, width: int) -> str:
    return "<br>".join(textwrap.wrap(text, width))


def _spread(rows: list, key: str) -> dict:
    values = [r[key] for r in rows]
    return {
        "mean": float(np.mean(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "seeds": [r["seed"] for r in rows],
        "values": values,
    }


def _change(a: dict, ctrl: dict) -> dict:
    """One repeated fraction against the control (fraction 0)."""
    return {
        "test_loss_change": a["test_loss"]["mean"] - ctrl["test_loss"]["mean"],
        "test_loss_worse_than_every_control_seed": a["test_loss"]["min"] > ctrl["test_loss"]["max"],
        "best_induction_change": a["best_induction_score"]["mean"]
        - ctrl["best_induction_score"]["mean"],
        "copy_ratio_change": a["copy_loss_ratio"]["mean"] - ctrl["copy_loss_ratio"]["mean"],
        "repeated_pool_loss_change": a["repeated_pool_loss"]["mean"]
        - ctrl["repeated_pool_loss"]["mean"],
    }


def _sentence(key: str, v: dict) -> str:
    spread = "beyond" if v["test_loss_worse_than_every_control_seed"] else "within"
    return (
        f"{key}: unique test loss {v['test_loss_change']:+.4f} vs control "
        f"({spread} the seed spread), "
        f"repeated-row loss {v['repeated_pool_loss_change']:+.2f}, best induction score "
        f"{v['best_induction_change']:+.3f}, copy-loss ratio {v['copy_ratio_change']:+.3f}"
    )


@dataclass(frozen=True, eq=False)
class Result:
    """Per-member measurements of a repeated-data family, aggregated by repeated fraction.

    members: one dict per member (name, fraction, seed, spec, losses and induction numbers).
    config: the InductionConfig every member was scored with. data: what was measured on.
    trajectories: {fraction: per-step means and per-seed values} when checkpoints were scored.
    cost: what the study cost, summed over every model it loaded (`interp.cost`), or None.
    """

    analyzer = "induction-damage"

    family: str
    members: list
    config: InductionConfig
    data: dict
    trajectories: dict = field(default_factory=dict)
    cost: Optional[Cost] = None
    n_checkpoints: int = 0

    def by_fraction(self) -> dict:
        """{fraction: {metric: mean, min, max, seeds, values}} over the members of each fraction."""
        out = {}
        for f in sorted({m["fraction"] for m in self.members}):
            rows = [m for m in self.members if m["fraction"] == f]
            out[f] = {key: _spread(rows, key) for key, _ in METRICS}
        return out

    def findings(self) -> dict:
        """What the numbers say, computed from them (control = fraction 0)."""
        agg = self.by_fraction()
        fracs = sorted(agg)
        if fracs[0] != 0.0 or len(fracs) < 2:
            return {"note": "no control (fraction 0) or a single fraction: no comparison"}
        out = {f"f={f:g}": _change(agg[f], agg[0.0]) for f in fracs[1:]}
        out["control_has_induction"] = any(
            m["induction_behaviour"] for m in self.members if m["fraction"] == 0.0
        )
        return out

    def conclusion(self) -> str:
        """One sentence per measured effect, written from the numbers (not from the paper)."""
        f = self.findings()
        if "note" in f:
            return f["note"]
        parts = [_sentence(key, v) for key, v in f.items() if key.startswith("f=")]
        if not f["control_has_induction"]:
            parts.append(
                "the control shows no induction behaviour, so damage to induction heads cannot be "
                "measured in this family (Hernandez et al.'s induction claim is untested here)"
            )
        return "; ".join(parts)

    def summary(self) -> dict:
        return {
            "family": self.family,
            "conclusion": self.conclusion(),
            "members": self.members,
            "by_fraction": {f"{f:g}": v for f, v in self.by_fraction().items()},
            "findings": self.findings(),
            "trajectories": self.trajectories,
        }

    def caption(self, sep: str = "; ") -> str:
        """The measured means with their seed range, one clause per fraction."""
        parts = []
        for f, a in self.by_fraction().items():
            parts.append(
                f"f={f:.0%}: test loss {a['test_loss']['mean']:.3f} "
                f"[{a['test_loss']['min']:.3f}, {a['test_loss']['max']:.3f}], "
                f"copy ratio {a['copy_loss_ratio']['mean']:.3f}, best induction "
                f"{a['best_induction_score']['mean']:.3f}, repeated-row loss "
                f"{a['repeated_pool_loss']['mean']:.3f}"
            )
        return "measured (mean [min, max] over seeds): " + sep.join(parts)

    # --- figures ------------------------------------------------------------------------------

    def _metric_traces(self, fig, i: int, key: str, agg: dict) -> None:
        row, col = i // 3 + 1, i % 3 + 1
        fracs = sorted(agg)
        mean = [agg[f][key]["mean"] for f in fracs]
        fig.add_trace(
            go.Scatter(
                x=[100 * f for f in fracs],
                y=mean,
                mode="lines",
                line={"color": "black"},
                name="mean over seeds",
                showlegend=i == 0,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [agg[f][key]["max"] - m for f, m in zip(fracs, mean)],
                    "arrayminus": [m - agg[f][key]["min"] for f, m in zip(fracs, mean)],
                },
            ),
            row=row,
            col=col,
        )
        for j, s in enumerate(sorted({m["seed"] for m in self.members})):
            pts = [m for m in self.members if m["seed"] == s]
            fig.add_trace(
                go.Scatter(
                    x=[100 * m["fraction"] for m in pts],
                    y=[m[key] for m in pts],
                    mode="markers",
                    marker={"color": _COLORS[j % len(_COLORS)], "size": 8},
                    name=f"seed {s}",
                    showlegend=i == 0,
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(title_text="% of rows from the repeated pool", row=row, col=col)

    def figure(self):
        """Every metric against the repeated fraction: mean over seeds with its range, each seed."""
        fig = make_subplots(rows=2, cols=3, subplot_titles=[t for _, t in METRICS])
        agg = self.by_fraction()
        for i, (key, _) in enumerate(METRICS):
            self._metric_traces(fig, i, key, agg)
        fig.update_layout(
            title={
                "text": f"Repeated-data family {self.family}: damage vs repetition<br><sup>"
                f"{self.caption('<br>')}</sup>",
                "font": {"size": 13},
            },
            height=800,
            margin={"t": 170, "b": 120},
        )
        fig.add_annotation(
            text=_wrap(self.conclusion(), 160),
            xref="paper",
            yref="paper",
            x=0,
            y=-0.16,
            showarrow=False,
            align="left",
            font={"size": 11},
        )
        return fig

    def trajectory_figure(self):
        """Best induction score and held-out loss over training (mean over seeds), or None."""
        if not self.trajectories:
            return None
        curves, x = {}, None
        for f, t in sorted(self.trajectories.items()):
            x = t["steps"]
            curves[f"f={float(f):.0%} best induction"] = t["best_induction_mean"]
            curves[f"f={float(f):.0%} test loss"] = t["test_loss_mean"]
        return plots.line_curves(
            x,
            curves,
            title="over training (mean over seeds): best induction score and "
            "unique held-out loss",
            x_title="training step",
            y_title="score / loss (nats)",
        )

    # --- the protocol -------------------------------------------------------------------------

    def numbers(self) -> dict:
        return self.summary()

    def figures(self) -> dict:
        figs = {"damage_vs_repetition": self.figure()}
        traj = self.trajectory_figure()
        if traj is not None:
            figs["damage_over_training"] = traj
        return figs

    def roles(self) -> list:
        """No head roles: the study compares models, not heads within one."""
        return []

    def circuits(self) -> list:
        return []

    def provenance(self) -> dict:
        return {
            "model": self.family,
            "data": self.data,
            "seeds": {
                "sequences": self.config.seed,
                "test_rows": self.data["test_seed"],
                "members": sorted({m["seed"] for m in self.members}),
            },
        }

    def report(self) -> str:
        return f"{self.caption()}\n{self.conclusion()}"

    def floor(self) -> tuple[float, str]:
        """The fewest full-sequence forward equivalents, and how.

        Per member: N repeated sequences scored (one forward each, `circuits.induction`),
        T held-out rows and P repeated-pool rows for its losses. Per saved checkpoint: N + T
        (the member itself, the trajectory's last point, is not measured twice in the floor).
        """
        n, t, p = self.config.n_seqs, self.data["test_rows"], self.data["repeated_pool"]
        members, ckpts = len(self.members), self.n_checkpoints
        total = members * (n + t + p) + ckpts * (n + t)
        return float(total), (
            f"forward equivalents: {members} members x (N {n} + T {t} + P {p}) + "
            f"{ckpts} checkpoints x (N + T)"
        )


DamageResult = Result
"""The name this result had inside `circuits.induction` (kept for callers)."""
