"""The zoo's errors: an unknown organism name, and a checkpoint or training state that cannot
be read.  Both are :class:`interp.errors.InterpError`, so the CLI prints their message alone.

    >>> str(UnknownZooModel("nope", ["world-base"]))
    "unknown zoo model 'nope'; valid names: world-base"
"""

from __future__ import annotations

from interp.errors import InterpError


class UnknownZooModel(InterpError, KeyError):
    """Raised for a name that is not a zoo organism; lists the valid names."""

    def __init__(self, name: str, valid: list[str]):
        self.name = name
        self.valid = list(valid)
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown zoo model {self.name!r}; valid names: {', '.join(self.valid)}"


class CorruptCheckpointError(InterpError, RuntimeError):
    """A checkpoint / training-state file exists but cannot be read."""
