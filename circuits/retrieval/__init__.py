"""Retrieval heads (Wu et al. 2024): the few heads that copy a needle out of a long context.

Method. Hide a needle sentence in a haystack (`interp.data.niah`) at a grid of context lengths
and depths, ask for it, and watch every head while the model answers. At each answer step that
emits token w, a head *copies* when its attention maximum (the key position i it attends to
most, for the current query) lies inside the needle's answer span and the prompt token at i is
w. A head's score on one test = copy steps / answer-span length; its retrieval score = the mean
over the tests the model actually solved (ROUGE-1 recall of its answer > 0.5). Heads scoring
above 0.1 are retrieval heads. The causal check (`prune_experiment`) masks the top-k heads
(uniform attention, as the paper, or zero output) and compares NIAH accuracy with k random
heads drawn from outside the top set.

Two modes give the same copy test:
- ``"teacher_forced"``: the reference answer, one pass, every answer position scored at once;
- ``"decode"``: the model's own greedy answer (cached steps), each step scored (the paper's).

Cost. Only the answer queries are scored, so no [pos x pos] pattern is ever built and memory
grows linearly with the context. Per layer only each scored query's argmax key and the token
there are kept (`ArgmaxRecorder`). Two routes, measured in ``bench/bench_retrieval.py``:
- ``route="rows"`` (default): the model runs its own SDPA attention; `rows_route` has it also
  compute the pre-softmax scores of the answer rows ([b, H, n_answer, T]) for the recorder.
  Teacher forcing costs one plain pass.
- ``route="pattern"``: the library's ``pattern`` site. The prompt runs into a KV cache with the
  fast attention, then the answer rows alone run through `interp_eager`, where an `Edit` on
  ``pattern`` records the argmax and returns the pattern unchanged ([b, H, n_answer, T]).

Modules, in the order data flows: `config` -> `scoring` (the copy test, the recorder, the rows
route) -> `running` (teacher-forced and decoded passes, `score_prompts`) -> `modes` (`run`: one
mode's `RetrievalResult`) -> `pruning` (`niah_accuracy`, `prune_experiment`, `prune_curve`) ->
`result` (`Result`: the whole run on the analyzer protocol) -> `pipeline` (`analyze`, the
registry's entry point); `data` beside them (`self_haystack`, `without_needle`).

    >>> import warnings, interp.testing
    >>> model = interp.testing.tiny_model("llama")         # random weights: it retrieves nothing
    >>> with warnings.catch_warnings(record=True):
    ...     result = run(model, Config(lengths=(48, 64), depths=(0.0, 1.0), n_needles=1))
    >>> result.scores.threshold, result.n_tests, result.retrieves
    (0.1, 4, False)
    >>> result.numbers()["note"][:38]
    'the model solved none of the 4 tests ('

On a model that retrieves (see the CLI, ``interp retrieval world-base --out DIR``):
``result.scores.top(5)``, ``result.share_above``, ``result.plot()``, ``result.plot_accuracy()``,
``prune_experiment(model, k=3, mode="uniform", result=result)`` and ``analyze(model, Config())``.
"""

from interp.analysis import Analyzer
from interp.stats import spearman

from .config import MODES, PRUNE_MODES, ROUTES, Config, NoRetrievalWarning
from .data import STORY_OPENINGS, self_haystack, without_needle
from .modes import RetrievalResult, run
from .pipeline import MAX_CURVE_K, analyze, compare_modes, demo_config
from .pruning import (
    PruneResult,
    curve_numbers,
    niah_accuracy,
    prune_curve,
    prune_curve_figure,
    prune_experiment,
)
from .result import Result, describe
from .running import NiahRecord, answer_groups, is_stop, left_pad, score_prompts, stop_text
from .scoring import (
    ROWS_IMPLEMENTATION,
    ArgmaxRecorder,
    RowsRoute,
    copy_hits,
    per_test_scores,
    retrieval_scores,
    rouge1_recall,
    rows_attention,
    rows_route,
)

__all__ = [
    "Config",
    "Result",
    "RetrievalResult",
    "NiahRecord",
    "PruneResult",
    "ArgmaxRecorder",
    "RowsRoute",
    "MODES",
    "ROUTES",
    "PRUNE_MODES",
    "NoRetrievalWarning",
    "copy_hits",
    "per_test_scores",
    "retrieval_scores",
    "rouge1_recall",
    "spearman",
    "score_prompts",
    "run",
    "analyze",
    "compare_modes",
    "niah_accuracy",
    "without_needle",
    "prune_experiment",
    "prune_curve",
    "prune_curve_figure",
    "curve_numbers",
    "self_haystack",
    "describe",
    "demo_config",
    "rows_route",
    "rows_attention",
    "answer_groups",
    "is_stop",
    "stop_text",
    "left_pad",
    "ROWS_IMPLEMENTATION",
    "STORY_OPENINGS",
    "MAX_CURVE_K",
    "ENTRY",
]

ENTRY = Analyzer(
    "retrieval", "retrieval heads (Wu et al. 2024)", Config, analyze, demo_config=demo_config
)
"""The registry entry (registered in `circuits/__init__.py`)."""
