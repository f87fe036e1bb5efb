"""`InterpError`: the root of every error interp raises on purpose.

Each typed error (a bad head, an unsupported architecture, a prompt too long, ...) subclasses
`InterpError` beside the builtin it refines (`ValueError`, `KeyError`, ...), so callers can catch
either. The CLI catches `InterpError` alone and prints its message; anything else is a bug and
is shown with its traceback.

    >>> issubclass(InterpError, Exception)
    True
"""

from __future__ import annotations

__all__ = [
    "InterpError",
    "InvalidArgumentError",
    "ArgumentTypeError",
    "InterventionError",
    "MissingFileError",
]


class InterpError(Exception):
    """An error interp raises on purpose; its message says what was expected and the fix."""


class InvalidArgumentError(InterpError, ValueError):
    """An argument or config value outside what is accepted; the message names the valid range."""


class ArgumentTypeError(InterpError, TypeError):
    """An argument of the wrong type; the message names the expected type."""


class InterventionError(InvalidArgumentError):
    """An intervention that cannot be built or applied as given; the message names the fix.
    (Defined here so `interp.patch_source` can raise it; `interp.interventions` exports it.)"""


class MissingFileError(InterpError, FileNotFoundError):
    """A file the user named that is not there; the message names the path and what to pass."""
