"""Retrieval heads at inference: NIAH accuracy vs KV memory under head-aware cache policies.

The seed paper's claim, carried to serving (DuoAttention, RazorAttention, HeadKV): only the
retrieval heads need the whole context. This experiment finds retrieval heads (`circuits.retrieval`
scoring, or scores you pass), then answers needle-in-a-haystack prompts at several context lengths
and depths by greedy generation under:

- ``full``: the full KV cache (the reference accuracy);
- ``retrieval``: `interp.kv.policy_from` at each budget (share of kv heads kept whole; query-head
  scores mapped to kv heads by the max or mean over each GQA group);
- ``random``: the same budgets with the kept kv heads drawn at random (`n_random` draws);
- ``streaming``: sink + window for every head (budget 0);
- the controls, when `Config.controls` asks: ``layer_order`` keeps the first kv heads in layer
  order, no scores (the order the retrieval policy falls back to for heads of equal score, often
  the many that scored 0); ``random_ties`` keeps the retrieval policy's scored heads and draws
  the rest of the budget at random from the tied ones (`n_random` draws). Together they say
  whether the scores or the tie order explain the retrieval policy's accuracy.

Every point records the theoretical KV bytes of the kept cache, the bytes the cache actually held
(`Generation.kv_cache_bytes`) and, for the first prompt of each (length, policy), the peak bytes
torch allocated during generation (`interp.cost.peak_allocated_bytes`). A prompt counts as solved
when the ROUGE-1 recall of the generated answer exceeds `rouge_threshold` (the retrieval
analyzer's rule).

    >>> import warnings, interp.testing
    >>> model = interp.testing.tiny_model("llama")
    >>> cfg = Config(
    ...     lengths=(64,), depths=(0.5,), budgets=(0.5,), n_random=1, window=8,
    ...     retrieval_lengths=(48,),
    ... )
    >>> with warnings.catch_warnings(record=True):
    ...     result = run(model, cfg)
    >>> sorted({p["policy"] for p in result.points})
    ['full', 'random', 'retrieval', 'streaming']
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

import plotly.graph_objects as go
import torch

from circuits import retrieval as R
from circuits.retrieval.running import answer_text
from interp.cost import is_large, peak_allocated_bytes
from interp.errors import InvalidArgumentError
from interp.kv import (
    full_policy,
    layer_order_policy,
    policy_from,
    random_policy,
    streaming_policy,
)
from interp.kv.policy import GROUPINGS
from interp.progress import track
from interp.tokens import Tokens

__all__ = ["Config", "KVResult", "run", "policies", "from_summary", "CONTROLS"]

CONTROLS = ("layer_order", "random_ties")
"""The optional control policies (see the module docstring)."""

ZOO_BUDGETS, ZOO_DRAWS = (0.1, 0.25, 0.5, 0.75, 0.9), 5
LARGE_BUDGETS, LARGE_DRAWS = (0.25, 0.75), 3
"""The default grid, sized to the 10-minute budget: every budget and 5 random draws each, with
the memory probe, on the zoo's models (seconds); a quarter and three quarters of the kv heads with
3 draws each and no memory probe on large ones (`interp.cost.is_large`), where each (prompt,
policy) point is a long-prompt generation. Measured on SmolLM2-135M (9 prompts, 2 CPU threads):
about 50 s per policy without the probe; the probe's profiler makes the first prompt of each
length 1.4-1.6x slower and held 14 GB of trace; 3 budgets x 3 draws with the probe took 866 s,
the full zoo grid 58 min. Flags ask for more: ``--budgets 0.1,0.25,0.5,0.75,0.9 --n-random 5
--memory-probe``."""


@dataclass(frozen=True)
class Config:
    """What to test. `lengths=None` picks 1k, 2k, 4k tokens within the model's window (a quarter,
    a half and nearly all of a window under 2k); `window=None` keeps a quarter of the shortest
    length, at most 256 positions, for the streaming heads; `budgets=None` / `n_random=None` take
    the grid sized to the model (`ZOO_BUDGETS` / `LARGE_BUDGETS`; `for_model`), and
    `memory_probe=None` probes on the zoo's models only."""

    lengths: Optional[tuple] = None
    depths: tuple = (0.1, 0.5, 0.9)
    budgets: Optional[tuple] = None
    n_random: Optional[int] = None
    group: str = "max"
    sink: int = 4
    window: Optional[int] = None
    extra_tokens: Optional[int] = None  # decode room beyond the answer (None: retrieval's)
    rouge_threshold: float = 0.5
    within: float = 0.05  # "keeps accuracy": within this much of the full cache
    seed: int = 0
    retrieval_lengths: Optional[tuple] = None  # the retrieval scoring grid (None: its default)
    memory_probe: Optional[bool] = None  # None: on for the zoo's models, off on large ones
    controls: tuple = ()  # any of CONTROLS

    def __post_init__(self):
        for name in ("n_random", "sink", "extra_tokens"):
            value = getattr(self, name)
            if name in ("extra_tokens", "n_random") and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgumentError(f"Config.{name} must be an int >= 0, got {value!r}")
        if self.budgets is not None and not all(0 < float(b) <= 1 for b in self.budgets):
            raise InvalidArgumentError(
                f"Config.budgets must be shares in (0, 1], got {self.budgets}"
            )
        if not all(0 <= float(d) <= 1 for d in self.depths):
            raise InvalidArgumentError(
                f"Config.depths must be fractions in [0, 1] (0 = needle at the start, 1 = at "
                f"the end), got {self.depths}"
            )
        if self.group not in GROUPINGS:
            raise InvalidArgumentError(
                f"Config.group must be one of {GROUPINGS} (how a kv head scores from its query "
                f"heads), got {self.group!r}"
            )
        if self.window is not None and (
            isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1
        ):
            raise InvalidArgumentError(
                f"Config.window must be an int >= 1 (recent positions a streaming head keeps), "
                f"or None for a quarter of the shortest length; got {self.window!r}"
            )
        unknown = set(self.controls) - set(CONTROLS)
        if isinstance(self.controls, str) or unknown:
            raise InvalidArgumentError(
                f"Config.controls must be a tuple of {CONTROLS}, got {self.controls!r}"
            )
        object.__setattr__(self, "controls", tuple(self.controls))
        if self.budgets is not None:
            object.__setattr__(self, "budgets", tuple(float(b) for b in self.budgets))
        object.__setattr__(self, "depths", tuple(float(d) for d in self.depths))

    def for_model(self, model) -> "Config":
        """This config with the model-sized defaults filled in (budgets, draws)."""
        large = is_large(model)
        return replace(
            self,
            budgets=(LARGE_BUDGETS if large else ZOO_BUDGETS)
            if self.budgets is None
            else self.budgets,
            n_random=(LARGE_DRAWS if large else ZOO_DRAWS)
            if self.n_random is None
            else self.n_random,
            memory_probe=not large if self.memory_probe is None else self.memory_probe,
        )

    def niah(self, model, lengths: Optional[tuple] = None) -> R.Config:
        """The retrieval analyzer's NIAH config of these tests (one needle, this decode room)."""
        return R.Config(
            lengths=lengths,
            depths=self.depths,
            n_needles=1,
            seed=self.seed,
            extra_tokens=self.extra_tokens,
        ).for_model(model)

    def grid_lengths(self, model) -> tuple:
        """The context lengths; by default they leave room in the window for the decode."""
        if self.lengths is not None:
            return tuple(int(n) for n in self.lengths)
        top = model.n_ctx - max(16, self.niah(model, (16,)).max_new_tokens(model))
        if model.n_ctx < 2048:
            return (model.n_ctx // 4, model.n_ctx // 2, top)
        return tuple(n for n in (1024, 2048, 4096) if n <= top)

    def window_for(self, model) -> int:
        if self.window is not None:
            return self.window
        return max(4, min(256, min(self.grid_lengths(model)) // 4))


def policies(model, scores, cfg: Config) -> list[dict]:
    """Every policy of the experiment, each ``{"policy", "budget", "draw", "kv_policy"}``."""
    cfg = cfg.for_model(model)
    kw = {"sink": cfg.sink, "window": cfg.window_for(model)}

    def entry(name: str, budget: float, kv_policy, draw: Optional[int] = None) -> dict:
        return {"policy": name, "budget": budget, "draw": draw, "kv_policy": kv_policy}

    out = [
        entry("full", 1.0, full_policy(model)),
        entry("streaming", 0.0, streaming_policy(model, **kw)),
    ]
    for b in cfg.budgets:
        out.append(
            entry("retrieval", b, policy_from(scores, model, budget=b, group=cfg.group, **kw))
        )
        draws = range(cfg.n_random)
        out += [
            entry("random", b, random_policy(model, b, seed=cfg.seed * 1000 + d, **kw), d)
            for d in draws
        ]
        if "layer_order" in cfg.controls:
            out.append(entry("layer_order", b, layer_order_policy(model, b, **kw)))
        if "random_ties" in cfg.controls:
            out += [
                entry(
                    "random_ties",
                    b,
                    policy_from(
                        scores, model, budget=b, group=cfg.group, ties="random", seed=d, **kw
                    ),
                    d,
                )
                for d in draws
            ]
    return out


def _answer(model, prompt, policy, n_new: int, probe: bool) -> tuple[str, int, Optional[int]]:
    ids = torch.tensor([prompt.input_ids], device=model.device)
    tokens = Tokens(ids, torch.ones_like(ids))

    def generate():
        return model.generate(tokens, max_new_tokens=n_new, kv_policy=policy, backend="nnsight")

    out, peak = peak_allocated_bytes(generate) if probe else (generate(), None)
    text = answer_text(model, out.new_tokens[0].tolist())  # the retrieval analyzer's rule
    return text, out.kv_cache_bytes, peak


@dataclass
class KVResult:
    """Every (prompt, policy) point and the retrieval scores the policies came from.

    scoring_floor: the floor of the retrieval scoring this run did itself (0 when the scores
    were given), part of `floor`."""

    model: str
    config: Config
    scores: object
    points: list = field(default_factory=list)
    analyzer: str = "kv_compression"
    scoring_floor: float = 0.0

    # --- aggregates ---------------------------------------------------------------------------

    def curve(self) -> list[dict]:
        """One row per (policy, budget): accuracy and KV memory as a share of the full cache."""
        rows: dict = {}
        for p in self.points:
            rows.setdefault((p["policy"], p["budget"]), []).append(p)
        out = []
        for (policy, budget), pts in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            draws = sorted({p["draw"] for p in pts}, key=lambda d: -1 if d is None else d)
            per_draw = [statistics.mean(p["solved"] for p in pts if p["draw"] == d) for d in draws]
            out.append(
                {
                    "policy": policy,
                    "budget": budget,
                    "accuracy": statistics.mean(per_draw),
                    "accuracy_min": min(per_draw),
                    "accuracy_max": max(per_draw),
                    "n_draws": len(draws),
                    "n_prompts": len(pts) // len(draws),
                    "kv_share": statistics.mean(p["kv_bytes"] / p["kv_bytes_full"] for p in pts),
                    "kv_bytes_kept_mean": statistics.mean(p["kv_bytes_kept"] for p in pts),
                }
            )
        return out

    def headline(self) -> dict:
        """The smallest retrieval-policy budget within `within` of the full cache, what it saves,
        and what random heads at that budget score."""
        curve = self.curve()
        full = next(r for r in curve if r["policy"] == "full")["accuracy"]
        ok = [
            r
            for r in curve
            if r["policy"] == "retrieval" and r["accuracy"] >= full - self.config.within
        ]
        if not ok:
            return {
                "full_accuracy": full,
                "budget_within": None,
                "note": (
                    f"no budget tested keeps the accuracy within {self.config.within:.0%} "
                    f"of the full cache"
                ),
            }
        best = min(ok, key=lambda r: r["budget"])

        def at_budget(policy: str) -> Optional[dict]:
            row = next(
                (r for r in curve if r["policy"] == policy and r["budget"] == best["budget"]), None
            )
            if row is None:
                return None
            return {
                "accuracy": row["accuracy"],
                "range": [row["accuracy_min"], row["accuracy_max"]],
            }

        random = at_budget("random")
        return {
            "full_accuracy": full,
            "budget_within": best["budget"],
            "retrieval_accuracy": best["accuracy"],
            "kv_saved_share": 1 - best["kv_share"],
            "random_accuracy": None if random is None else random["accuracy"],
            "random_accuracy_range": None if random is None else random["range"],
            "controls": {c: at_budget(c) for c in self.config.controls},
        }

    # --- the analysis protocol ------------------------------------------------------------------

    def numbers(self) -> dict:
        return {
            "headline": self.headline(),
            "curve": self.curve(),
            "points": self.points,
            "config": {k: v for k, v in asdict(self.config).items()},
        }

    def figures(self) -> dict:
        fig = go.Figure()
        curve = self.curve()
        for policy in ("retrieval", "random", *CONTROLS, "streaming", "full"):
            rows = sorted((r for r in curve if r["policy"] == policy), key=lambda r: r["kv_share"])
            if not rows:
                continue
            err = (
                dict(
                    type="data",
                    symmetric=False,
                    array=[100 * (r["accuracy_max"] - r["accuracy"]) for r in rows],
                    arrayminus=[100 * (r["accuracy"] - r["accuracy_min"]) for r in rows],
                )
                if policy in ("random", "random_ties")
                else None
            )
            fig.add_trace(
                go.Scatter(
                    x=[100 * r["kv_share"] for r in rows],
                    y=[100 * r["accuracy"] for r in rows],
                    mode="lines+markers",
                    name=policy,
                    error_y=err,
                    text=[f"budget {r['budget']:.2f}" for r in rows],
                )
            )
        window = self.points[0]["window"] if self.points else self.config.window
        fig.update_layout(
            title=f"{self.model}: NIAH accuracy vs KV memory (sink {self.config.sink}, "
            f"window {window})",
            xaxis_title="KV cache kept (% of full)",
            yaxis_title="NIAH accuracy (%)",
            template="plotly_white",
        )
        return {"kv_compression": fig}

    def roles(self) -> list:
        return []

    def circuits(self) -> list:
        return []

    def provenance(self) -> dict:
        lengths = sorted({p["length"] for p in self.points})
        return {
            "model": self.model,
            "data": {
                "lengths": lengths,
                "depths": list(self.config.depths),
                "n_points": len(self.points),
            },
            "seeds": {"random_policies": self.config.seed},
        }

    def floor(self) -> tuple:
        n = len({(p["length"], p["depth"]) for p in self.points})
        n_policies = len({(p["policy"], p["budget"], p["draw"]) for p in self.points})
        scoring = (
            f" + retrieval scoring {self.scoring_floor:.3g} (one forward per scoring prompt)"
            if self.scoring_floor
            else ""
        )
        return float(n * n_policies + self.scoring_floor), (
            f"one prefill per prompt and policy, {n} x {n_policies} (decode steps count their "
            f"KV share on top){scoring}"
        )

    def report(self) -> str:
        h = self.headline()
        lines = [f"KV compression on {self.model}: {len(self.points)} generations"]
        for r in self.curve():
            lines.append(
                f"  {r['policy']:<12} budget {r['budget']:.2f}: accuracy {r['accuracy']:.2f} "
                f"(draws {r['n_draws']}), KV kept {r['kv_share']:.1%}"
            )
        if h.get("budget_within") is None:
            lines.append(f"  {h['note']}")
        else:
            others = {"random heads": h["random_accuracy"]} | {
                name: None if row is None else row["accuracy"]
                for name, row in h["controls"].items()
            }
            at_budget = "; ".join(f"{k} {v:.2f}" for k, v in others.items() if v is not None)
            lines.append(
                f"  retrieval heads at budget {h['budget_within']:.2f} "
                f"keep {h['retrieval_accuracy']:.2f} "
                f"(full {h['full_accuracy']:.2f}) and save {h['kv_saved_share']:.1%} "
                f"of the KV cache; at that budget: {at_budget or 'no control ran'}"
            )
        return "\n".join(lines)


def _retrieval_scoring(model, cfg: Config) -> R.RetrievalResult:
    rcfg = (
        R.Config()
        if cfg.retrieval_lengths is None
        else R.Config(lengths=tuple(cfg.retrieval_lengths))
    )
    return R.run(model, rcfg)


def run(model, cfg: Optional[Config] = None, *, scores=None) -> KVResult:
    """The experiment (see the module docstring); `scores` (HeadScores or [layers, heads]) skips
    the retrieval scoring."""
    cfg = (Config() if cfg is None else cfg).for_model(model)
    scoring = _retrieval_scoring(model, cfg) if scores is None else None
    if scoring is not None:
        scores = scoring.scores
    niah = cfg.niah(model, cfg.grid_lengths(model))
    prompts = niah.prompts(model)
    result = KVResult(
        model.name, cfg, scores, scoring_floor=0.0 if scoring is None else scoring.floor()
    )
    plan = policies(model, scores, cfg)
    full = full_policy(model)  # the denominator of every point's KV share
    probed: set = set()
    for prompt, entry in track(
        [(p, e) for p in prompts for e in plan], "kv: NIAH under each policy"
    ):
        policy = entry["kv_policy"]
        key = (prompt.context_length, entry["policy"], entry["budget"])
        probe = cfg.memory_probe and key not in probed
        probed.add(key)
        n_new = len(prompt.answer_ids) + niah.extra_tokens
        text, kept, peak = _answer(model, prompt, policy, n_new, probe)
        cached = prompt.n_tokens + n_new - 1
        rouge = R.rouge1_recall(prompt.answer, text)
        result.points.append(
            {
                "policy": entry["policy"],
                "budget": entry["budget"],
                "draw": entry["draw"],
                "length": prompt.context_length,
                "n_tokens": prompt.n_tokens,
                "depth": prompt.depth,
                "answer": text,
                "rouge1": rouge,
                "solved": rouge > cfg.rouge_threshold,
                "kv_bytes": policy.kv_bytes(
                    cached, model.d_head, bytes_per_value=model.dtype.itemsize
                ),
                "kv_bytes_full": full.kv_bytes(
                    cached, model.d_head, bytes_per_value=model.dtype.itemsize
                ),
                "kv_bytes_kept": kept,
                "peak_bytes": peak,
                "kv_heads_full": len(policy.full),
                "window": policy.window,
                "sink": policy.sink,
            }
        )
    return result


def from_summary(path) -> KVResult:
    """The result a saved ``summary.json`` of ``interp kv`` holds (its points and config; the
    scores are not in it): to redraw or re-aggregate a run without rerunning it.

    >>> import circuits, pathlib
    >>> saved = pathlib.Path(circuits.__file__).parents[1] / "results/world-base/kv_compression"
    >>> from_summary(saved / "summary.json").headline()["budget_within"]
    0.25
    """
    data = json.loads(Path(path).read_text())
    numbers = data["numbers"]
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in numbers["config"].items()}
    return KVResult(data["model"], Config(**config), None, list(numbers["points"]))


def with_defaults(cfg: Config, **changes) -> Config:
    """`cfg` with the given fields replaced (None values ignored): the CLI's flags."""
    return replace(cfg, **{k: v for k, v in changes.items() if v is not None})
