"""Progress of long work: which stage an analysis is in, and a bar with an ETA, on stderr.

Analyzers wrap their long loops in `track` (an iterable) or `stage` (a bar updated by hand);
`quiet()` (the CLI's ``--quiet``) silences every bar. Bars never write to stdout, so a command's
printed report stays clean to pipe.

    >>> with quiet():
    ...     total = sum(track(range(3), "scoring"))
    >>> total
    3
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterable, Iterator, Optional, TypeVar

from tqdm.auto import tqdm

__all__ = ["track", "stage", "quiet", "set_quiet", "is_quiet"]

T = TypeVar("T")
_QUIET: ContextVar[bool] = ContextVar("interp_progress_quiet", default=False)


def set_quiet(flag: bool = True) -> None:
    """Silence (or re-enable) every progress bar in this context."""
    _QUIET.set(bool(flag))


def is_quiet() -> bool:
    return _QUIET.get()


@contextmanager
def quiet(flag: bool = True) -> Iterator[None]:
    """Within the block, bars are silent (`flag=True`) or shown (`flag=False`)."""
    token = _QUIET.set(bool(flag))
    try:
        yield
    finally:
        _QUIET.reset(token)


def _bar(name: str, total: Optional[int], unit: str) -> tqdm:
    return tqdm(
        total=total,
        desc=name,
        unit=unit,
        file=sys.stderr,
        disable=_QUIET.get(),
        leave=False,
        dynamic_ncols=True,
    )


def track(
    items: Iterable[T], name: str, total: Optional[int] = None, unit: str = "step"
) -> Iterator[T]:
    """Iterate `items` with a bar named `name` (stage and ETA); `total` defaults to len(items)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with _bar(name, total, unit) as bar:
        for item in items:
            yield item
            bar.update(1)


@contextmanager
def stage(name: str, total: Optional[int] = None, unit: str = "step") -> Iterator[tqdm]:
    """A bar named `name` for work counted by hand:
    ``with stage("patching", 96) as bar: bar.update()``."""
    with _bar(name, total, unit) as bar:
        yield bar
