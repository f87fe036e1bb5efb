"""Memory heads vs context heads, located by path patching, and PH3 pruning (Jin et al. 2024).

On a knowledge-conflict prompt ("the capital of Avaria is Rusk . the capital of Avaria is")
the model answers from memory (o_m) or copies the context (o_c). The metric is the logit
difference at the last position, LD = logit(o_m) - logit(o_c) (or p(o_m) - p(o_c)).

1. Path patching (`interp.patching.path_patch`, receivers = logits): for each head h, run the
   conflict prompt with every other head frozen at its conflict-run output, and h's output
   taken from a reference run, so the change reaches the logits only through the residual
   stream. The reference ("corrupted") is the same template with another subject and another
   context answer: it carries nothing about this item's o_m or o_c. A head's score is
   ``LD(conflict) - LD(path from reference)``: what its direct path adds to LD.
   Positive = memory head (it pushes o_m over o_c); negative = context head (it pushes o_c).
   (``source="clean"`` uses the no-context prompt as the reference instead, as the paper's
   wording has it: then the score is the head's push in the conflict run minus its push
   without context, and memory heads that do not change with the context score ~0.)
2. PH3: prune (zero) the first k context heads to push the model toward memory, or the first k
   memory heads to push it toward the context; k is the fewest heads within 10 points of the best
   on a validation split of subjects, from {1, 3, 5, 7, 9, 15} (capped by the heads of that sign).
   "First" follows ``Config.order``: "path" is the path-patching rank (the paper); "validation"
   (default) takes the located heads of that sign (|score| >= 10% of the largest) and orders them
   by how much pruning each alone moves the target rate on the validation split, because a
   head's direct path to the logits can understate what pruning it does through later heads
   (on the zoo's world-base the top memory head by path, L0H4, moves context use 7 points; the
   second, L0H5, moves it 58). Memory-usage and context-usage rates (greedy next token == first
   token of o_m / o_c) before and after, on held-out subjects, in the locating format and in the
   other format; and a control that prunes k random heads (several draws, `interp.controls`),
   outside the pruned heads and outside every located head.
3. Attribution patching (one forward + one backward) approximates the same scores; its
   Spearman rank agreement with exact path patching is reported (`interp.stats.spearman`).
   It runs first: on a large model (`interp.cost.is_large`) exact path patching scores only the
   `LARGE_SHORTLIST` (32) heads it ranks highest by |estimate| (`Config.shortlist`; 0 = every
   head), the others stay unscored, so that locating costs 32 forwards per prompt instead of
   one per head (SmolLM2-135M: 270).

Modules, in the order data flows: `config` -> `locate` (path and attribution patching) ->
`pruning` (k search, PH3, random controls) -> `result` -> `pipeline` (`build_sets`, `run`).
The command is ``interp conflict`` (`interp.cli.conflict`).

    >>> import interp                                                             # doctest: +SKIP
    >>> from circuits.knowledge_conflict import Config, run                       # doctest: +SKIP
    >>> result = run(interp.load("world-base"), Config(seed=0))                   # doctest: +SKIP
    >>> result.memory_heads, result.context_heads, result.numbers()["ph3"]        # doctest: +SKIP
"""

from interp.analysis import Analyzer
from interp.stats import spearman

from .config import (
    K_GRID,
    LARGE_SHORTLIST,
    SIGN_NOTE,
    Config,
    KTooLargeError,
    check_k,
    resolve_formats,
    shortlist_size,
)
from .locate import (
    aligned_tokens,
    attribution_scores,
    conflict_metric,
    grouped_scores,
    locate_heads,
    located,
    padding_free_groups,
    ranked,
    reference_prompts,
    shortlisted,
)
from .pipeline import build_sets, demo_config, run
from .pruning import (
    choose_k,
    ph3_direction,
    prune_eval,
    random_control,
    usage_rates,
    validation_order,
)
from .result import DIRECTIONS, ConflictResult

__all__ = [
    "Config",
    "ConflictResult",
    "KTooLargeError",
    "aligned_tokens",
    "conflict_metric",
    "locate_heads",
    "attribution_scores",
    "usage_rates",
    "spearman",
    "choose_k",
    "prune_eval",
    "random_control",
    "run",
    "ranked",
    "located",
    "validation_order",
    "ph3_direction",
    "build_sets",
    "resolve_formats",
    "check_k",
    "grouped_scores",
    "padding_free_groups",
    "reference_prompts",
    "demo_config",
    "shortlisted",
    "shortlist_size",
    "LARGE_SHORTLIST",
    "K_GRID",
    "SIGN_NOTE",
    "DIRECTIONS",
    "ENTRY",
]

ENTRY = Analyzer(
    "knowledge_conflict",
    "memory vs context heads, PH3 pruning (Jin et al. 2024)",
    Config,
    run,
    demo_config=demo_config,
)
"""The registry entry (registered in `circuits/__init__.py`)."""
