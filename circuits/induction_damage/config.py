"""What the repeated-data damage study measures: `Config` (the family, the induction scoring
config every member is measured with, and the held-out test rows).

    >>> Config(family="rep2l").induction.causal
    False
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Union

from circuits.induction import InductionConfig
from interp.errors import InvalidArgumentError

__all__ = ["Config"]


def _default_induction() -> InductionConfig:
    return InductionConfig(n=8, causal=False)


@dataclass(frozen=True)
class Config:
    """family: a zoo name prefix (``rep2l``) or a folder of member models.
    induction: how each member's heads are scored (the causal check is always off: the study
      compares scores and losses across members, not ablations within one).
    test_rows / test_seed: the unique held-out rows of the family's corpus for the test loss.
    trajectories: also score each member's saved training checkpoints.
    """

    family: Union[str, os.PathLike] = "rep2l"
    induction: InductionConfig = field(default_factory=_default_induction)
    test_rows: int = 64
    test_seed: int = 0
    trajectories: bool = True

    def __post_init__(self):
        if not isinstance(self.induction, InductionConfig):
            raise InvalidArgumentError(
                f"Config.induction must be an InductionConfig, got "
                f"{type(self.induction).__name__}"
            )
        object.__setattr__(self, "induction", replace(self.induction, causal=False))
        if (
            isinstance(self.test_rows, bool)
            or not isinstance(self.test_rows, int)
            or self.test_rows < 1
        ):
            raise InvalidArgumentError(
                f"Config.test_rows must be a positive int, got {self.test_rows!r}"
            )
