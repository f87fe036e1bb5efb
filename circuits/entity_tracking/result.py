"""`Result`: what one entity-tracking run measured, on the analyzer protocol
(`interp.analysis.AnalysisResult`): numbers, figures, roles, circuits, provenance, report, floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from interp.atlas import RoleMap
from interp.checks import Check
from interp.circuit import Circuit
from interp.export import circuit_figure

from .config import METRIC_NAME, ROLE, Config
from .floor import forward_floor

__all__ = ["Result", "EntityTrackingResult"]

_SOURCE = "entity tracking (Prakash et al.)"
_POOL_WORDS = {
    "outside": "outside the circuit",
    "inside": "inside the circuit",
    "others": "from every head",
}


def _mean(values) -> Optional[float]:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Result:
    """Everything one run measured; `circuit` is None when the model is at chance.

    scores: group key -> HeadScores (relative effect of each sender's path); pruned: heads
    minimality removed; random_faithfulness: one value per random circuit, drawn as
    `random_control` says (pool, pool size, heads); prune_trials: circuits evaluated by the
    minimality pruning (0 when it was skipped).
    """

    analyzer = "entity_tracking"

    model: str
    config: Config
    full_accuracy: float
    chance: float
    at_chance: bool
    circuit: Optional[Circuit] = None
    scores: dict = field(default_factory=dict)
    pruned: tuple = ()
    circuit_accuracy: Optional[float] = None
    faithfulness: Optional[float] = None
    random_faithfulness: tuple = ()
    dcm: dict = field(default_factory=dict)  # desideratum -> DCMResult
    dcm_overlap: dict = field(default_factory=dict)
    cmap: Optional[dict] = None
    note: str = ""
    n_heads_total: int = 1
    finetuned: Optional[str] = None
    finetuned_accuracy: Optional[float] = None
    greedy: Optional[dict] = None  # greedy_circuit(...) when Config.greedy
    learned: Optional[dict] = None  # learned_circuit(...) when Config.learned
    random_control: Optional[dict] = None  # pool, pool_size, k, seed and the heads drawn
    prune_trials: int = 0

    @property
    def head_share(self) -> Optional[float]:
        return None if self.circuit is None else len(self.circuit.heads()) / self.n_heads_total

    # --- the protocol -------------------------------------------------------------------------

    def write_files(self, out) -> list:
        """The data file beside the figures: circuit.json (`interp.circuit.Circuit`) when the
        run found a circuit (nothing when the model is at chance)."""
        if self.circuit is None:
            return []
        path = Path(out) / "circuit.json"
        self.circuit.to_json(path)
        return [path]

    def numbers(self) -> dict:
        """Every measured number (summary.json's ``numbers``)."""
        out = {
            "full_accuracy": self.full_accuracy,
            "chance": self.chance,
            "at_chance": self.at_chance,
            "note": self.note,
        }
        if self.finetuned is not None:
            out.update(finetuned=self.finetuned, finetuned_accuracy=self.finetuned_accuracy)
        if self.circuit is not None:
            out.update(self._circuit_numbers())
        if self.dcm:
            out["dcm"] = {k: r.to_dict() for k, r in self.dcm.items()}
            out["dcm_overlap"] = self.dcm_overlap
        if self.cmap is not None:
            out["cmap"] = self.cmap
        if self.greedy is not None:
            out["greedy_circuit"] = self.greedy
        if self.learned is not None:
            out["learned_circuit"] = self.learned
            out["learned_smallest_at_target"] = self._learned_best()
        return out

    def _circuit_numbers(self) -> dict:
        rf = list(self.random_faithfulness)
        control = self.random_control or {}
        return {
            "circuit": {k: [str(h) for h in self.circuit.heads(role)] for k, role in ROLE.items()},
            "group_sizes": {k: len(self.circuit.heads(role)) for k, role in ROLE.items()},
            "n_circuit_heads": len(self.circuit.heads()),
            "n_heads_total": self.n_heads_total,
            "head_share": self.head_share,
            "pruned_by_minimality": list(self.pruned),
            "circuit_accuracy": self.circuit_accuracy,
            "faithfulness": self.faithfulness,
            "random_faithfulness": rf,
            "random_faithfulness_mean": _mean(rf),
            "random_faithfulness_max": max(rf) if rf else None,
            "random_faithfulness_pool": control.get("pool"),
            "random_faithfulness_pool_size": control.get("pool_size"),
        }

    def _learned_best(self) -> Optional[dict]:
        best = self.learned["best"]
        if best is None:
            return None
        return {
            "n_heads": best["n_heads"],
            "head_share": best["n_heads"] / self.n_heads_total,
            "heads": best["heads"],
            "faithfulness_validation": best["faithfulness_validation"],
            "faithfulness_held_out": best["faithfulness_held_out"],
            "random_faithfulness_mean": _mean(best.get("random_faithfulness") or []),
        }

    def figures(self) -> dict:
        """The circuit diagram (``circuit``) and each scored group's head map (``group_A`` ...)."""
        figs = {}
        if self.circuit is not None:
            n_layers, n_heads = self.scores["A"].scores.shape
            figs["circuit"] = circuit_figure(
                self.circuit,
                n_layers=n_layers,
                n_heads=n_heads,
                title=f"Entity-tracking circuit of {self.model}",
            )
        metric = METRIC_NAME[self.config.metric]
        for key, hs in self.scores.items():
            figs[f"group_{key}"] = hs.plot(
                title=f"group {key} ({ROLE[key]}): relative change in {metric}"
            )
        return figs

    def roles(self) -> list[RoleMap]:
        """One role map per group of the circuit, with the faithfulness check behind it."""
        if self.circuit is None:
            return []
        rf = list(self.random_faithfulness)
        checks = {
            "faithfulness": self.faithfulness,
            "random circuits' faithfulness (max)": max(rf) if rf else None,
        }
        checks = {k: v for k, v in checks.items() if isinstance(v, (int, float))}
        return [
            RoleMap(
                f"entity: {role}",
                _SOURCE,
                {n.name: (n.score or 0.0) for n in self.circuit.nodes if n.role == role},
                checks,
                note=self.note,
                checks=self.checks(),
            )
            for role in self.circuit.roles
        ]

    def checks(self) -> list[Check]:
        """Faithfulness as a sentence, against its bar: the circuit recovers more of the full
        model's accuracy than every random circuit of its size (the paper: random circuits
        ~0.00)."""
        rf = list(self.random_faithfulness)
        if self.circuit is None or self.faithfulness is None:
            return []
        n = len(self.circuit.heads())
        effect = f"the {n}-head circuit alone keeps faithfulness {self.faithfulness:.2f}"
        if self.circuit_accuracy is not None:
            effect += (
                f" (accuracy {self.circuit_accuracy:.2f}; full model {self.full_accuracy:.2f}, "
                f"chance {self.chance:.2f})"
            )
        if not rf:
            return [Check(effect, "no random circuits were drawn as the control")]
        pool = _POOL_WORDS.get((self.random_control or {}).get("pool", ""), "")
        control = (
            f"{len(rf)} random {n}-head circuits{' ' + pool if pool else ''}: mean "
            f"{_mean(rf):.2f}, max {max(rf):.2f}"
        )
        return [
            Check(effect, control, (("above every random circuit", self.faithfulness > max(rf)),))
        ]

    def circuits(self) -> list[Circuit]:
        return [] if self.circuit is None else [self.circuit]

    def provenance(self) -> dict:
        cfg = self.config
        return {
            "model": self.model,
            "seeds": cfg.seeds(),
            "data": {
                "n_prompts": cfg.n_prompts,
                "n_eval": cfg.n_eval,
                "n_reference": cfg.n_reference,
                "n_boxes": cfg.n_boxes,
                "dcm_pairs": cfg.dcm_pairs,
                "config": cfg.to_dict(),
            },
        }

    def report(self) -> str:
        """What a terminal user reads: accuracy, the groups, faithfulness, DCM, CMAP, searches."""
        lines = [f"{self.model}: accuracy {self.full_accuracy:.3f} (chance {self.chance:.3f})"]
        if self.finetuned is not None:
            lines.append(f"{self.finetuned}: accuracy {self.finetuned_accuracy:.3f}")
        if self.note:
            lines.append(self.note)
        if self.circuit is not None:
            lines += self._circuit_lines()
        for kind, r in self.dcm.items():
            lines.append(
                f"  DCM {kind}: {', '.join(map(str, r.heads)) or '-'} "
                f"test accuracy {r.test_accuracy:.3f}"
            )
        if self.cmap:
            lines += _cmap_lines(self.cmap)
        if self.learned is not None:
            for r in self.learned["runs"]:
                lines.append(
                    f"  learned gates, lambda {r['lambda']:g}: "
                    f"{r['n_heads_learned']} heads learned, "
                    f"{r['n_heads']}/{self.n_heads_total} kept, validation "
                    f"{r['faithfulness_validation']:.3f}, held-out faithfulness "
                    f"{r['faithfulness_held_out']:.3f}"
                )
        if self.greedy is not None:
            g = self.greedy
            lines.append(
                f"  greedy: {g['n_heads']}/{g['n_heads_total']} heads kept >= {g['target']} on the "
                f"selection prompts; held out: faithfulness {g['faithfulness_held_out']:.3f} "
                f"({', '.join(g['smallest_at_target'])})"
            )
        return "\n".join(lines)

    def _circuit_lines(self) -> list[str]:
        lines = [
            f"  {key} {role}: {', '.join(map(str, self.circuit.heads(role))) or '-'}"
            for key, role in ROLE.items()
        ]
        rf = list(self.random_faithfulness)
        pool = _POOL_WORDS[(self.random_control or {}).get("pool", "outside")]
        random = (
            f"random circuits ({pool}) mean {_mean(rf):.3f} max {max(rf):.3f}"
            if rf
            else f"no random circuits (fewer heads {pool} than in it)"
        )
        lines.append(
            f"  faithfulness {self.faithfulness:.3f} with {len(self.circuit.heads())}/"
            f"{self.n_heads_total} heads; {random}"
        )
        return lines

    def floor(self) -> tuple[float, str]:
        """The fewest full-sequence forward equivalents of this run (`forward_floor`)."""
        return forward_floor(self)


EntityTrackingResult = Result
"""The name this result had before the analyzer became a package (kept for callers)."""


def _cmap_lines(cmap: dict) -> list[str]:
    lines = [
        f"  CMAP {cmap['source_model']} -> {cmap['base_model']}: base {cmap['base_accuracy']:.3f}, "
        f"source {cmap['source_accuracy']:.3f}"
    ]
    for row in cmap["rows"]:
        rec = "n/a" if row["recovered"] is None else f"{row['recovered']:.2f}"
        lines.append(
            f"    {row['group']:8s} {row['n_heads']:3d} heads  "
            f"acc {row['accuracy']:.3f}  recovered {rec}"
        )
    return lines
