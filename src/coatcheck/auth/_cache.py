"""A bounded cache of tokens that already verified, shared by the token strategies.

It saves the signature check only: an entry lives no longer than the token's own
validity (its ``exp``, or earlier when the strategy wants to renew), and a key
rotation builds a new strategy, so a new cache. Every caller still runs its own
revocation checks. Safe under threads (WSGI servers): a race may drop an entry or
verify a token twice, never raise.
"""

from __future__ import annotations

import contextlib
from typing import Generic, TypeVar

__all__ = ["VerifiedCache"]

T = TypeVar("T")


class VerifiedCache(Generic[T]):
    """``token -> (value, good_until)``, at most ``size`` entries (0 turns it off)."""

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int) -> None:
        self._entries: dict[str, tuple[T, float]] = {}
        self._size = size

    def get(self, token: str, now: float) -> T | None:
        hit = self._entries.get(token)
        if hit is None:
            return None
        if now < hit[1]:
            return hit[0]
        self._entries.pop(token, None)
        return None

    def put(self, token: str, value: T, good_until: float) -> None:
        if not self._size:
            return
        entries = self._entries
        if len(entries) >= self._size:
            # Drop the oldest entry (dicts keep insertion order): bounded memory.
            # Another thread may have dropped it first: that is fine.
            with contextlib.suppress(KeyError, StopIteration, RuntimeError):
                del entries[next(iter(entries))]
        entries[token] = (value, good_until)

    def __len__(self) -> int:
        return len(self._entries)
