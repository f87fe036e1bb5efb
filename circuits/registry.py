"""The analyzer registry: one `interp.analysis.Analyzer` entry per analyzer, registered in
`circuits/__init__.py` with one line each. The CLI, the demo and the atlas loop over it.

    >>> import circuits
    >>> set(circuits.registry.names()) <= set(circuits.ANALYZERS)
    True
"""

from __future__ import annotations

from interp.analysis import Analyzer
from interp.errors import InvalidArgumentError

__all__ = ["register", "get", "names", "entries", "UnknownAnalyzerError"]

_REGISTRY: dict[str, Analyzer] = {}


class UnknownAnalyzerError(InvalidArgumentError, KeyError):
    """No analyzer of that name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def register(entry: Analyzer) -> Analyzer:
    """Add `entry` under its name (a second entry of the same name is refused)."""
    if entry.name in _REGISTRY:
        raise InvalidArgumentError(f"an analyzer named {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def get(name: str) -> Analyzer:
    """The entry named `name`; the error lists the registered names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownAnalyzerError(
            f"no analyzer named {name!r}; registered: {', '.join(_REGISTRY)}"
        ) from None


def names() -> list[str]:
    """Registered analyzer names, in registration order."""
    return list(_REGISTRY)


def entries() -> list[Analyzer]:
    """Registered entries, in registration order."""
    return list(_REGISTRY.values())
