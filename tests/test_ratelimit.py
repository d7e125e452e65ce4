"""Login rate limiting: the counters in every store, the limiter's rules, across processes."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis

from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, RateLimited
from coatcheck.ratelimit import (
    AttemptCounter,
    Limit,
    LoginLimiter,
    normalize_ip,
    normalize_username,
)
from coatcheck.stores.memory import MemoryStore
from coatcheck.stores.postgres import PostgresStore
from coatcheck.stores.redis import RedisStore
from coatcheck.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

# One Redis prefix and one PostgreSQL table per run, so parallel runs never meet.
RUN = secrets.token_hex(4)
REDIS_PREFIX = f"cct:rl{RUN}:"
PG_TABLE = f"cct_rl_{RUN}"
STORES = ["memory", "sqlite", "redis", "redis-cluster", "redis-sentinel", "postgres"]
MIN = 60.0


def _pg(base: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}table={PG_TABLE}"


@pytest.fixture(scope="module", autouse=True)
def _cleanup(redis_url: str, postgres_url: str) -> Iterator[None]:
    yield

    async def clean() -> None:
        client = aioredis.Redis.from_url(redis_url)
        async for key in client.scan_iter(match=REDIS_PREFIX + "*", count=1000):
            await client.delete(key)
        await client.aclose()

    asyncio.run(clean())
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {PG_TABLE}")
        conn.execute(f"DROP TABLE IF EXISTS {PG_TABLE}_attempts")
        conn.execute("DELETE FROM coatcheck_schema_version WHERE name = %s", (PG_TABLE,))


@pytest.fixture
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, postgres_url: str
) -> str:
    """A URL that several store instances (or processes) open onto one backend."""
    kind: str = request.param
    if kind in ("redis-cluster", "redis-sentinel"):
        # The counters on a real Redis Cluster and Sentinel group (.ci/services).
        base = request.getfixturevalue(kind.replace("-", "_") + "_url")
        return f"{base}?prefix={REDIS_PREFIX}"
    return {
        "memory": "memory://",
        "sqlite": f"sqlite:///{tmp_path / 'attempts.db'}",
        "redis": f"{redis_url}?prefix={REDIS_PREFIX}",
        "postgres": _pg(postgres_url),
    }[kind]


def _open(url: str) -> Any:
    if url.startswith("memory:"):
        return MemoryStore()
    if url.startswith("sqlite:"):
        return SQLiteStore.from_url(url)
    if url.startswith("redis"):
        return RedisStore.from_url(url)
    return PostgresStore.from_url(url)


@pytest.fixture
async def opener(store_url: str) -> AsyncIterator[Callable[[], Any]]:
    """Opens store instances on the fixture's backend; closes them all afterwards."""
    opened: list[Any] = []
    shared = MemoryStore()  # a memory store is shared only within one instance

    def open_one() -> Any:
        store = shared if store_url.startswith("memory:") else _open(store_url)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


def _key() -> str:
    return secrets.token_hex(32)


# -- the counter, on every store -------------------------------------------------------------

_stores = pytest.mark.parametrize("store_url", STORES, indirect=True)


@_stores
async def test_every_store_is_an_attempt_counter(opener: Callable[[], Any]) -> None:
    assert isinstance(opener(), AttemptCounter)


@_stores
async def test_count_slides_with_each_failure_and_restarts_after_the_window(
    opener: Callable[[], Any], clock: FrozenClock
) -> None:
    store, key, now = opener(), _key(), clock.now()
    assert await store.peek_attempts(key, now) == (0, now)
    assert await store.hit_attempts(key, MIN, now) == (1, now + MIN)
    assert await store.hit_attempts(key, MIN, now + 10) == (2, now + 70)
    assert await store.peek_attempts(key, now + 20) == (2, now + 70)  # peeking never counts
    assert await store.peek_attempts(key, now + 20) == (2, now + 70)
    assert await store.peek_attempts(key, now + 70) == (0, now + 70)  # the window ran out
    assert await store.hit_attempts(key, MIN, now + 70) == (1, now + 130)


