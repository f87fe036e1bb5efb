"""The training rows of every step, as a pure function of ``(recipe seed, step)``.

``make_step_batch`` draws step ``t``'s rows from the recipe's mixture with a generator seeded by
``(seed, t)``; repeated-data recipes replace a fraction of the rows by rows of a fixed
:class:`RepeatPool`.  :class:`BatchStream` builds the same batches ahead in worker processes,
which changes only the speed.  Because a batch depends on nothing but the step, an interrupted
run resumed from its last state sees exactly the data of the uninterrupted run.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.pool

import numpy as np
import torch

from .recipes import Recipe
from .world import World


class RepeatPool:
    """Rows of a small fixed subset, repeated many times (repeated-data organisms)."""

    def __init__(self, world: World, r: Recipe):
        rng = np.random.default_rng([r.seed, 424242])
        self.rows, _ = world.make_batch(rng, r.mixture, r.repeat_pool, r.seq_len)


def make_step_batch(world: World, r: Recipe, step: int, pool: RepeatPool | None):
    """The training rows of step ``step``: a pure function of ``(r.seed, step)``."""
    rng = np.random.default_rng([r.seed, step, 7])
    x, counts = world.make_batch(rng, r.mixture, r.batch_size, r.seq_len)
    if pool is not None and r.repeat_fraction > 0:
        m = rng.random(r.batch_size) < r.repeat_fraction
        if m.any():
            x[m] = pool.rows[rng.integers(len(pool.rows), size=int(m.sum()))]
    return torch.from_numpy(x), counts


class BatchStream:
    """Training batches in step order, built ahead by ``workers`` processes (0: inline).

    Batches are pure functions of the step, so prefetching changes nothing but speed;
    at most ``ahead`` batches are in flight (bounded memory)."""

    def __init__(
        self, world: World, r: Recipe, pool: RepeatPool | None, workers: int, ahead: int = 32
    ):
        self.world, self.r, self.pool, self.ahead = world, r, pool, ahead
        self.procs = None
        if workers > 0:
            self.procs = mp.get_context("spawn").Pool(
                workers, initializer=_worker_init, initargs=(r,)
            )
        self.pending: dict[int, mp.pool.AsyncResult] = {}

    def get(self, step: int, last: int):
        if self.procs is None:
            return make_step_batch(self.world, self.r, step, self.pool)
        for s in range(step, min(step + self.ahead, last)):
            if s not in self.pending:
                self.pending[s] = self.procs.apply_async(_worker_batch, (s,))
        return self.pending.pop(step).get()

    def close(self) -> None:
        if self.procs is not None:
            self.procs.terminate()
            self.procs = None


_WORKER: dict = {}


def _worker_init(r: Recipe) -> None:
    torch.set_num_threads(1)
    world = World(r.world_seed)
    _WORKER.update(world=world, r=r, pool=RepeatPool(world, r) if r.repeat_fraction > 0 else None)


def _worker_batch(step: int):
    return make_step_batch(_WORKER["world"], _WORKER["r"], step, _WORKER["pool"])


_RepeatPool = RepeatPool  # the old private name, kept until every importer uses RepeatPool
