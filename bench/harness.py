"""Timing machinery shared by the bench sections: interleaved rounds, medians, progress.

The machine is noisy (a shared 2-vCPU guest whose speed drifts 20-60% between runs), so
every comparison is made inside one run: candidates run round-robin, each op batched to a
fixed wall time, the order rotated each round, and the median per candidate is kept.
Ratios between candidates of the same run are the stable quantity.

Every loop here is bounded twice: by a count (rounds, ops per batch) and by a deadline.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_BATCH",
    "Budget",
    "Progress",
    "Samples",
    "Unavailable",
    "interleave_async",
    "interleave_sync",
    "median",
]

#: No batch runs more than this many operations, whatever the calibration says.
MAX_BATCH = 200_000


class Unavailable(Exception):
    """A variant that cannot run here yet (its coatcheck module has not landed)."""


@dataclass(frozen=True, slots=True)
class Budget:
    """How long one group of interleaved candidates may take."""

    rounds: int
    batch_seconds: float
    group_seconds: float
    min_rounds: int = 3


@dataclass(slots=True)
class Samples:
    """Per-round measurements of one candidate, in microseconds per operation."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    ops: int = 0

    @property
    def wall_median(self) -> float:
        return median(self.wall)

    @property
    def cpu_median(self) -> float:
        return median(self.cpu)

    def to_json(self) -> dict[str, Any]:
        return {"wall_us": self.wall, "cpu_us": self.cpu, "ops_per_batch": self.ops}


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Progress:
    """Progress lines on stderr with the elapsed time, so a long run shows it is alive."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, message: str) -> None:
        print(f"[{self.elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)


def _calibrate_sync(fn: Callable[[], object], seconds: float) -> int:
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in itertools.repeat(None, n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= seconds / 5 or n >= MAX_BATCH:
            break
        n *= 4
    return max(1, min(MAX_BATCH, int(n * seconds / max(dt, 1e-9))))


def _rotated(names: Sequence[str], r: int) -> list[str]:
    k = r % len(names) if names else 0
    return [*names[k:], *names[:k]]


def interleave_sync(
    candidates: Mapping[str, Callable[[], object]],
    budget: Budget,
    *,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, Samples]:
    """Run each candidate in batches, round-robin, rotating the order every round.

    The garbage collector is off inside a batch (as ``timeit`` does) and a collection runs
    before each batch, so one candidate's garbage is not paid by the next.
    """
    names = list(candidates)
    if not names:
        return {}
    deadline = time.monotonic() + budget.group_seconds
    sizes = {name: _calibrate_sync(candidates[name], budget.batch_seconds) for name in names}
    result = {name: Samples(ops=sizes[name]) for name in names}
    for r in range(budget.rounds):
        if r >= budget.min_rounds and time.monotonic() > deadline:
            break
        for name in _rotated(names, r):
            fn, n = candidates[name], sizes[name]
            gc.collect()
            gc.disable()
            try:
                c0 = time.process_time_ns()
                t0 = time.perf_counter_ns()
                for _ in itertools.repeat(None, n):
                    fn()
                t1 = time.perf_counter_ns()
                c1 = time.process_time_ns()
            finally:
                gc.enable()
            result[name].wall.append((t1 - t0) / n / 1000)
            result[name].cpu.append((c1 - c0) / n / 1000)
        if on_round is not None:
            on_round(r)
    return result


async def _calibrate_async(fn: Callable[[], Awaitable[object]], seconds: float) -> int:
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in itertools.repeat(None, n):
            await fn()
        dt = time.perf_counter() - t0
        if dt >= seconds / 5 or n >= MAX_BATCH:
            break
        n *= 4
    return max(1, min(MAX_BATCH, int(n * seconds / max(dt, 1e-9))))


async def interleave_async(
    candidates: Mapping[str, Callable[[], Awaitable[object]]],
    budget: Budget,
    *,
    on_round: Callable[[int], None] | None = None,
    collect_garbage: bool = False,
) -> dict[str, Samples]:
    """The async twin of :func:`interleave_sync`: one awaited call per operation.

    ``cpu`` is this process's CPU time (all threads), so for a network store it is the
    client's cost, and ``wall`` adds the wait for the server. With ``collect_garbage``
    the collector stays on inside a batch, as in a server, so code that allocates more
    pays for its collections (a collection still runs before each batch).
    """
    names = list(candidates)
    if not names:
        return {}
    deadline = time.monotonic() + budget.group_seconds
    sizes = {name: await _calibrate_async(candidates[name], budget.batch_seconds) for name in names}
    result = {name: Samples(ops=sizes[name]) for name in names}
    for r in range(budget.rounds):
        if r >= budget.min_rounds and time.monotonic() > deadline:
            break
        for name in _rotated(names, r):
            fn, n = candidates[name], sizes[name]
            gc.collect()
            if not collect_garbage:
                gc.disable()
            try:
                c0 = time.process_time_ns()
                t0 = time.perf_counter_ns()
                for _ in itertools.repeat(None, n):
                    await fn()
                t1 = time.perf_counter_ns()
                c1 = time.process_time_ns()
            finally:
                gc.enable()
            result[name].wall.append((t1 - t0) / n / 1000)
            result[name].cpu.append((c1 - c0) / n / 1000)
        if on_round is not None:
            on_round(r)
    return result
