"""Login rate limiting: the counters in every store, the limiter's rules, across processes.

Issue 12, item 2: an attempt is reserved before its password is checked, in one atomic
store operation, so bursts (200 at once, in 3 processes) get exactly the limit through.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
    AttemptRule,
    Limit,
    LoginLimiter,
    normalize_ip,
    normalize_username,
)
from coatcheck.stores import open_store
from coatcheck.stores.memory import MemoryStore
from coatcheck.stores.postgres import PostgresStore
from coatcheck.stores.redis import RedisStore
from coatcheck.stores.sqlite import SQLiteStore
from coatcheck.sync import run_sync

pytestmark = pytest.mark.anyio

# One Redis prefix and one PostgreSQL table per run, so parallel runs never meet.
RUN = secrets.token_hex(4)
REDIS_PREFIX = f"cct:rl{RUN}:"
PG_TABLE = f"cct_rl_{RUN}"
STORES = ["memory", "sqlite", "redis", "redis-cluster", "redis-sentinel", "postgres"]
MIN = 60.0
# A rule that never locks, to watch counting alone; and the demo's account rule.
OPEN = AttemptRule(1_000_000, MIN, 1.0, MIN)
FIVE = AttemptRule(5, 15 * MIN, 1.0, 15 * MIN)


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
async def test_count_slides_with_each_attempt_and_restarts_after_the_window(
    opener: Callable[[], Any], clock: FrozenClock
) -> None:
    store, key, now = opener(), _key(), clock.now()
    rule = AttemptRule(1_000_000, MIN, 1.0, MIN)
    assert await store.peek_attempts(key, now) == (0, now)
    assert await store.reserve_attempt(key, rule, now) == 0.0
    assert await store.peek_attempts(key, now) == (1, now + MIN)
    assert await store.reserve_attempt(key, rule, now + 10) == 0.0
    assert await store.peek_attempts(key, now + 20) == (2, now + 70)  # peeking never counts
    assert await store.peek_attempts(key, now + 20) == (2, now + 70)
    assert await store.peek_attempts(key, now + 70) == (0, now + 70)  # the window ran out
    assert await store.reserve_attempt(key, rule, now + 70) == 0.0
    assert await store.peek_attempts(key, now + 70) == (1, now + 130)


@_stores
async def test_reserve_refuses_while_the_rule_says_wait_and_counts_nothing(
    opener: Callable[[], Any], clock: FrozenClock
) -> None:
    store, key, now = opener(), _key(), clock.now()
    for _ in range(5):
        assert await store.reserve_attempt(key, FIVE, now) == 0.0
    # Five attempts: the next waits 1 s after the latest, exactly as the rule computes.
    for later in (0.0, 0.25, 0.5, 0.999):
        assert await store.reserve_attempt(key, FIVE, now + later) == FIVE.wait(
            5, now + 15 * MIN, now + later
        )
    assert await store.peek_attempts(key, now + 0.5) == (5, now + 15 * MIN)  # not counted
    assert await store.reserve_attempt(key, FIVE, now + 1.0) == 0.0  # the 6th, after 1 s
    assert await store.reserve_attempt(key, FIVE, now + 2.5) == pytest.approx(0.5)  # 2 s now
    assert await store.reserve_attempt(key, FIVE, now + 3.0) == 0.0
    # 40 attempts in: the wait is capped at max_delay, never an overflow.
    capped = AttemptRule(5, 15 * MIN, 1.0, 30.0)
    other = _key()
    for i in range(40):
        assert await store.reserve_attempt(other, capped, now + 30.0 * i) == 0.0
    assert await store.reserve_attempt(other, capped, now + 30.0 * 39) == 30.0


@_stores
async def test_release_takes_one_attempt_back(
    opener: Callable[[], Any], clock: FrozenClock
) -> None:
    store, key, now = opener(), _key(), clock.now()
    for _ in range(3):
        await store.reserve_attempt(key, OPEN, now)
    await store.release_attempt(key)
    assert await store.peek_attempts(key, now) == (2, now + MIN)
    for _ in range(4):
        await store.release_attempt(key)  # never below zero
    assert (await store.peek_attempts(key, now))[0] == 0
    await store.release_attempt(_key())  # unknown: nothing to do
    assert await store.reserve_attempt(key, OPEN, now) == 0.0
    assert (await store.peek_attempts(key, now))[0] == 1


@_stores
async def test_clear_forgets_one_key_only(opener: Callable[[], Any], clock: FrozenClock) -> None:
    store, mine, other, now = opener(), _key(), _key(), clock.now()
    for _ in range(3):
        await store.reserve_attempt(mine, OPEN, now)
    await store.reserve_attempt(other, OPEN, now)
    await store.clear_attempts(mine)
    await store.clear_attempts(_key())  # unknown: nothing to do
    assert await store.peek_attempts(mine, now) == (0, now)
    assert await store.peek_attempts(other, now) == (1, now + MIN)


@_stores
async def test_spent_counters_are_pruned_with_sessions(
    opener: Callable[[], Any], clock: FrozenClock
) -> None:
    store, spent, live, now = opener(), _key(), _key(), clock.now()
    await store.reserve_attempt(spent, AttemptRule(5, 10.0, 1.0, 10.0), now)
    await store.reserve_attempt(live, AttemptRule(5, 10 * MIN, 1.0, 10.0), now)
    await store.delete_expired(now + 30.0)
    assert await store.peek_attempts(live, now + 30.0) == (1, now + 10 * MIN)
    # Gone from the backend, not only judged spent (Redis lets its TTL do this).
    assert await store.peek_attempts(spent, now - 1.0) == (
        (1, now + 10.0) if isinstance(store, RedisStore) else (0, now - 1.0)
    )


@_stores
async def test_two_instances_share_and_lose_no_attempt(
    opener: Callable[[], Any], clock: FrozenClock
) -> None:
    # Two instances, two connections (pools): what two app processes would have.
    first, second, key, now = opener(), opener(), _key(), clock.now()
    hits = 30
    waits = await asyncio.gather(
        *((first if i % 2 else second).reserve_attempt(key, OPEN, now) for i in range(hits))
    )
    assert waits == [0.0] * hits
    assert await second.peek_attempts(key, now) == (hits, now + MIN)
    await first.clear_attempts(key)
    assert await second.peek_attempts(key, now) == (0, now)


@_stores
async def test_a_burst_of_200_reserves_exactly_the_limit(
    opener: Callable[[], Any], clock: FrozenClock
) -> None:
    # Regression (issue 12, item 2): 200 guesses at once used to be checked against the
    # count from before the burst, so all 200 got through.
    first, second, key, now = opener(), opener(), _key(), clock.now()
    waits = await asyncio.gather(
        *((first if i % 2 else second).reserve_attempt(key, FIVE, now) for i in range(200))
    )
    assert sorted(waits).count(0.0) == 5
    assert all(wait > 0 for wait in waits if wait != 0.0)
    assert await first.peek_attempts(key, now) == (5, now + 15 * MIN)


def _sync_url(kind: str, tmp_path: Path, redis_url: str, postgres_url: str) -> str:
    return {
        "sqlite": f"sqlite:///{tmp_path / 'sync.db'}",
        "redis": f"{redis_url}?prefix={REDIS_PREFIX}",
        "postgres": _pg(postgres_url),
    }[kind]


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
def test_a_burst_from_many_threads_on_the_sync_stores(
    kind: str, tmp_path: Path, redis_url: str, postgres_url: str, clock: FrozenClock
) -> None:
    # WSGI: open_store(url, sync=True), run_sync from 20 threads, 200 sign-ins at once.
    url = "memory://" if kind == "memory" else _sync_url(kind, tmp_path, redis_url, postgres_url)
    stores = [open_store(url, sync=True) for _ in range(2)]
    if kind == "memory":
        stores = [stores[0], stores[0]]
    # Two limiters under one namespace, as two processes of one app would have.
    namespace = f"t{secrets.token_hex(6)}"
    limiters = [LoginLimiter(s, namespace=namespace, clock=clock) for s in stores]

    def sign_in(i: int) -> bool:
        try:
            attempt = run_sync(limiters[i % 2].reserve("alice", f"198.51.100.{i % 250}"))
        except RateLimited:
            return False
        assert attempt is not None
        return True

    for store in stores:
        # Connected before the burst: SQLiteStore's first use from 20 threads at once
        # would open (and migrate) 20 connections, a race of its own.
        run_sync(store.peek_attempts("warm-up", clock.now()))
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            granted = list(pool.map(sign_in, range(200)))
        assert granted.count(True) == 5
    finally:
        for store in {id(s): s for s in stores}.values():
            run_sync(store.close())


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
            async with limiter.attempt("alice", "198.51.100.7"):
                pass  # a wrong password: the attempt stays counted
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
    assert await limiter.retry_after("alice", "198.51.100.7") == 0.0
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
        await limiter.reserve("ALICE", "203.0.113.9")  # same account, another address
    assert caught.value.retry_after == 1.0


_BURST_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from coatcheck.clock import FrozenClock
    from coatcheck.errors import RateLimited
    from coatcheck.ratelimit import LoginLimiter
    from coatcheck.stores import open_store

    async def main() -> None:
        url, namespace, now, go, me = sys.argv[1:6]
        store = open_store(url)
        limiter = LoginLimiter(store, namespace=namespace, clock=FrozenClock(float(now)))
        await limiter.retry_after("alice", "")  # connected, schema in place
        print("ready", flush=True)
        while not os.path.exists(go):  # all three start the burst together
            time.sleep(0.005)

        async def guess(i: int) -> bool:
            try:
                async with limiter.attempt("alice", f"198.51.{me}.{i}"):
                    await asyncio.sleep(0.01)  # the password check
            except RateLimited:
                return False
            return True

        granted = await asyncio.gather(*(guess(i) for i in range(20)))
        print(sum(granted), flush=True)
        await store.close()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("store_url", ["sqlite", "redis", "postgres"], indirect=True)
async def test_three_processes_share_one_limit_under_a_burst(
    store_url: str, opener: Callable[[], Any], clock: FrozenClock, tmp_path: Path
) -> None:
    # Regression (issue 12, item 2): with 3 processes on Redis, 60 concurrent guesses all
    # got through a limit of 5 per account. Now the three together reserve exactly 5.
    namespace = f"t{secrets.token_hex(6)}"
    store = opener()
    if isinstance(store, PostgresStore):
        await store.open()  # create the schema here, not in a race between the children
    elif isinstance(store, SQLiteStore):
        await store.peek_attempts("x", clock.now())
    go = tmp_path / "go"
    argv = [sys.executable, "-c", _BURST_CHILD, store_url, namespace, repr(clock.now()), str(go)]
    children = [
        subprocess.Popen(
            [*argv, str(me)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for me in range(3)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", child.stderr
        go.touch()
        granted = []
        for child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err
            granted.append(int(out.strip()))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert sum(granted) == 5, granted
    limiter = LoginLimiter(store, namespace=namespace, clock=clock)
    with pytest.raises(RateLimited):
        await limiter.reserve("alice", "203.0.113.9")


# -- the limiter's rules, table-driven, on every store ---------------------------------------

FAIL, OK, CANCEL, WAIT, ALLOWED, BLOCKED = "fail", "ok", "cancel", "wait", "allowed", "blocked"
A, B = "198.51.100.7", "203.0.113.9"

# Each step: (FAIL | OK | CANCEL, user, ip[, times]) reserves an attempt (it must be
# granted) and then leaves it counted (a wrong password), succeeds, or cancels it (the
# password was never checked); (WAIT, seconds); (ALLOWED, user, ip): nothing to wait;
# (BLOCKED, user, ip, retry_after): a reservation is refused. Limits: 5 per account,
# 8 per IP, 15-minute windows, back-off 1 s doubling up to 60 s.
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
    "the wait is capped": [
        (FAIL, "alice", A, 5),
        *[step for wait in (1, 2, 4, 8, 16, 32, 60) for step in ((WAIT, wait), (FAIL, "alice", B))],
        (BLOCKED, "alice", A, 60.0),  # 12 attempts: 2**7 s, capped at 60
    ],
    "refused attempts count nothing": [
        (FAIL, "alice", A, 5),
        *[(BLOCKED, "alice", A, 1.0)] * 20,
        (WAIT, 1.0),
        (ALLOWED, "alice", A),  # still 5 attempts: the wait did not grow
        (FAIL, "alice", A),
        (BLOCKED, "alice", A, 2.0),
    ],
    "a cancelled attempt counts nothing": [
        (CANCEL, "alice", A, 20),
        (FAIL, "alice", A, 4),
        (CANCEL, "alice", A),
        (ALLOWED, "alice", A),
        (FAIL, "alice", A),
        (BLOCKED, "alice", A, 1.0),
    ],
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
    "a good password gives the address its reservation back": [
        (FAIL, "alice", A, 4),
        (FAIL, "bob", A, 3),
        (OK, "carol", A),  # the 8th reservation from A, given back
        (ALLOWED, "dave", A),
        (FAIL, "dave", A),
        (BLOCKED, "erin", A, 1.0),
    ],
    "a locked address gives the account's reservation back": [
        (FAIL, "bob", A, 4),
        (FAIL, "carol", A, 4),
        (BLOCKED, "alice", A, 1.0),  # the address refused, after the account had counted
        (FAIL, "alice", B, 4),  # alice still has all 4 of her first attempts
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


async def _fail(limiter: LoginLimiter, user: str, ip: str) -> None:
    async with limiter.attempt(user, ip):
        pass  # a wrong password: the reservation stays counted


@_stores
@pytest.mark.parametrize("steps", list(CASES.values()), ids=list(CASES))
async def test_limiter_rules(
    opener: Callable[[], Any], clock: FrozenClock, steps: list[tuple[Any, ...]]
) -> None:
    limiter = _limiter(opener(), clock)
    for step in steps:
        kind = step[0]
        if kind in (FAIL, OK, CANCEL):
            for _ in range(step[3] if len(step) > 3 else 1):
                attempt = await limiter.reserve(step[1], step[2])
                if kind == OK:
                    await attempt.succeeded()
                elif kind == CANCEL:
                    await attempt.cancel()
        elif kind == WAIT:
            clock.advance(step[1])
        elif kind == ALLOWED:
            assert await limiter.retry_after(step[1], step[2]) == 0.0, step
        else:
            with pytest.raises(RateLimited) as caught:
                await limiter.reserve(step[1], step[2])
            assert caught.value.retry_after == step[3], step
            assert caught.value.code == "rate_limited"


@_stores
async def test_a_burst_of_200_sign_ins_gets_exactly_5_password_checks(
    opener: Callable[[], Any], clock: FrozenClock
) -> None:
    # Regression (issue 12, item 2): 200 concurrent wrong passwords for one account were
    # all checked (and the 200th, right, one logged in). Now 5 are, the rest wait.
    namespace = f"t{secrets.token_hex(6)}"
    limiters = [LoginLimiter(opener(), namespace=namespace, clock=clock) for _ in range(2)]
    checked: list[int] = []

    async def sign_in(i: int) -> str:
        try:
            async with limiters[i % 2].attempt("alice", f"198.51.100.{i % 200}"):
                checked.append(i)  # the password check would run here
                await asyncio.sleep(0)
        except RateLimited:
            return "429"
        return "401"

    answers = await asyncio.gather(*(sign_in(i) for i in range(200)))
    assert answers.count("401") == len(checked) == 5
    assert answers.count("429") == 195


async def test_an_exception_inside_the_attempt_gives_the_reservation_back(
    clock: FrozenClock,
) -> None:
    limiter = _limiter(MemoryStore(), clock)
    for _ in range(10):
        with pytest.raises(ZeroDivisionError):
            async with limiter.attempt("alice", A):
                1 / 0  # noqa: B018  (the hashing queue was full, say: no password checked)
    assert await limiter.retry_after("alice", A) == 0.0
    for _ in range(5):
        await _fail(limiter, "alice", A)
    with pytest.raises(RateLimited):
        await _fail(limiter, "alice", A)


async def test_an_address_alone_can_be_counted(clock: FrozenClock) -> None:
    # Registrations: no account yet, the address pays.
    limiter = _limiter(MemoryStore(), clock)
    for _ in range(8):
        await limiter.reserve(None, A)
    with pytest.raises(RateLimited):
        await limiter.reserve(None, A)
    with pytest.raises(RateLimited):
        await limiter.reserve("alice", A)  # the same address's budget
    await limiter.reserve("alice", B)


# -- no enumeration, no clear text -----------------------------------------------------------


async def test_unknown_and_existing_accounts_get_the_same_answer(clock: FrozenClock) -> None:
    # The limiter cannot tell them apart: only the submitted name and address count.
    limiter = _limiter(MemoryStore(), clock)
    answers = []
    for name, ip in (("alice", A), ("no-such-user", "192.0.2.1")):
        for _ in range(5):
            await _fail(limiter, name, ip)
        with pytest.raises(RateLimited) as caught:
            await limiter.reserve(name, B)
        answers.append((caught.value.code, str(caught.value), caught.value.retry_after))
    assert answers[0] == answers[1]


@pytest.mark.parametrize("store_url", ["redis"], indirect=True)
async def test_counter_keys_hold_no_name_or_address(
    opener: Callable[[], Any], clock: FrozenClock, redis_url: str
) -> None:
    memory = MemoryStore()
    plain = _limiter(memory, clock)
    await _fail(plain, "alice@example.com", "198.51.100.7")
    keyed = _limiter(memory, clock, secret=secrets.token_bytes(32))
    await _fail(keyed, "alice@example.com", "198.51.100.7")
    keys = list(memory._attempts)
    assert len(keys) == 4
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys)
    redis_store = opener()
    await _fail(_limiter(redis_store, clock), "alice@example.com", "198.51.100.7")
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
        await _fail(limiter, "alice", A)
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
