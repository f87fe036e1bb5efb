"""What an analysis cost: wall time, forward passes, tokens and peak memory, counted in one place.

`measure_cost(model)` counts every forward the model runs through `Model.run_plan` (both
engines, generation, patching and the analyzers go through it) while the block runs:

- ``forward_passes``: full-sequence forward equivalents. A row of a batch that runs its whole
  sequence counts 1; a decode step over a KV cache counts its share of the tokens (1 new token
  over a context of T counts 1/T), so a 20-step decode costs about one forward, not twenty.
- ``tokens``: the tokens the model ran (new tokens only, batch rows summed).
- ``peak_memory_mb``: on CUDA ``torch.cuda.max_memory_allocated`` during the block; on CPU the
  process's peak resident set (reset at the start where Linux allows, else the process peak).
- ``floor_forward_passes``: the fewest forward equivalents the analysis needs, as the analyzer
  derives it (set with `Cost.with_floor`); ``ratio`` = forward_passes / floor.

    >>> from interp.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> with measure_cost(model) as meter:
    ...     _ = model.forward(["a b c", "d e f"])
    >>> meter.cost.forward_passes
    2.0
"""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator, Optional

import torch

__all__ = [
    "Cost",
    "CostMeter",
    "measure_cost",
    "peak_allocated_bytes",
    "is_large",
    "LARGE_MODEL_PARAMS",
]

LARGE_MODEL_PARAMS = 50_000_000
"""Models with at least this many parameters get the analyzers' large-model defaults
(`is_large`)."""


def is_large(model) -> bool:
    """True for a model of `LARGE_MODEL_PARAMS` or more parameters: every real pretrained model
    (SmolLM2-135M, Gemma-3-270m and up); the zoo's have a few million. The one sizing rule the
    analyzers' defaults share where the zoo's default would not fit the budget on a real model
    (induction's exact single-head sweep, retrieval's pruning curve, kv's budget grid): a cost
    rule, never a threshold on what a model shows."""
    return sum(p.numel() for p in model.hf.parameters()) >= LARGE_MODEL_PARAMS


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class Cost:
    """The measured cost of one analysis (see the module docstring for each field)."""

    seconds: float
    forward_passes: float
    tokens: int
    peak_memory_mb: float
    floor_forward_passes: Optional[float] = None
    floor_note: str = ""

    @property
    def ratio(self) -> Optional[float]:
        """forward_passes / floor_forward_passes (None until a floor is set)."""
        if not self.floor_forward_passes:
            return None
        return self.forward_passes / self.floor_forward_passes

    def with_floor(self, floor: float, note: str = "") -> "Cost":
        """The same cost with the analyzer's floor (and how it was derived)."""
        return replace(self, floor_forward_passes=float(floor), floor_note=note)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 2)
        out["forward_passes"] = round(self.forward_passes, 3)
        out["peak_memory_mb"] = round(self.peak_memory_mb, 1)
        out["ratio_to_floor"] = None if self.ratio is None else round(self.ratio, 3)
        return out


def _rss_peak_mb() -> float:
    """Peak resident set of this process in MB (VmHWM; ru_maxrss where /proc is absent)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_rss_peak() -> None:
    try:
        _CLEAR_REFS.write_text("5")  # Linux: reset the peak RSS to the current RSS
    except OSError:
        pass  # not allowed here: the process peak is reported


def _row_equivalents(input_len: int, past: int) -> float:
    return input_len / (past + input_len) if input_len else 0.0


class CostMeter:
    """Counts the forwards of one model's HF module; use through `measure_cost`."""

    def __init__(self, model):
        self.model = model
        self.forward_passes = 0.0
        self.tokens = 0
        self.cost: Optional[Cost] = None
        self._cuda = model.device.type == "cuda"

    def record(self, shape: tuple, past: int = 0) -> None:
        """One forward over ids of `shape` [batch, new tokens] after `past` cached positions."""
        batch, length = int(shape[0]), int(shape[1])
        self.forward_passes += batch * _row_equivalents(length, int(past))
        self.tokens += batch * length

    @contextmanager
    def watching(self) -> Iterator["CostMeter"]:
        self.model.meters.append(self)
        if self._cuda:
            torch.cuda.reset_peak_memory_stats(self.model.device)
        else:
            _reset_rss_peak()
        start = time.perf_counter()
        try:
            yield self
        finally:
            self.model.meters.remove(self)
            peak = (
                torch.cuda.max_memory_allocated(self.model.device) / 2**20
                if self._cuda
                else _rss_peak_mb()
            )
            self.cost = Cost(time.perf_counter() - start, self.forward_passes, self.tokens, peak)


@contextmanager
def measure_cost(model) -> Iterator[CostMeter]:
    """Count the cost of the work in the block; ``meter.cost`` holds it after the block."""
    meter = CostMeter(model)
    with meter.watching():
        yield meter


def peak_allocated_bytes(fn) -> "tuple[object, int]":
    """(fn(), the most bytes torch held in tensors allocated during the call).

    On CUDA: ``torch.cuda.max_memory_allocated`` above the allocation at the start. On CPU: the
    torch profiler's memory events (slower; for measurements, not for every call)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
        start = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out = fn()
        torch.cuda.synchronize()
        return out, torch.cuda.max_memory_allocated() - start
    from torch.profiler import ProfilerActivity, profile  # the profiler is only needed here

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    peak = held = 0
    for event in events:  # allocations count positive, frees negative
        held += event.nbytes()
        peak = max(peak, held)
    return out, peak
