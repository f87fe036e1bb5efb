"""The typer app every ``interp`` command registers on, and what the commands share: loading a
model quietly, failing with a clear message, and turning interp's own errors into that message.

Only `InterpError` (and, until every analyzer raises typed errors, the builtin errors of bad
input) is caught and printed as ``error: ...``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterable, Iterator, NoReturn, Optional

import typer

import interp
from interp.errors import InterpError, InvalidArgumentError

__all__ = ["app", "load_model", "fail", "user_errors", "USER_ERRORS", "check_counts"]

app = typer.Typer(
    help="interp: find and steer the heads that do the work in a causal LM.",
    no_args_is_help=True,
    add_completion=False,
)

USER_ERRORS = (InterpError, FileNotFoundError, ValueError, TypeError)
"""What a command reports as ``error: ...`` instead of a traceback."""


def load_model(spec: str, backend: str = "nnsight") -> interp.Model:
    """`interp.load` with its warnings silenced (the CLI prints its own summary)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return interp.load(spec, backend=backend)


def fail(message: str) -> NoReturn:
    """Print ``error: MESSAGE`` in red on stderr and exit with status 2."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors of bad input raised inside the block into `fail(message)`."""
    try:
        yield
    except USER_ERRORS as err:
        fail(str(err))


def check_counts(flag: str, values: Iterable[Optional[int]], default: str) -> None:
    """Refuse a count flag (``--k``) of 0 or less before anything loads. 0 does not mean "the
    default" (it used to fall back to it in silence), so the `InvalidArgumentError` says how
    to get the default: `default` is what leaving the flag out gives.

        >>> check_counts("--k", [3, None], "every head")  # fine: nothing happens
    """
    for value in values:
        if value is not None and value < 1:
            raise InvalidArgumentError(
                f"{flag} must be 1 or more, got {value}; leave {flag} out for {default}"
            )
