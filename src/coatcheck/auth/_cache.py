"""A bounded cache of tokens that already verified, shared by the token strategies.

It saves the signature check only: an entry lives no longer than the token's own
validity (its ``exp``, or earlier when the strategy wants to renew), and a key
rotation builds a new strategy, so a new cache. Every caller still runs its own
revocation checks. Size, eviction, counters and thread safety: see
:mod:`coatcheck._bounded`.
"""

from __future__ import annotations

from typing import TypeVar

from .._bounded import BoundedCache

__all__ = ["DEFAULT_SIZE", "VerifiedCache"]

T = TypeVar("T")

#: Tokens a strategy remembers by default. A hit saves a whole verify (several µs); a
#: miss costs one lookup and one O(1) store.
DEFAULT_SIZE = 4096


class VerifiedCache(BoundedCache[str, tuple[T, float]]):
    """``token -> (value, good_until)``, at most ``maxsize`` entries (0 turns it off)."""

    __slots__ = ()

    def get(self, token: str, now: float) -> T | None:
        hit = self._entries.get(token)
        if hit is None:
            return None
        if now < hit[1]:
            self.hits += 1
            return hit[0]
        self._entries.pop(token, None)
        return None

    def put(self, token: str, value: T, good_until: float) -> None:
        self.store(token, (value, good_until))
