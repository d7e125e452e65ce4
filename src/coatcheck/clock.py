"""The one place that reads the time.

Everything time-dependent takes a ``clock``; tests pass a :class:`FrozenClock` and
advance it instead of sleeping. Times are POSIX seconds as ``float``: cheap to compare
on the hot path and exactly what JWT ``exp``/``iat`` claims hold.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "FrozenClock", "SystemClock"]


class Clock(Protocol):
    """Something that tells the current time in POSIX seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The real wall clock."""

    __slots__ = ()

    #: ``time.time`` itself: reading the clock on the per-request path runs no
    #: Python frame.
    now = staticmethod(time.time)

    def __repr__(self) -> str:
        return "SystemClock()"


class FrozenClock:
    """A clock that only moves when told to (for tests and simulations)."""

    __slots__ = ("_now",)

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self._now = float(now)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (negative moves it back)."""
        self._now += seconds

    def set(self, now: float) -> None:
        self._now = float(now)

    def __repr__(self) -> str:
        return f"FrozenClock({self._now!r})"
