"""The one structure behind every per-request cache: a bounded map, oldest out first.

Each cache on the request path (verified tokens, verified JWS headers, decoded store
records) is one of these with its own rule for when an entry answers. What they share:

* at most ``maxsize`` entries; storing past that drops the oldest entry in O(1)
  (``OrderedDict.popitem(last=False)``: a plain dict's ``next(iter(d))`` walks past
  every slot an earlier deletion left, about 4 µs per eviction at 4096 entries);
* first in, first out: a hit changes nothing, so it costs one lookup;
* once full, only every ``ADMIT_EVERY``-th miss is stored. When there are more users
  than entries, storing every miss would only churn the cache (allocating, evicting,
  pushing hot memory out of the CPU caches) for entries evicted before their next use;
  a miss then costs a lookup and a counter. Popular keys still get in within a few
  of their own requests, and a sampled entry stays long enough to be reused, so skewed
  traffic hits as often as with every miss stored, and uniform traffic over more
  users than entries hits ``maxsize / users`` of the time instead of never;
* ``maxsize=0`` turns the cache off: it stores nothing (owners skip it altogether);
* ``hits`` and ``misses`` counters (a miss is counted when an entry is stored), so
  an operator can see whether the cache pays for itself and size it;
* safe under threads (WSGI servers): each step is one atomic dict operation, so a
  race may drop an entry, store one twice or miscount, never raise or grow unbounded.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, NamedTuple, TypeVar

__all__ = ["ADMIT_EVERY", "BoundedCache", "CacheInfo"]

#: Once a cache is full, one miss in this many is stored (see the module docstring).
ADMIT_EVERY = 16

K = TypeVar("K")
V = TypeVar("V")


class CacheInfo(NamedTuple):
    """Counters of one cache, like :func:`functools.lru_cache`'s ``cache_info()``."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class BoundedCache(Generic[K, V]):
    """``key -> value``, at most ``maxsize`` entries, the oldest dropped first.

    Subclasses add the rule for when a stored value answers; they read
    ``self._entries`` directly and count ``self.hits`` themselves on the hot path.

    :raises ValueError: when ``maxsize`` is negative.
    """

    __slots__ = ("_entries", "_maxsize", "_skip", "hits", "misses")

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError("a cache size is 0 (off) or more")
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._maxsize = maxsize
        self._skip = 0
        self.hits = 0
        self.misses = 0

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def store(self, key: K, value: V) -> None:
        """Count a miss and keep ``value`` under ``key`` (once full, one miss in
        ``ADMIT_EVERY``, dropping the oldest entry)."""
        self.misses += 1
        entries = self._entries
        if len(entries) >= self._maxsize and key not in entries:
            skip = self._skip
            if skip > 0 or not self._maxsize:
                self._skip = skip - 1
                return
            self._skip = ADMIT_EVERY - 1
            # Not contextlib.suppress: it would cost more than the eviction itself.
            try:  # noqa: SIM105
                entries.popitem(last=False)
            except KeyError:  # another thread emptied it first
                pass
        entries[key] = value

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self.hits, self.misses, self._maxsize, len(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
