"""The lifetime of interventions applied to a `Model`: `Model.apply`, `Model.remove` and the
``with model.intervene(...)`` block.

The rule: an intervention is on at most once. Applying one that is already on (the same object
or an equal one), giving the same one twice, or giving an applied one again to a run
(``interventions=``) is refused with `InterventionError`, because it would stack: two
``ScaleValues(h, 2.0)`` scale by 4. A nested ``with model.intervene(r):`` of an `r` that the
outer block applies is refused the same way, so the outer block keeps `r` until its own exit.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from .errors import ArgumentTypeError
from .interventions import Compose, Intervention, InterventionError, PatchHeads

if TYPE_CHECKING:
    from .models import Model

__all__ = ["InterventionNotEnteredWarning", "Intervening", "check_once", "combine"]


def _same(a: Intervention, b: Intervention) -> bool:
    """The same intervention: one object, or equal ones. A `PatchHeads` is compared by object
    alone (its equality serialises the source, which may be a whole cache)."""
    if a is b:
        return True
    return type(a) is type(b) and not isinstance(a, PatchHeads) and a == b


def check_once(model: "Model", parts, *, given: str, use_active: bool = True) -> None:
    """Refuse parts that repeat each other or one already applied to `model`: each would run
    twice and stack (a value scale x2 twice is x4)."""
    parts = list(parts)
    for i, part in enumerate(parts):
        if any(_same(part, other) for other in parts[:i]):
            raise InterventionError(
                f"{_short(part)} is given twice to {given} (it would be applied twice and stack: "
                "ScaleValues x2 twice is x4); give it once, or one ScaleValues with the "
                "product of the alphas"
            )
    if not use_active:
        return
    for part in parts:
        for active in model._active:
            if any(_same(part, other) for other in active.parts()):
                how = (
                    "drop it from interventions= (it is on already), or pass "
                    "use_interventions=False to run without the applied ones"
                    if given == "interventions="
                    else f"remove it first with model.remove({_short(active)})"
                )
                where = "" if active is part else f" (as part of {_short(active)})"
                raise InterventionError(
                    f"{_short(part)} is already applied to {model.name}{where}; applying it "
                    f"again would stack it (ScaleValues x2 twice is x4): {how}"
                )


def _short(intervention: Intervention, limit: int = 160) -> str:
    text = repr(intervention)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InterventionNotEnteredWarning(RuntimeWarning):
    """``model.intervene(...)`` was called but never entered with ``with``: nothing was applied."""


class Intervening:
    """What `Model.intervene` returns: applies on ``__enter__``, removes on ``__exit__``."""

    def __init__(self, model: "Model", interventions):
        combine(interventions)  # bad input fails at the call, not at `with`
        self.model, self.interventions, self.entered = model, interventions, False

    def __enter__(self) -> "Model":
        self.entered = True
        self.applied = self.model.apply(*self.interventions)
        return self.model

    def __exit__(self, *exc) -> None:
        self.model._active = [a for a in self.model._active if a is not self.applied]

    def __del__(self) -> None:
        if not getattr(self, "entered", True):  # True: __init__ failed, nothing to warn about
            warnings.warn(
                "model.intervene(...) was not used in a `with` block, so nothing was applied; "
                "write `with model.intervene(...):`, or model.apply(...) to keep it on",
                InterventionNotEnteredWarning,
                stacklevel=2,
            )


def combine(interventions) -> Intervention:
    if not interventions:
        raise InterventionError(
            "give at least one intervention, e.g. model.apply(PruneHeads(['L0H1']))"
        )
    for item in interventions:
        if not isinstance(item, Intervention):
            raise ArgumentTypeError(
                f"expected interventions (PruneHeads, ScaleValues, PatchHeads, Compose), "
                f"got {type(item).__name__} {item!r:.100}; e.g. model.apply(PruneHeads(['L1H0']))"
            )
    return interventions[0] if len(interventions) == 1 else Compose(interventions)
