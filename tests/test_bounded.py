"""coatcheck._bounded: the bounded FIFO map behind every per-request cache."""

from __future__ import annotations

import threading
from collections import OrderedDict

import pytest

from coatcheck._bounded import ADMIT_EVERY, BoundedCache, CacheInfo


def test_keeps_everything_until_full() -> None:
    cache: BoundedCache[str, int] = BoundedCache(4)
    for i in range(4):
        cache.store(f"k{i}", i)
    assert dict(cache._entries) == {"k0": 0, "k1": 1, "k2": 2, "k3": 3}
    assert cache.cache_info() == CacheInfo(hits=0, misses=4, maxsize=4, currsize=4)


def test_once_full_admits_one_miss_in_admit_every_dropping_the_oldest() -> None:
    cache: BoundedCache[str, int] = BoundedCache(3)
    for i in range(3):
        cache.store(f"k{i}", i)
    cache.store("first", 10)  # admitted: the oldest goes
    assert list(cache._entries) == ["k1", "k2", "first"]
    for i in range(ADMIT_EVERY - 1):
        cache.store(f"skipped{i}", i)  # counted, not kept
    assert list(cache._entries) == ["k1", "k2", "first"]
    cache.store("next", 11)
    assert list(cache._entries) == ["k2", "first", "next"]
    assert cache.misses == 3 + 1 + (ADMIT_EVERY - 1) + 1
    assert len(cache) == 3


def test_a_key_already_held_is_replaced_in_place() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.store("a", 1)
    cache.store("b", 2)
    cache.store("a", 3)  # full, but "a" is held: no eviction, no sampling
    assert dict(cache._entries) == {"a": 3, "b": 2}


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
    cache.store("a", 1)
    cache.store("b", 2)
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
