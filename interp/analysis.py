"""The analyzer protocol: what every analyzer in `circuits` offers, so that the CLI, the demo
and the atlas loop over one registry instead of knowing each analyzer.

An analyzer is a frozen `Config` dataclass (every knob, seeds included) and a function
``run(model, cfg) -> result``. Its result answers:

- ``analyzer``: the registry name (``"retrieval"``), also the folder and summary name;
- ``numbers() -> dict``: every number it claims (``summary.json``'s ``numbers``);
- ``figures() -> dict[str, go.Figure]``: name -> figure, written as ``NAME.html``;
- ``roles() -> list[RoleMap]``: heads by role with the causal check behind them (the atlas);
- ``circuits() -> list[Circuit]``: the circuits it names (possibly none);
- ``provenance() -> dict``: ``{"model": ..., "data": {...}, "seeds": {...}}``;
- ``report() -> str``: the lines a terminal user reads;
- optionally ``floor() -> (forward_passes, how)``: the fewest full-sequence forward equivalents
  the analysis needs and how that number is derived (`interp.cost`).

`Analyzer` is one registry entry; `interp.report.write_result` writes any result's ``--out``.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Config:
    ...     seed: int = 0
    >>> entry = Analyzer("toy", "a toy analyzer", Config, run=lambda model, cfg: None)
    >>> entry.default_config()
    Config(seed=0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, runtime_checkable

from .cost import Cost, measure_cost

if TYPE_CHECKING:  # annotations only: the atlas and plotly are not needed to define the protocol
    import plotly.graph_objects as go

    from .atlas import RoleMap
    from .circuit import Circuit

__all__ = ["AnalysisResult", "Analyzer", "run_with_cost"]


@runtime_checkable
class AnalysisResult(Protocol):
    """What `run(model, cfg)` of every analyzer returns."""

    analyzer: str

    def numbers(self) -> dict: ...

    def figures(self) -> "dict[str, go.Figure]": ...

    def roles(self) -> "list[RoleMap]": ...

    def circuits(self) -> "list[Circuit]": ...

    def provenance(self) -> dict: ...

    def report(self) -> str: ...


@dataclass(frozen=True)
class Analyzer:
    """One registry entry.

    name: registry name (folder name under ``--out``, summary ``analyzer``).
    title: one line for listings, with the paper.
    config: the analyzer's Config class.
    run: ``run(model, cfg) -> AnalysisResult``.
    demo_config: the Config the demo uses on a given model (default: ``config()``).
    """

    name: str
    title: str
    config: type
    run: Callable[..., Any]
    demo_config: Optional[Callable[[Any], Any]] = None

    def default_config(self, model: Any = None) -> Any:
        """The Config the demo and the atlas run with on `model`."""
        return self.demo_config(model) if self.demo_config is not None else self.config()


def run_with_cost(
    run: Callable[..., Any], model: Any, cfg: Any, **kwargs: Any
) -> "tuple[Any, Cost]":
    """``run(model, cfg)`` with its cost measured; the cost carries the result's floor when
    the result states one (``floor()``)."""
    with measure_cost(model) as meter:
        result = run(model, cfg, **kwargs)
    cost = meter.cost
    floor = getattr(result, "floor", None)
    if callable(floor):
        cost = cost.with_floor(*floor())
    return result, cost
