"""Entity-tracking circuit (Prakash et al. ICLR 2024): path patching, faithfulness, DCM, CMAP.

Task: ``the apple is in box F , the key is in box Q , ... . box Q contains the`` -> ``key``.
The circuit is found backwards from the logits by exact path patching, group by group
(`discovery`): value fetchers (A) -> logits, position transmitters (B) -> A's queries, position
detectors (C) -> B's values, structure readers (D) -> C's values. Heads whose removal costs < 1%
accuracy are then pruned (minimality). Faithfulness = accuracy with every non-circuit head
mean-ablated / full accuracy; random circuits of the same size, drawn outside the circuit, give
the floor (`ablation`). DCM learns which heads carry the positional, object and box-label
information; CMAP patches each group from a second model (e.g. the fine-tuned one) into the base
and reports the share of the accuracy gap it recovers (`transfer`). A model at chance on the task
gets no circuit, only that verdict.

How few heads suffice, whatever path patching finds: `learned_circuit` learns a hard-concrete
gate per head and prunes the learned set while separate validation prompts keep the target
(`learned`); `greedy_circuit` eliminates heads one (or a share) at a time from every head
(`greedy`).

Modules, in the order data flows: `config` -> `metrics` -> `discovery` -> `ablation` ->
`circuit` -> `transfer`, `greedy`, `learned` -> `result` (with `floor`) -> `pipeline` (`run`).

    >>> import interp                                                         # doctest: +SKIP
    >>> res = run(interp.load("world-base"), Config(n_prompts=300))           # doctest: +SKIP
    >>> res.circuit.heads("value fetcher"), res.faithfulness                  # doctest: +SKIP
"""

from interp.analysis import Analyzer
from interp.export import circuit_figure

from .ablation import (
    PositionMeans,
    ablate_others,
    ablation_sources,
    circuit_accuracy,
    faithfulness,
    position_means,
    prune_minimal,
    random_control,
    random_faithfulness,
)
from .circuit import build_circuit
from .config import ABLATIONS, GROUPS, MASK_LOSSES, METRIC_NAME, METRICS, ROLE, Config
from .discovery import discover, group_scores, receiver_group, receivers, select_group
from .floor import forward_floor, greedy_floor
from .greedy import greedy_circuit
from .learned import (
    hard_concrete_gate,
    hard_concrete_l0,
    hard_concrete_sample,
    learned_circuit,
    mask_loss,
)
from .metrics import accuracy, chance, logit_diff, logit_diff_metric, other_object_ids, prob_metric
from .pipeline import datasets, demo_config, load_finetuned, run, validation_dataset
from .result import EntityTrackingResult, Result
from .transfer import cmap_table, dcm_groups, group_patches

__all__ = [
    "Config",
    "Result",
    "EntityTrackingResult",
    "GROUPS",
    "ROLE",
    "ABLATIONS",
    "METRICS",
    "MASK_LOSSES",
    "METRIC_NAME",
    "accuracy",
    "chance",
    "prob_metric",
    "logit_diff",
    "logit_diff_metric",
    "other_object_ids",
    "receivers",
    "group_scores",
    "select_group",
    "receiver_group",
    "discover",
    "ablate_others",
    "position_means",
    "PositionMeans",
    "ablation_sources",
    "circuit_accuracy",
    "faithfulness",
    "prune_minimal",
    "random_control",
    "random_faithfulness",
    "greedy_circuit",
    "hard_concrete_sample",
    "hard_concrete_gate",
    "hard_concrete_l0",
    "mask_loss",
    "learned_circuit",
    "build_circuit",
    "circuit_figure",
    "dcm_groups",
    "group_patches",
    "cmap_table",
    "forward_floor",
    "greedy_floor",
    "datasets",
    "validation_dataset",
    "demo_config",
    "load_finetuned",
    "run",
    "ENTRY",
]

ENTRY = Analyzer(
    "entity_tracking",
    "entity-tracking circuit, DCM, CMAP (Prakash et al. 2024)",
    Config,
    run,
    demo_config=demo_config,
)
"""The registry entry (registered in `circuits/__init__.py`)."""
