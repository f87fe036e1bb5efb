"""One mode's scores: `run` scores every head on the NIAH grid of a `Config` in its mode and
returns a `RetrievalResult` (scores, per-test scores, which tests were kept, the records).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import torch

from interp import plots
from interp.data.niah import NiahPrompt
from interp.errors import ArgumentTypeError, InvalidArgumentError
from interp.heads import Head
from interp.results import HeadScores, data_hash

from .config import Config, NoRetrievalWarning
from .running import NiahRecord, score_prompts
from .scoring import retrieval_scores

__all__ = ["RetrievalResult", "run", "decode_share"]


def _grid(values: Sequence[float], records: Sequence[NiahRecord], lengths, depths):
    """[depth, length] mean of `values` per cell (None where a cell is empty)."""
    cells: dict[tuple, list[float]] = {}
    for v, r in zip(values, records):
        cells.setdefault((r.depth, r.context_length), []).append(float(v))
    return [
        [(sum(cells[(d, n)]) / len(cells[(d, n)])) if (d, n) in cells else None for n in lengths]
        for d in depths
    ]


def decode_share(tests: Sequence[tuple]) -> float:
    """Forward equivalents of decoding each (prompt tokens, answer tokens): 1 for the prompt,
    then 1 / (context length) for each further step over the KV cache."""
    return float(sum(1 + sum(1 / (t + j + 1) for j in range(a - 1)) for t, a in tests))


@dataclass(frozen=True, eq=False)
class RetrievalResult:
    """Retrieval scores with the tests behind them.

    scores: `HeadScores` (threshold 0.1); all heads unscored (NaN by HeadScores' convention,
    never a silent 0) when no test was solved, see `retrieves`. per_test: [n_tests, L, H]
    scores of every test, solved or not; kept: [n_tests] bool.
    """

    scores: HeadScores
    per_test: torch.Tensor
    kept: torch.Tensor
    tests: tuple
    prompts: tuple
    config: Config
    model_name: str
    lengths: tuple
    depths: tuple

    @property
    def n_tests(self) -> int:
        return len(self.tests)

    def floor(self) -> float:
        """The fewest full-sequence forward equivalents this scoring needs (`interp.cost`):
        teacher-forced, one forward over prompt + reference answer per test; decode, per test
        one forward over the prompt, then each further answer step over the cache at its share
        1 / (tokens before it + 1), for the answer's length (the shortest decode that can emit
        the reference)."""
        if self.config.mode == "teacher_forced":
            return float(self.n_tests)
        return decode_share([(p.n_tokens, len(p.answer_ids)) for p in self.prompts])

    @property
    def n_kept(self) -> int:
        return int(self.kept.sum())

    @property
    def retrieves(self) -> bool:
        """False when the model solved no test (then no head has a retrieval score)."""
        return self.n_kept > 0

    @property
    def share_above(self) -> Optional[float]:
        return self.scores.share_above() if self.retrieves else None

    @property
    def heads(self) -> list[Head]:
        """Retrieval heads (score > threshold), best first."""
        if not self.retrieves:
            return []
        above = {(l, h) for l, h in self.scores.heads()}
        return [Head(l, h) for l, h, _ in self.scores.top(self.scores.n_scored) if (l, h) in above]

    def top(self, k: int) -> list[Head]:
        if not self.retrieves:
            raise InvalidArgumentError(
                f"no retrieval scores: the model solved 0 of {self.n_tests} tests; "
                "use longer answers, shorter contexts or another model"
            )
        return [Head(l, h) for l, h, _ in self.scores.top(k)]

    def accuracy(self) -> list[list[Optional[float]]]:
        """NIAH accuracy [depth][length] (share of tests solved in each cell)."""
        return _grid(
            [float(t.retrieved) for t in self.tests], self.tests, self.lengths, self.depths
        )

    def plot(self):
        """Heatmap of retrieval scores (layer x head)."""
        title = (
            f"retrieval scores ({self.config.mode}): {self.model_name}, "
            f"{self.n_kept}/{self.n_tests} tests kept"
        )
        if not self.retrieves:
            title += " - no test solved, no scores"
        return self.scores.plot(title=title, zmin=0, zmax=1)

    def plot_accuracy(self):
        """NIAH accuracy heatmap: depth x context length."""
        grid = [[float("nan") if v is None else v for v in row] for row in self.accuracy()]
        return plots.heatmap_grid(
            grid,
            [f"{100 * d:g}%" for d in self.depths],
            list(self.lengths),
            title=f"NIAH accuracy ({self.config.mode}): {self.model_name}",
            zmin=0,
            zmax=1,
            row_title="needle depth",
            col_title="context length (tokens)",
        )

    def numbers(self) -> dict:
        out = {
            "mode": self.config.mode,
            "n_tests": self.n_tests,
            "n_kept": self.n_kept,
            "retrieves": self.retrieves,
            "threshold": self.config.threshold,
            "niah_accuracy": self.n_kept / self.n_tests,
            "accuracy_grid": {
                "rows_depth": list(self.depths),
                "cols_length": list(self.lengths),
                "values": self.accuracy(),
            },
        }
        if self.retrieves:
            out.update(
                share_above=self.share_above,
                n_above=len(self.heads),
                n_heads_total=self.scores.n_scored,
                heads_above=[str(h) for h in self.heads],
                top10=[
                    {"head": f"L{l}H{h}", "score": s}
                    for l, h, s in self.scores.top(min(10, self.scores.n_scored))
                ],
            )
        else:
            out["note"] = (
                f"the model solved none of the {self.n_tests} tests (ROUGE-1 recall > "
                f"{self.config.rouge_threshold}); retrieval scores are undefined"
            )
        mean_all = self.per_test.mean(0)
        order = torch.argsort(mean_all.flatten(), descending=True, stable=True)[:5].tolist()
        n_heads = mean_all.shape[1]
        out["diagnostic_top5_all_tests"] = [
            {
                "head": f"L{i // n_heads}H{i % n_heads}",
                "mean_score_all_tests": float(mean_all.flatten()[i]),
            }
            for i in order
        ]
        out["answers_sample"] = [t.response for t in self.tests[:5]]
        return out


def run(
    model, cfg: Optional[Config] = None, prompts: Optional[Sequence[NiahPrompt]] = None
) -> RetrievalResult:
    """Score every head of `model` on the NIAH grid of `cfg` (or on the given prompts).

    >>> import warnings, interp.testing
    >>> with warnings.catch_warnings(record=True):
    ...     res = run(
    ...         interp.testing.tiny_model("llama"),
    ...         Config(lengths=(48,), depths=(0.5,), n_needles=1),
    ...     )
    >>> res.scores.shape, res.per_test.shape
    ((2, 8), torch.Size([1, 2, 8]))
    """
    cfg = Config() if cfg is None else cfg
    if not isinstance(cfg, Config):
        raise ArgumentTypeError(
            f"cfg must be a circuits.retrieval.Config, got {type(cfg).__name__}; "
            "e.g. Config(lengths=(64, 128), depths=(0.0, 0.5, 1.0))"
        )
    cfg = cfg.for_model(model)  # the data defaults (haystack, needles, decode room)
    prompts = tuple(prompts) if prompts is not None else tuple(cfg.prompts(model))
    lengths = tuple(sorted({p.context_length for p in prompts}))
    depths = tuple(sorted({p.depth for p in prompts}))
    per_test, records = score_prompts(
        model,
        prompts,
        cfg.mode,
        batch_size=cfg.batch_size,
        backend=cfg.backend,
        extra_tokens=cfg.extra_tokens,
        rouge_threshold=cfg.rouge_threshold,
        route=cfg.route,
    )
    kept = torch.tensor([r.retrieved for r in records], dtype=torch.bool)
    mean = retrieval_scores(per_test, kept)
    if mean is None:
        warnings.warn(
            f"{model.name}: no NIAH test was solved (0/{len(records)}); retrieval scores "
            "are undefined and every head is left unscored",
            NoRetrievalWarning,
            stacklevel=2,
        )
        grid, mask = (
            torch.zeros(model.n_layers, model.n_heads),
            torch.zeros(model.n_layers, model.n_heads, dtype=torch.bool),
        )
    else:
        grid, mask = mean, torch.ones_like(mean, dtype=torch.bool)
    meta = {
        "mode": cfg.mode,
        "n_tests": len(records),
        "n_kept": int(kept.sum()),
        "lengths": list(lengths),
        "depths": list(depths),
        "needles": [asdict(n) for n in dict.fromkeys(p.needle for p in prompts)],
        "rouge_threshold": cfg.rouge_threshold,
        "per_test": [_test_meta(r, per_test[i]) for i, r in enumerate(records)],
    }
    scores = HeadScores(
        grid,
        model=model.name,
        method="retrieval",
        mask=mask,
        data_hash=data_hash([[list(p.input_ids), list(p.answer_ids)] for p in prompts]),
        seed=cfg.seed,
        threshold=cfg.threshold,
        meta=meta,
    )
    return RetrievalResult(
        scores, per_test, kept, tuple(records), prompts, cfg, model.name, lengths, depths
    )


def _test_meta(record: NiahRecord, scores: torch.Tensor) -> dict:
    nonzero = {
        f"L{l}H{h}": round(float(scores[l, h]), 6) for l, h in torch.nonzero(scores).tolist()
    }
    return {**asdict(record), "scores": nonzero}
