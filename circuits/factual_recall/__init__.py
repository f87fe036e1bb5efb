"""Factual-recall heads: head attribution and value-vector scaling (Yu, Merullo, Pavlick 2023).

Counterfactual prompts state a wrong answer in context and then ask (Q/A template):
"The capital of X is Y.\\nQ: What is the capital of X?\\nA:" (the zoo uses its own vocabulary).

1. Behaviour (`behaviour`): greedy generation, the answer text cut at the template's stop
   strings; it contains the memorised answer gt -> "memorised", else the in-context answer ct
   -> "in_context", else "other" (counted, never dropped). Rates carry Wilson 95% intervals.
2. Head attribution (`attribution`, direct logit attribution): at the last position, each
   head's output through the final norm as the model applies it, dotted with
   W_U[ct] - W_U[gt]; head terms + the non-head terms sum to the model's logit(ct) - logit(gt).
   Averaged over prompts conditioned on the observed behaviour: positive heads on in-context
   prompts = in-context heads, negative heads on memorised prompts = memory heads.
3. Value scaling (`scaling`, `rowscale`): z_h times alpha at every position and generation step,
   swept (paper defaults: memory head alpha in [-5, 5] step 0.1, in-context head alpha in
   [-10, 10] step 0.5) with prompts and alphas batched together. The best alpha is chosen on one
   split and reported on held-out prompts with random-head controls (`checks`, drawn by
   `interp.controls`), and saved as a `ScaleValues` recipe that ``interp generate --recipe``
   applies.
4. Frequency (`frequency`): context-use rate per frequency bin of the queried subject.

Modules, in the order data flows: `config` -> `behaviour` / `rowscale` -> `attribution` ->
`scaling` -> `checks` -> `frequency` -> `result` -> `pipeline` (`run`). The command is
``interp recall`` (`interp.cli.recall`).

    >>> import interp                                                            # doctest: +SKIP
    >>> from circuits.factual_recall import Config, run                          # doctest: +SKIP
    >>> result = run(interp.load("world-base"), Config(format="statement"))      # doctest: +SKIP
    >>> result.memory_heads[:3], result.best["in_context"]                        # doctest: +SKIP
"""

from interp.analysis import Analyzer
from interp.stats import wilson

from .attribution import (
    final_norm_as_linear,
    head_attribution,
    head_dla,
    last_position_run,
    top_heads,
)
from .behaviour import behaviour, classify, generated_labels, rates
from .checks import evaluate_settings, mean_logit_diff, random_head_control, sign_agreement
from .config import (
    CONTEXT_ALPHAS,
    LABELS,
    MEMORY_ALPHAS,
    Config,
    alpha_grid,
    check_alphas,
    config_record,
)
from .frequency import frequency_bins, frequency_counts
from .pipeline import build_data, demo_config, run
from .result import RecallResult
from .rowscale import RowScaleValues, head_scales
from .scaling import GOALS, best_alpha, choose_settings, scale_sweep

__all__ = [
    "Config",
    "RecallResult",
    "RowScaleValues",
    "classify",
    "wilson",
    "behaviour",
    "rates",
    "head_dla",
    "head_attribution",
    "scale_sweep",
    "check_alphas",
    "frequency_bins",
    "sign_agreement",
    "run",
    "LABELS",
    "GOALS",
    "MEMORY_ALPHAS",
    "CONTEXT_ALPHAS",
    "alpha_grid",
    "config_record",
    "final_norm_as_linear",
    "last_position_run",
    "top_heads",
    "generated_labels",
    "evaluate_settings",
    "mean_logit_diff",
    "random_head_control",
    "frequency_counts",
    "build_data",
    "demo_config",
    "head_scales",
    "best_alpha",
    "choose_settings",
    "ENTRY",
]

ENTRY = Analyzer(
    "factual_recall",
    "factual-recall heads: attribution and value scaling (Yu, Merullo, Pavlick 2023)",
    Config,
    run,
    demo_config=demo_config,
)
"""The registry entry (registered in `circuits/__init__.py`)."""
