"""Induction heads (Olsson et al. 2022): which heads find the earlier occurrence of the current
token and copy what came after it, and does the model need them?

Method. Feed ``BOS + prefix + r + r + filler`` (r: distinct random tokens, `interp.data.repeats`).
A query at position i of the second copy holds token r_i, whose earlier occurrence is at
``first + i``; the token to predict, r_{i+1}, sits right after it at ``first + i + 1``.

- prefix-matching: mean attention from second-copy queries to ``first + i + 1``;
- duplicate-token: mean attention from second-copy queries to ``first + i``;
- previous-token: mean attention from every position to the position before it;
- copying: the head's direct effect on the logits of the tokens it attends to (`copying`);
- OV eigenvalue score: how much the head's OV circuit copies every token (`copying`);
- induction loss: next-token loss on the second copy vs the first (first token of each copy left
  out).

A head is an *induction head* only if it prefix-matches (>= threshold) and copies (CI above 0) at
*every* span length; a head that attends at one fixed distance is *positional* (`summary`).
Every score is a mean over sequences with a bootstrap confidence interval. The causal check
(`causal`) mean-ablates the top-k induction heads, ranked by how much the copy needs each one
alone on a second, independent sequence set (``rank_by="effect"``), and sets of k random other
heads, and compares the rise in second-copy loss. `track` follows the scores across training
checkpoints; `tl_agreement` compares them with TransformerLens. The repeated-data damage study
(Hernandez et al. 2022) is its own analyzer, `circuits.induction_damage`.

Modules, in the order data flows: `config` -> `observe` / `copying` -> `scoring` ->
`summary` -> `result` -> `causal` -> `pipeline` (`run`, `analyze`, `track`); `tl`,
`checkpoints` and `trajectory` beside them.

    >>> from interp.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> res = run(model, InductionConfig(n=4, span_lengths=(4, 6), offsets=(0, 3), causal=False))
    >>> res.scores["prefix_matching"].shape
    (2, 8)
"""

from interp.analysis import Analyzer

from .causal import ablation_check, causal_check, single_head_ratios, top_heads_by_effect
from .checkpoints import (
    CheckpointMismatchError,
    architecture_of,
    load_checkpoint,
    world_content_tokens,
)
from .config import ABLATIONS, RANKINGS, Config, InductionConfig, config_record, make_sequences
from .copying import ov_eigen_scores
from .pipeline import analyze, demo_config, run, track
from .result import ROLES, InductionResult, Result
from .scoring import score_heads, sequence_losses
from .summary import head_roles, summarize
from .tl import tl_agreement
from .trajectory import Trajectory

__all__ = [
    "Config",
    "InductionConfig",
    "Result",
    "InductionResult",
    "run",
    "analyze",
    "make_sequences",
    "score_heads",
    "sequence_losses",
    "summarize",
    "head_roles",
    "ablation_check",
    "single_head_ratios",
    "causal_check",
    "top_heads_by_effect",
    "ov_eigen_scores",
    "tl_agreement",
    "track",
    "Trajectory",
    "load_checkpoint",
    "world_content_tokens",
    "architecture_of",
    "CheckpointMismatchError",
    "config_record",
    "demo_config",
    "ABLATIONS",
    "RANKINGS",
    "ROLES",
    "ENTRY",
]

ENTRY = Analyzer(
    "induction", "induction heads (Olsson et al. 2022)", Config, analyze, demo_config=demo_config
)
"""The registry entry (registered in `circuits/__init__.py`)."""