@_stores
async def test_clear_forgets_one_key_only(opener: Callable[[], Any], clock: FrozenClock) -> None:
    store, mine, other, now = opener(), _key(), _key(), clock.now()
    for _ in range(3):
        await store.hit_attempts(mine, MIN, now)
    await store.hit_attempts(other, MIN, now)
    await store.clear_attempts(mine)
    await store.clear_attempts(_key())  # unknown: nothing to do
    assert await store.peek_attempts(mine, now) == (0, now)
    assert await store.peek_attempts(other, now) == (1, now + MIN)


@_stores
async def test_spent_counters_are_pruned_with_sessions(
    opener: Callable[[], Any], clock: FrozenClock
) -> None:
    store, spent, live, now = opener(), _key(), _key(), clock.now()
    await store.hit_attempts(spent, 10.0, now)
    await store.hit_attempts(live, 10 * MIN, now)
    await store.delete_expired(now + 30.0)
    assert await store.peek_attempts(live, now + 30.0) == (1, now + 10 * MIN)
    # Gone from the backend, not only judged spent (Redis lets its TTL do this).
    assert await store.peek_attempts(spent, now - 1.0) == (
        (1, now + 10.0) if isinstance(store, RedisStore) else (0, now - 1.0)
    )


@_stores
async def test_two_instances_share_and_lose_no_hit(
    opener: Callable[[], Any], clock: FrozenClock
) -> None:
    # Two instances, two connections (pools): what two app processes would have.
    first, second, key, now = opener(), opener(), _key(), clock.now()
    hits = 30
    counts = await asyncio.gather(
        *((first if i % 2 else second).hit_attempts(key, MIN, now) for i in range(hits))
    )
    assert sorted(count for count, _ in counts) == list(range(1, hits + 1))
    assert await second.peek_attempts(key, now) == (hits, now + MIN)
    await first.clear_attempts(key)
    assert await second.peek_attempts(key, now) == (0, now)


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from coatcheck.clock import FrozenClock
    from coatcheck.ratelimit import LoginLimiter
    from coatcheck.stores import open_store

    async def main() -> None:
        store = open_store(sys.argv[1])
        limiter = LoginLimiter(store, namespace=sys.argv[2], clock=FrozenClock(float(sys.argv[3])))
        for _ in range(5):
            await limiter.failed("alice", "198.51.100.7")
        await store.close()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(
    "store_url", ["sqlite", "redis", "redis-cluster", "redis-sentinel", "postgres"], indirect=True
)
async def test_a_lock_earned_in_another_process_holds_here(
    store_url: str, opener: Callable[[], Any], clock: FrozenClock
) -> None:
    namespace = f"t{secrets.token_hex(6)}"
    store = opener()
    limiter = LoginLimiter(store, namespace=namespace, clock=clock)
    await limiter.check("alice", "198.51.100.7")
    if isinstance(store, PostgresStore):
        await store.open()  # create the schema here, not in a race with the child
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, store_url, namespace, repr(clock.now())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with pytest.raises(RateLimited) as caught:
        await limiter.check("ALICE", "203.0.113.9")  # same account, another address
    assert caught.value.retry_after == 1.0


# -- the limiter's rules, table-driven, on every store ---------------------------------------

FAIL, OK, WAIT, ALLOWED, BLOCKED = "fail", "ok", "wait", "allowed", "blocked"
A, B = "198.51.100.7", "203.0.113.9"

