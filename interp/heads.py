"""Attention heads as values.

A head is named by its zero-based layer and its index among the layer's query heads,
written ``L{layer}H{head}`` everywhere in `interp` (``L10H7`` is layer 10, head 7).
`Head.parse` accepts the spellings researchers use in papers and notebooks::

    >>> Head.parse("L10H7") == Head.parse((10, 7)) == Head.parse("10.7") == Head.parse("a10.h7")
    True
    >>> str(Head.parse("10-7"))
    'L10H7'

`Head` knows nothing of any model; `check_heads` validates heads against a model's shape
and says the valid range when one is out of it.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import Iterable, Union

from .errors import ArgumentTypeError, InterpError, InvalidArgumentError

__all__ = ["Head", "HeadLike", "parse_heads", "check_heads", "HeadIndexError", "HeadSpecError"]

_PATTERNS = (
    re.compile(r"^\s*[lL](\d+)\s*[hH](\d+)\s*$"),  # L10H7
    re.compile(r"^\s*[aA](\d+)\s*\.\s*[hH](\d+)\s*$"),  # a10.h7
    re.compile(r"^\s*(\d+)\s*[.\-:,/]\s*(\d+)\s*$"),  # 10.7, 10-7, 10:7
)


class HeadIndexError(InterpError, IndexError, ValueError):
    """A head outside the model's layers or heads. The message states the valid range."""


class HeadSpecError(InvalidArgumentError):
    """Text or a value that does not name one head (the message lists the spellings)."""


def _is_int(value) -> bool:
    """An integer that is not a bool: a Python int or a NumPy integer (`numbers.Integral`).
    Floats (even 1.0) and bools are not: reading them as indices would silently truncate
    (1.5 -> 1) or turn True into 1."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _index(value, what: str, spec) -> int:
    """An int layer/head index from a pair element: ints and integral strings only (no bools or
    floats, which would silently truncate)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if not _is_int(value):
        raise HeadSpecError(
            f"cannot read a head from {spec!r}: the {what} must be an int, got "
            f"{type(value).__name__} {value!r}; write e.g. (10, 7) or 'L10H7'"
        )
    return int(value)


@dataclass(frozen=True, order=True)
class Head:
    """One attention head: ``Head(layer, head)``, zero-based, ordered by (layer, head)."""

    layer: int
    head: int

    def __post_init__(self) -> None:
        for name in ("layer", "head"):
            value = getattr(self, name)
            if not _is_int(value):
                raise ArgumentTypeError(
                    f"Head.{name} must be an int, got {type(value).__name__} {value!r}"
                )
            value = int(value)  # a NumPy integer becomes a plain int (hash, JSON, str)
            object.__setattr__(self, name, value)
            if value < 0:
                raise HeadIndexError(
                    f"Head.{name} must be >= 0 (indices count from 0; negative ones are not "
                    f"read from the end), got {value}"
                )

    @classmethod
    def parse(cls, spec: "HeadLike") -> "Head":
        """Read a head from ``"L10H7"``, ``(10, 7)``, ``"10.7"``, ``"a10.h7"``, ``"10-7"`` or a
        `Head`. Pair elements must be ints (or integral strings): ``(1.5, 2)`` and ``(True, 1)``
        are refused, not truncated to L1H2 and L1H1."""
        if isinstance(spec, Head):
            return spec
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            return cls(_index(spec[0], "layer", spec), _index(spec[1], "head", spec))
        if isinstance(spec, str):
            for pattern in _PATTERNS:
                match = pattern.match(spec)
                if match:
                    return cls(int(match.group(1)), int(match.group(2)))
        raise HeadSpecError(
            f"cannot read a head from {spec!r}; expected 'L10H7', (10, 7), '10.7', 'a10.h7' "
            "or '10-7'"
        )

    def __str__(self) -> str:
        return f"L{self.layer}H{self.head}"

    @property
    def name(self) -> str:
        return str(self)


HeadLike = Union[Head, str, tuple, list]


def parse_heads(specs: Union[HeadLike, Iterable[HeadLike]]) -> tuple[Head, ...]:
    """Parse one head or many into a tuple of unique heads, in the order given.

    >>> parse_heads(["L0H1", (2, 3), "L0H1"])
    (Head(layer=0, head=1), Head(layer=2, head=3))
    """
    if isinstance(specs, (Head, str)) or (
        isinstance(specs, tuple)
        and len(specs) == 2
        and all(isinstance(x, numbers.Integral) for x in specs)
    ):
        specs = [specs]
    heads = [Head.parse(s) for s in specs]
    return tuple(dict.fromkeys(heads))


def check_heads(heads: Iterable[Head], n_layers: int, n_heads: int) -> None:
    """Raise `HeadIndexError` naming the valid range if any head lies outside the model."""
    for head in heads:
        if head.layer >= n_layers or head.head >= n_heads:
            raise HeadIndexError(
                f"head {head} is outside this model: layers are 0..{n_layers - 1} and heads "
                f"0..{n_heads - 1} (valid heads L0H0 to L{n_layers - 1}H{n_heads - 1})"
            )
