"""The typer app every ``interp`` command registers on, and what the commands share: loading a
model quietly, failing with a clear message, and turning interp's own errors into that message.

Only `InterpError` is caught and printed as ``error: ...``; anything else is a bug and keeps its
traceback (tests/bad_inputs replays the bad input of every command to keep it so).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterable, Iterator, NoReturn, Optional

import typer

import interp
from interp.errors import InterpError, InvalidArgumentError

__all__ = [
    "app",
    "load_model",
    "fail",
    "user_errors",
    "USER_ERRORS",
    "check_counts",
    "parse_numbers",
]

app = typer.Typer(
    help="interp: find and steer the heads that do the work in a causal LM.",
    no_args_is_help=True,
    add_completion=False,
)

USER_ERRORS = (InterpError,)
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


def parse_numbers(text: Optional[str], flag: str, kind=float) -> Optional[tuple]:
    """A flag's list of numbers: '48,80 112' -> (48, 80, 112) as `kind`; None stays None. The
    error names the flag and shows the form it takes.

        >>> parse_numbers("8,13 21", "--lengths", int)
        (8, 13, 21)
    """
    if text is None:
        return None
    try:
        return tuple(kind(x) for x in str(text).replace(",", " ").split())
    except ValueError:
        example = "8,13,21" if kind is int else "0.1,0.5,0.9"
        raise InvalidArgumentError(
            f"{flag} takes comma-separated {'integers' if kind is int else 'numbers'}, e.g. "
            f"{example}; got {text!r}"
        ) from None
