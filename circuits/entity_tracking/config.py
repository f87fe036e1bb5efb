"""`Config`: every size, threshold and seed of one entity-tracking analysis, and the names the
other modules share: the circuit's groups (`GROUPS`, `ROLE`), the ablations, metrics and mask
losses a config may name.

    >>> Config(n_prompts=100).n_eval
    300
    >>> Config(metric="accuracy")
    Traceback (most recent call last):
    ...
    interp.errors.InvalidArgumentError: Config.metric must be one of ('prob', 'logit_diff'), got 'accuracy'
"""  # noqa: E501 (the doctest's expected exception line must match verbatim)

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Optional

from interp.controls import POOLS
from interp.data.boxes import BoxTemplate
from interp.errors import InvalidArgumentError

__all__ = ["Config", "GROUPS", "ROLE", "ABLATIONS", "METRICS", "MASK_LOSSES", "METRIC_NAME"]

# (key, role, receiver site of the path into the previous group, position name)
GROUPS = (
    ("A", "value fetcher", None, "last"),
    ("B", "position transmitter", "q", "last"),
    ("C", "position detector", "v", "query label"),
    ("D", "structure reader", "v", "earlier label"),
)
ROLE = {key: role for key, role, _, _ in GROUPS}
ABLATIONS = ("mean", "position-mean")
METRICS = ("prob", "logit_diff")
MASK_LOSSES = ("ce", "logit_diff")  # task losses of learned_circuit
METRIC_NAME = {"prob": "p(correct)", "logit_diff": "logit diff (correct - other objects)"}


@dataclass(frozen=True)
class Config:
    """Sizes, thresholds and seeds of one entity-tracking analysis (paper values where stated)."""

    n_prompts: int = 300  # path-patching prompts (paper: 300)
    n_eval: int = 300  # held-out prompts for accuracy / faithfulness / CMAP
    n_reference: int = 200  # prompts whose mean head outputs replace ablated heads
    n_boxes: Optional[int] = (
        None  # None: 4 on the zoo's world models (trained on 2-6), else the paper's 7
    )
    threshold: float = 0.05  # min relative drop in the metric to join a group
    metric: str = (
        "prob"  # path-patching metric: "prob" = p(correct) (paper); "logit_diff" = logit of
    )
    # the correct object - mean logit of the prompt's other objects (does not
    # saturate when the model is sure: single-head effects stay visible)
    max_per_group: int = 8
    prune_cost: float = 0.01  # minimality: drop heads whose removal costs less accuracy
    n_random: int = 10
    random_pool: str = (
        "outside"  # random circuits drawn outside the circuit (specificity), "inside" it
    )
    # (redundancy) or from every head ("others"); see interp.controls
    dcm_pairs: int = 1000  # paper: 2000, split 50/25/25
    dcm_lambda: float = 0.01
    dcm_lr: float = 0.1
    dcm_epochs: int = 2
    batch_size: int = 64
    seed: int = 0
    template: Optional[BoxTemplate] = (
        None  # None: the model's (interp.data.boxes.default_template):
    )
    # the zoo wording for world tokenizers, the paper's otherwise
    objects: Optional[tuple] = None
    labels: Optional[tuple] = None
    ablation: str = "mean"  # "mean" (PruneHeads.with_means) or "position-mean"
    greedy: bool = (
        False  # also search the smallest head set keeping `greedy_target` (slow: ~n^2/2 evals)
    )
    greedy_target: float = 0.9
    learned: bool = False  # also learn a gate per head (learned_circuit; minutes, not hours)
    learned_lambdas: tuple = (0.1, 0.15, 0.2, 0.25, 0.3)
    learned_epochs: int = 20
    learned_loss: str = "ce"  # "ce" (-log p(correct)) or "logit_diff"
    learned_refine: bool = (
        True  # prune each learned set by backward elimination, stopping on validation prompts
    )
    finetuned: Optional[str] = (
        None  # a second model (zoo name, folder or id) for CMAP, loaded by `run`
    )
    # when no Model is handed to it
    backend: Optional[str] = None

    def __post_init__(self):
        for name in (
            "n_prompts",
            "n_eval",
            "n_reference",
            "n_random",
            "max_per_group",
            "batch_size",
        ):
            if int(getattr(self, name)) < 1:
                raise InvalidArgumentError(f"Config.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.threshold < 1 or not 0 <= self.prune_cost < 1:
            raise InvalidArgumentError(
                "Config.threshold and Config.prune_cost are fractions in [0, 1)"
            )
        for name, allowed in (
            ("metric", METRICS),
            ("ablation", ABLATIONS),
            ("learned_loss", MASK_LOSSES),
            ("random_pool", POOLS),
        ):
            if getattr(self, name) not in allowed:
                raise InvalidArgumentError(
                    f"Config.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        if self.dcm_pairs and self.dcm_pairs < 8:
            raise InvalidArgumentError(
                f"Config.dcm_pairs must be 0 (skip DCM) or >= 8, got {self.dcm_pairs}"
            )

    def to_dict(self) -> dict:
        """Every field as plain JSON values (tuples become lists), as it reads back from
        summary.json."""
        data = asdict(self)
        data["template"] = asdict(self.template) if self.template is not None else None
        return json.loads(json.dumps(data))

    def seeds(self) -> dict:
        """The seed of each prompt set and of the random circuits, derived from `seed`."""
        s = self.seed
        return {
            "data": s,
            "corrupt": s + 1,
            "eval": s + 1000,
            "reference": s + 2000,
            "dcm": s + 3,
            "random_circuits": s,
        }
