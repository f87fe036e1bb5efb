"""The arguments every run takes, checked before anything runs: which engine, which head sites
and layers to capture, whether applied interventions count, a batch size.

Each check names what it expected and how to write it, so a typo is a clear `InterpError`,
not a ``TypeError`` from deep inside a forward or a value read in silence (``sites="pattern"``
is one site, not seven characters; ``use_interventions="no"`` is not True).

    >>> site_names("pattern")
    ('pattern',)
    >>> layer_indices(1, n_layers=4)
    [1]
"""

from __future__ import annotations

import numbers
from typing import Optional

from .arch import SITES
from .errors import ArgumentTypeError, InterpError, InvalidArgumentError

__all__ = [
    "BACKENDS",
    "UnknownSiteError",
    "check_backend",
    "site_names",
    "layer_indices",
    "check_flag",
    "check_count",
]

BACKENDS = ("transformer_lens", "nnsight")


class UnknownSiteError(InterpError, KeyError, ValueError):
    """A site name that is not one of `interp.arch.SITES` (also a KeyError and a ValueError)."""

    def __str__(self) -> str:
        return str(self.args[0])


def check_backend(name) -> str:
    """`name` if it is one of `BACKENDS`."""
    if name not in BACKENDS:
        raise InvalidArgumentError(
            f"unknown backend {name!r}; choose one of {BACKENDS} (or leave backend out for "
            "the model's default)"
        )
    return name


def site_names(sites) -> tuple[str, ...]:
    """One site name or several, as a tuple; each must be one of `interp.arch.SITES`."""
    if isinstance(sites, str):
        sites = (sites,)
    elif not isinstance(sites, (list, tuple, set, frozenset)):
        raise ArgumentTypeError(
            f"sites takes a site name or a list of them (valid: {', '.join(SITES)}), got "
            f"{type(sites).__name__} {sites!r}; e.g. sites=('z', 'pattern')"
        )
    for site in sites:
        if site not in SITES:
            raise UnknownSiteError(f"unknown site {site!r}; valid sites: {', '.join(SITES)}")
    return tuple(sites)


def layer_indices(layers, n_layers: int) -> list[int]:
    """Every layer when `layers` is None, else one layer index or several, each in range."""
    if layers is None:
        return list(range(n_layers))
    if _is_index(layers):
        layers = [layers]
    elif isinstance(layers, (str, bytes, bool)) or not isinstance(
        layers, (list, tuple, range, set)
    ):
        raise ArgumentTypeError(
            f"layers takes a layer index or a list of them, got {type(layers).__name__} "
            f"{layers!r}; e.g. layers=[0, {n_layers - 1}] (leave it out for every layer)"
        )
    for layer in layers:
        if not _is_index(layer):
            raise ArgumentTypeError(
                f"layers must be ints, got {type(layer).__name__} {layer!r}; e.g. "
                f"layers=[0, {n_layers - 1}]"
            )
        if not 0 <= layer < n_layers:
            raise InvalidArgumentError(
                f"layer {layer} is outside 0..{n_layers - 1} (this model has {n_layers} layers; "
                "indices count from 0, negative ones are not read from the end)"
            )
    return [int(layer) for layer in layers]


def _is_index(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_flag(name: str, value) -> bool:
    """`value` if it is True or False (a string such as 'no' would read as True)."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(
            f"{name} must be True or False, got {type(value).__name__} {value!r}"
        )
    return value


def check_count(name: str, value, minimum: int = 1, hint: Optional[str] = None) -> int:
    """`value` if it is an int >= `minimum`."""
    if not _is_index(value):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise InvalidArgumentError(
            f"{name} must be {minimum} or more, got {value}" + (f"; {hint}" if hint else "")
        )
    return int(value)
