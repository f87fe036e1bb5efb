"""`Trajectory`: the same heads' scores at each training checkpoint (made by `track`).

>>> traj = track(["runs/x/ckpts/step00250.pt", "runs/x/ckpts/step00500.pt"])   # doctest: +SKIP
>>> traj.series("induction")["best head (any)"]                                  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from interp import plots
from interp.heads import Head

__all__ = ["Trajectory"]


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Scores of the same heads at each checkpoint: labels, steps, results (a `Result` each)."""

    labels: list
    steps: list
    results: list

    def x(self) -> list:
        """Training steps where every checkpoint knows its step, else checkpoint indices."""
        return (
            self.steps if all(s is not None for s in self.steps) else list(range(len(self.labels)))
        )

    def series(
        self, score: str = "induction", heads: Optional[Sequence[str]] = None, k: int = 4
    ) -> dict:
        """{head: [score at each checkpoint]} for `heads` (default: the last checkpoint's top k)."""
        if heads is None:
            heads = [f"L{l}H{h}" for l, h, _ in self.results[-1].scores[score].top(k)]
        out = {}
        for name in heads:
            hd = Head.parse(name)
            out[name] = [float(r.scores[score].scores[hd.layer, hd.head]) for r in self.results]
        out["best head (any)"] = [
            float(np.nanmax(r.scores[score].scores.numpy())) for r in self.results
        ]
        return out

    def to_dict(self) -> dict:
        return {
            "labels": self.labels,
            "steps": self.steps,
            "x": self.x(),
            "induction": self.series("induction"),
            "prefix_matching": self.series("prefix_matching"),
            "copying": self.series("copying"),
            "loss_first": [r.loss["first"] for r in self.results],
            "loss_second": [r.loss["second"] for r in self.results],
            "loss_ratio": [r.loss["ratio"] for r in self.results],
            "roles": [r.head_roles for r in self.results],
        }

    def figures(self) -> dict:
        """The final checkpoint's top heads over training, and the copy loss over training."""
        x_title = "training step" if self.x() is self.steps else "checkpoint"
        d = self.to_dict()
        return {
            "trajectory_heads": plots.line_curves(
                d["x"],
                d["induction"],
                title="induction score (min over span lengths of prefix-matching) "
                "of the final checkpoint's top heads",
                x_title=x_title,
                y_title="score",
            ),
            "trajectory_loss": plots.line_curves(
                d["x"],
                {
                    "first copy": d["loss_first"],
                    "second copy": d["loss_second"],
                    "ratio second/first": d["loss_ratio"],
                },
                title="copy loss across checkpoints",
                x_title=x_title,
                y_title="loss (nats) / ratio",
            ),
        }
