"""The verified-token cache: honours good_until, bounded, counts, never raises under threads."""

from __future__ import annotations

import threading

from coatcheck._bounded import ADMIT_EVERY
from coatcheck.auth._cache import VerifiedCache


def test_entries_live_until_good_until() -> None:
    cache: VerifiedCache[str] = VerifiedCache(8)
    cache.put("t", "alice", 100.0)
    assert cache.get("t", 99.9) == "alice"
    assert cache.get("t", 100.0) is None
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 1)


def test_bounded_oldest_goes_first() -> None:
    cache: VerifiedCache[int] = VerifiedCache(3)
    for i in range(3 + ADMIT_EVERY + 1):
        cache.put(f"t{i}", i, 1e12)
    assert len(cache) == 3
    # t3 and t(3 + ADMIT_EVERY) were admitted, pushing out t0 and t1.
    assert cache.get("t0", 0) is None
    assert cache.get("t1", 0) is None
    kept = [i for i in range(3 + ADMIT_EVERY + 1) if cache.get(f"t{i}", 0) is not None]
    assert kept == [2, 3, 3 + ADMIT_EVERY]


def test_size_zero_turns_it_off() -> None:
    cache: VerifiedCache[int] = VerifiedCache(0)
    cache.put("t", 1, 1e12)
    assert cache.get("t", 0) is None


def test_threads_never_raise() -> None:
    cache: VerifiedCache[int] = VerifiedCache(4)
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        try:
            for i in range(20_000):
                token = f"t{(seed * 7 + i) % 16}"
                # Half the gets see an expired entry, so pops race with evictions.
                cache.get(token, float(i % 2) * 2e12)
                cache.put(token, i, 1e12)
        except BaseException as exc:  # pragma: no cover - the failure being tested
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 4 + 8  # each thread may add one past the bound in a race
