"""Repeated-data damage to induction (Hernandez et al. 2022, at toy scale): does training on a
share of repeated rows hurt held-out loss and the induction heads?

The zoo's repeated-data family (``rep2l-fXX-sS``: repeated fraction XX%, seed S) shares one
corpus mixture; each member draws a share of its rows from a small repeated pool. For every
member the study measures the unique held-out loss, the loss on the repeated rows, and the
induction scores and copy losses of `circuits.induction`; across members it compares each
repeated fraction with the control (fraction 0) against the spread over seeds, and, where
members saved checkpoints, follows the same numbers over training.

Modules: `config` (`Config`), `family` (members, held-out and repeated rows), `study`
(`damage_study`, `run`), `result` (`Result`).

    >>> res = damage_study("rep2l")                 # doctest: +SKIP
    >>> res.conclusion()                            # doctest: +SKIP
"""

from interp.analysis import Analyzer

from .config import Config
from .family import FamilyNotFoundError, family_members, heldout_rows, lm_loss, repeated_rows
from .result import METRICS, DamageResult, Result
from .study import damage_study, member_numbers, run

__all__ = [
    "Config",
    "Result",
    "DamageResult",
    "run",
    "damage_study",
    "member_numbers",
    "family_members",
    "heldout_rows",
    "repeated_rows",
    "lm_loss",
    "FamilyNotFoundError",
    "METRICS",
    "ENTRY",
]

ENTRY = Analyzer(
    "induction_damage", "repeated-data damage to induction (Hernandez et al. 2022)", Config, run
)
"""The registry entry (registered in `circuits/__init__.py`; the demo does not run it: it needs a
trained family, not one model)."""
