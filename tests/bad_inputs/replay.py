"""Replay one bad input and say what a user would have seen.

Every case is run for real and lands in exactly one outcome:

- ``typed``: an `InterpError` whose message is a sentence (the CLI's ``error: ...`` counts);
- ``warned``: it ran, and one of interp's own warnings said what happened;
- ``correct``: it ran, and the result is the right one (the case says how to check);
- ``silent``: it ran with no word, and the result is wrong or the input was ignored;
- ``confusing``: any other exception (a builtin error from deep inside, a traceback in the CLI,
  an `InterpError` with a message too short to name the fix).

After every case the models are checked: no hook left on any module, no intervention left
active, and a plain forward bit for bit equal to the one taken before the first case.
"""

from __future__ import annotations

import signal
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import torch

from interp.errors import InterpError

__all__ = ["Case", "Outcome", "CliRefused", "RanTooLong", "replay", "OUTCOMES", "ACCEPTED"]

OUTCOMES = ("typed", "warned", "correct", "silent", "confusing")
ACCEPTED = ("typed", "warned", "correct")
MIN_MESSAGE = 40
"""Characters an error message needs to name both what was expected and the fix."""


class CliRefused(Exception):
    """The CLI stopped with ``error: MESSAGE`` and exit status 2 (no traceback)."""


class RanTooLong(Exception):
    """The case ran past its time budget: the bad input was not refused up front."""


@dataclass(frozen=True)
class Case:
    """One bad input: `action(ctx)` runs it; `correct(ctx, value)`, when given, says whether what
    it returned is the right result (for inputs whose right answer is to work, not to fail)."""

    family: str
    name: str
    action: Callable[[Any], Any]
    correct: Optional[Callable[[Any, Any], bool]] = None

    @property
    def id(self) -> str:
        return f"{self.family}: {self.name}"


@dataclass(frozen=True)
class Outcome:
    case: Case
    kind: str
    detail: str
    leaked: bool
    seconds: float

    def to_dict(self) -> dict:
        return {
            "family": self.case.family,
            "case": self.case.name,
            "outcome": self.kind,
            "detail": self.detail,
            "leaked": self.leaked,
            "seconds": round(self.seconds, 3),
        }


def _is_interp_warning(w: warnings.WarningMessage) -> bool:
    return w.category.__module__.split(".")[0] in ("interp", "circuits")


@contextmanager
def _time_budget(seconds: float) -> Iterator[None]:
    """Raise `RanTooLong` in the main thread after `seconds` (no budget off the main thread)."""
    try:
        previous = signal.signal(signal.SIGALRM, _raise_too_long)
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _raise_too_long(signum, frame):
    raise RanTooLong("ran past its time budget instead of refusing the input up front")


def _classify(case: Case, ctx, budget: float) -> tuple[str, str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with _time_budget(budget):
                value = case.action(ctx)
        except (CliRefused, InterpError) as err:
            message = str(err)
            kind = "typed" if len(message) >= MIN_MESSAGE else "confusing"
            return kind, f"{type(err).__name__}: {message}"
        except RanTooLong as err:
            return "silent", str(err)
        except Exception as err:  # noqa: BLE001 - every other exception is what we count
            return "confusing", f"{type(err).__name__}: {err}"
    ours = [w for w in caught if _is_interp_warning(w)]
    if case.correct is not None and case.correct(ctx, value):
        return "correct", "; ".join(f"{w.category.__name__}: {w.message}" for w in ours)
    if ours:
        return "warned", f"{ours[0].category.__name__}: {ours[0].message}"
    return "silent", f"returned {type(value).__name__} with no error or warning"


def replay(case: Case, ctx, budget: float = 30.0) -> Outcome:
    """Run `case` against `ctx` (see `context.Context`) and classify it."""
    start = time.perf_counter()
    kind, detail = _classify(case, ctx, budget)
    seconds = time.perf_counter() - start
    leaked = not ctx.clean()
    return Outcome(case, kind, detail, leaked, seconds)


def forward_fingerprint(model, prompt: str) -> torch.Tensor:
    """A plain forward's logits, to compare bit for bit after each case."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.forward(prompt, use_interventions=False).detach().clone()
