"""coatcheck._bounded: the bounded FIFO map behind every per-request cache."""

from __future__ import annotations

import threading
from collections import OrderedDict

import pytest

from coatcheck._bounded import ADMIT_EVERY, BoundedCache, CacheInfo


def _fill(cache: BoundedCache[str, int], keys: list[str]) -> None:
    """Store each key as the sampled miss (the ADMIT_EVERY - 1 misses between skipped)."""
    for n, key in enumerate(keys):
        cache.store(key, n)
        for _ in range(ADMIT_EVERY - 1):
            cache.store("skipped", -1)


def test_one_miss_in_admit_every_is_kept_the_first_included() -> None:
    cache: BoundedCache[str, int] = BoundedCache(100)
    for i in range(3 * ADMIT_EVERY):
        cache.store(f"k{i}", i)
    assert list(cache._entries) == ["k0", f"k{ADMIT_EVERY}", f"k{2 * ADMIT_EVERY}"]
    assert cache.cache_info() == CacheInfo(hits=0, misses=3 * ADMIT_EVERY, maxsize=100,
                                           currsize=3)


def test_full_drops_the_oldest_first() -> None:
    cache: BoundedCache[str, int] = BoundedCache(3)
    _fill(cache, ["a", "b", "c", "d", "e"])
    assert list(cache._entries) == ["c", "d", "e"]
    assert len(cache) == 3


def test_a_key_already_held_is_replaced_in_place() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    _fill(cache, ["a", "b"])
    cache.store("a", 3)  # sampled, full, but "a" is held: no eviction
    assert dict(cache._entries) == {"a": 3, "b": 1}


def test_eviction_pops_the_front_of_an_ordered_dict() -> None:
    # O(1) eviction: OrderedDict.popitem(last=False), never a dict walk from the start.
    cache: BoundedCache[int, int] = BoundedCache(8)
    assert type(cache._entries) is OrderedDict


def test_size_zero_stores_nothing_and_negative_is_refused() -> None:
    off: BoundedCache[str, int] = BoundedCache(0)
    off.store("a", 1)
    assert len(off) == 0
    with pytest.raises(ValueError, match="0 \\(off\\) or more"):
        BoundedCache(-1)


def test_discard_and_clear() -> None:
    cache: BoundedCache[str, int] = BoundedCache(4)
    _fill(cache, ["a", "b"])
    cache.discard("a")
    cache.discard("missing")
    assert list(cache._entries) == ["b"]
    cache.clear()
    assert len(cache) == 0


def test_threads_never_raise_and_the_bound_holds() -> None:
    cache: BoundedCache[str, int] = BoundedCache(16)
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        try:
            for i in range(20_000):
                key = f"k{(seed * 7919 + i) % 97}"
                if cache._entries.get(key) is None:
                    cache.store(key, i)
                if i % 3 == 0:
                    cache.discard(key)
        except BaseException as exc:  # pragma: no cover - the failure being tested
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 16 + 8  # each thread may add one past the bound in a race
