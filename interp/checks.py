"""`Check`: one causal check as a reader states it, with its numbers and a pass/fail mark.

An analyzer's causal claim is always "doing X to the named heads moves the behaviour by this
much, and the same X to random heads (the control) moves it by that much". A `Check` keeps
that sentence and each bar the analyzer states for it (``rise >= 20 points``, ``control <= 5
points``), measured as met or not met. The head atlas shows the sentences with a mark; the
raw numbers stay in ``summary.json``.

    >>> check = Check(
    ...     "pruning L1H2 raises memory use 59% -> 98% (+39)",
    ...     "5 random heads move it 7.3 points on average",
    ...     bars=(("rise >= 20", True), ("control <= 5", False)),
    ... )
    >>> check.sentence().endswith("(rise >= 20: met; control <= 5: not met)")
    True
    >>> check.passed
    False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from .errors import InvalidArgumentError

__all__ = ["Check", "percent", "signed", "heads_phrase", "random_sets", "rate_check"]


@dataclass(frozen=True)
class Check:
    """effect: what the named heads did, with numbers; control: what the control did;
    bars: each stated bar as (text, met)."""

    effect: str
    control: str = ""
    bars: tuple = ()

    @property
    def passed(self) -> Optional[bool]:
        """True when every bar is met, False when one is not, None when no bar is stated."""
        return None if not self.bars else all(bool(met) for _, met in self.bars)

    def to_dict(self) -> dict:
        """The check as JSON (`summary.json`'s ``roles``); `from_dict` reads it back."""
        return {
            "effect": self.effect,
            "control": self.control,
            "bars": [list(b) for b in self.bars],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Check":
        if not isinstance(data, dict) or "effect" not in data:
            raise InvalidArgumentError(
                f"a check is an object with an effect sentence (Check.to_dict()), got {data!r}"
            )
        bars = tuple((str(text), bool(met)) for text, met in data.get("bars", ()))
        return cls(str(data["effect"]), str(data.get("control", "")), bars)

    def sentence(self) -> str:
        """The check in one line: effect; control (bar: met; bar: not met)."""
        text = self.effect + (f"; {self.control}" if self.control else "")
        if self.bars:
            marks = "; ".join(f"{bar}: {'met' if met else 'not met'}" for bar, met in self.bars)
            text += f" ({marks})"
        return text


def percent(rate: Optional[float]) -> str:
    """0.591 -> '59%' (None -> 'n/a')."""
    return "n/a" if rate is None else f"{100 * rate:.0f}%"


def signed(points: float, digits: int = 0) -> str:
    """39.4 -> '+39', -3.0 -> '-3' (points, with an explicit sign)."""
    return f"{points:+.{digits}f}"


def heads_phrase(heads: Iterable, role: str = "") -> str:
    """['L1H2'] -> 'L1H2'; five heads -> 'the 5 <role> heads (L1H2, L3H0, ...)'."""
    names = [str(h) for h in heads]
    if len(names) <= 3:
        return ", ".join(names) or "no heads"
    shown = ", ".join(names[:3])
    return f"the {len(names)} {role + ' ' if role else ''}heads ({shown}, ...)"


def random_sets(n_draws: int, k: int) -> str:
    """(5, 1) -> '5 random heads'; (20, 2) -> '20 random 2-head sets'."""
    return f"{n_draws} random {'heads' if k == 1 else f'{k}-head sets'}"


def rate_check(
    action: str,
    rate: str,
    before: float,
    after: float,
    *,
    random_move: float,
    n_draws: int,
    k: int,
    outside_move: Optional[float] = None,
    bars: tuple = (),
) -> Check:
    """The check of an edit that should move one rate, against random heads given the same edit.

    action: what was done ('pruning context head L12H1'); rate: the behaviour ('memory use');
    before / after: the rate (0-1) unedited and edited; random_move: the random sets' largest
    mean move over the rates, in points (outside_move: the same, drawn outside every located
    head); bars: the analyzer's stated bars as (text, met).

        >>> check = rate_check("pruning L1H2", "memory use", 0.591, 0.985, random_move=7.27,
        ...                    n_draws=5, k=1, bars=(("rise >= 20", True),))
        >>> check.effect
        'pruning L1H2 raises memory use 59% -> 98% (+39)'
        >>> check.control
        '5 random heads move the rates by up to 7.3 points on average'
    """
    rise = 100 * (after - before)
    verb = "raises" if rise >= 0 else "lowers"
    effect = f"{action} {verb} {rate} {percent(before)} -> {percent(after)} ({signed(rise)})"
    control = (
        f"{random_sets(n_draws, k)} move the rates by up to {random_move:.1f} points on average"
    )
    if outside_move is not None:
        control += f" ({outside_move:.1f} when drawn outside the located heads)"
    return Check(effect, control, tuple(bars))