# Each step: (FAIL | OK, user, ip[, times]), (WAIT, seconds), (ALLOWED, user, ip),
# (BLOCKED, user, ip, retry_after). Limits: 5 per account, 8 per IP, 15-minute
# windows, back-off 1 s doubling up to 60 s.
CASES: dict[str, list[tuple[Any, ...]]] = {
    "four failures do not lock": [(FAIL, "alice", A, 4), (ALLOWED, "alice", A)],
    "the fifth locks for one second": [
        (FAIL, "alice", A, 5),
        (BLOCKED, "alice", A, 1.0),
        (BLOCKED, "alice", B, 1.0),  # the account is locked from everywhere
        (ALLOWED, "bob", A),
        (WAIT, 1.0),
        (ALLOWED, "alice", A),
    ],
    "each further failure doubles the wait": [
        (FAIL, "alice", A, 5),
        (WAIT, 1.0),
        (FAIL, "alice", A),
        (BLOCKED, "alice", A, 2.0),
        (WAIT, 2.0),
        (FAIL, "alice", A),
        (BLOCKED, "alice", A, 4.0),
        (WAIT, 3.5),
        (BLOCKED, "alice", A, 1.0),  # 0.5 s left, rounded up for Retry-After
        (WAIT, 0.5),
        (ALLOWED, "alice", A),
    ],
    "the wait is capped": [(FAIL, "alice", A, 12), (BLOCKED, "alice", A, 60.0)],
    "a quiet window restarts the count": [
        (FAIL, "alice", A, 5),
        (WAIT, 15 * MIN),
        (ALLOWED, "alice", A),
        (FAIL, "alice", A),
        (ALLOWED, "alice", A),
    ],
    "the window slides with each failure": [
        (FAIL, "alice", A, 4),
        (WAIT, 14 * MIN),
        (FAIL, "alice", A),
        (BLOCKED, "alice", A, 1.0),
    ],
    "a good password clears the account": [
        (FAIL, "alice", A, 4),
        (OK, "alice", A),
        (FAIL, "alice", A),
        (ALLOWED, "alice", A),
    ],
    "a good password keeps the address's count": [
        (FAIL, "alice", A, 4),
        (OK, "alice", A),
        (FAIL, "bob", A, 4),
        (BLOCKED, "carol", A, 1.0),  # 8 failures from A, whoever they were for
        (ALLOWED, "carol", B),
        (ALLOWED, "alice", B),
    ],
    "case, width and spacing share one account": [
        (FAIL, "Alice", A, 2),
        (FAIL, " ALICE ", A, 2),
        (FAIL, "\uff41lice", A),  # fullwidth a: NFKC makes it "a"
        (BLOCKED, "alice", B, 1.0),
    ],
    "an IPv6 /64 is one address": [
        *[(FAIL, f"user{i}", f"2001:db8::{i:x}") for i in range(8)],
        (BLOCKED, "zed", "2001:db8::ffff", 1.0),
        (ALLOWED, "zed", "2001:db8:0:1::1"),
    ],
    "an IPv4-mapped address is the IPv4 address": [
        *[(FAIL, f"user{i}", "::ffff:198.51.100.7") for i in range(8)],
        (BLOCKED, "zed", A, 1.0),
    ],
    "without an address only the account counts": [
        *[(FAIL, f"user{i}", "") for i in range(8)],
        (ALLOWED, "zed", ""),
        (FAIL, "zed", "", 5),
        (BLOCKED, "zed", A, 1.0),
    ],
}


def _limiter(store: Any, clock: FrozenClock, **options: Any) -> LoginLimiter:
    return LoginLimiter(
        store,
        per_account=Limit(failures=5, window=timedelta(minutes=15)),
        per_ip=Limit(failures=8, window=timedelta(minutes=15)),
        base_delay=timedelta(seconds=1),
        max_delay=timedelta(seconds=60),
        namespace=f"t{secrets.token_hex(6)}",  # fresh counters on shared backends
        clock=clock,
        **options,
    )


@_stores
@pytest.mark.parametrize("steps", list(CASES.values()), ids=list(CASES))
async def test_limiter_rules(
    opener: Callable[[], Any], clock: FrozenClock, steps: list[tuple[Any, ...]]
) -> None:
    limiter = _limiter(opener(), clock)
    for step in steps:
        kind = step[0]
        if kind == FAIL:
            for _ in range(step[3] if len(step) > 3 else 1):
                await limiter.failed(step[1], step[2])
        elif kind == OK:
            await limiter.succeeded(step[1], step[2])
        elif kind == WAIT:
            clock.advance(step[1])
        elif kind == ALLOWED:
            await limiter.check(step[1], step[2])
        else:
            with pytest.raises(RateLimited) as caught:
                await limiter.check(step[1], step[2])
            assert caught.value.retry_after == step[3], step
            assert caught.value.code == "rate_limited"


# -- no enumeration, no clear text -----------------------------------------------------------


async def test_unknown_and_existing_accounts_get_the_same_answer(clock: FrozenClock) -> None:
    # The limiter cannot tell them apart: only the submitted name and address count.
    limiter = _limiter(MemoryStore(), clock)
    answers = []
    for name in ("alice", "no-such-user"):
        for _ in range(6):
            await limiter.failed(name, A)
        with pytest.raises(RateLimited) as caught:
            await limiter.check(name, B)
        answers.append((caught.value.code, str(caught.value), caught.value.retry_after))
    assert answers[0] == answers[1]


@pytest.mark.parametrize("store_url", ["redis"], indirect=True)
async def test_counter_keys_hold_no_name_or_address(
    opener: Callable[[], Any], clock: FrozenClock, redis_url: str
) -> None:
    memory = MemoryStore()
    plain = _limiter(memory, clock)
    await plain.failed("alice@example.com", "198.51.100.7")
    keyed = _limiter(memory, clock, secret=secrets.token_bytes(32))
    await keyed.failed("alice@example.com", "198.51.100.7")
    keys = list(memory._attempts)
    assert len(keys) == 4
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys)
    redis_store = opener()
    await _limiter(redis_store, clock).failed("alice@example.com", "198.51.100.7")
    client = aioredis.Redis.from_url(redis_url)
    stored = [k async for k in client.scan_iter(match=REDIS_PREFIX + "a:*")]
    await client.aclose()
    assert stored
    for key in [*keys, *(k.decode() for k in stored)]:
        for clear_text in ("alice", "example", "198.51"):
            assert clear_text not in key


async def test_a_secret_changes_the_keys_and_stays_out_of_repr(clock: FrozenClock) -> None:
    memory = MemoryStore()
    secret = "s3cr3t-value-that-is-long-enough-32b"
    limiters = [
        LoginLimiter(memory, clock=clock),
        LoginLimiter(memory, clock=clock, secret=secret),
        LoginLimiter(memory, clock=clock, namespace="reset"),
    ]
    for limiter in limiters:
        await limiter.failed("alice", A)
    assert len(memory._attempts) == 6  # account and address, three ways
    assert secret not in repr(limiters[1])


# -- configuration and normalisation ---------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"base_delay": timedelta(0)},
        {"base_delay": timedelta(seconds=10), "max_delay": timedelta(seconds=5)},
        {"max_delay": timedelta(minutes=16)},  # longer than the default 15-minute window
        {"per_ip": Limit(failures=50, window=timedelta(minutes=5))},
        {"namespace": ""},
        {"namespace": "a\x00b"},
        {"namespace": "x" * 33},
    ],
)
def test_bad_configuration_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        LoginLimiter(MemoryStore(), **options)


@pytest.mark.parametrize(
    "options", [{"failures": 0}, {"failures": 3, "window": timedelta(0)}]
)
def test_bad_limit_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Limit(**options)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice", "alice"),
        ("  ALICE\t", "alice"),
        ("Stra\u00dfe", "strasse"),
        ("\uff21\uff4c\uff49\uff43\uff45", "alice"),  # fullwidth
        ("", ""),
    ],
)
def test_normalize_username(raw: str, expected: str) -> None:
    assert normalize_username(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("198.51.100.7", "198.51.100.7"),
        (" 198.51.100.7 ", "198.51.100.7"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:DB8:0:0:ffff::1", "2001:db8::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("not-an-ip", "not-an-ip"),
        ("UNKNOWN", "unknown"),
    ],
)
def test_normalize_ip(raw: str, expected: str) -> None:
    assert normalize_ip(raw) == expected


def test_delay_doubles_and_caps() -> None:
    limiter = LoginLimiter(MemoryStore(), max_delay=timedelta(minutes=15))
    table = {4: 0.0, 5: 1.0, 6: 2.0, 7: 4.0, 14: 512.0, 15: 900.0, 10_000: 900.0}
    assert {n: limiter.delay(n, 5) for n in table} == table
