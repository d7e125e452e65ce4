"""RevocationSet (pure) and the Redis / PostgreSQL feeds against the real servers."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import psycopg
import pytest
import redis.asyncio as aioredis

from coatcheck import events
from coatcheck.clock import FrozenClock, SystemClock
from coatcheck.errors import ConfigurationError
from coatcheck.events import Event, FeedStateChanged, RevocationsPublished, RevocationsReceived
from coatcheck.revocation import RevocationFeed, RevocationSet, decode_message, encode_message
from coatcheck.sessions import SessionManager
from coatcheck.stores import MemoryStore
from coatcheck.stores.postgres_revocation import PostgresRevocationFeed
from coatcheck.stores.redis_revocation import RedisRevocationFeed

from ._net import free_port

RETENTION = timedelta(minutes=5, seconds=10)


def test_entries_live_for_the_retention(clock: FrozenClock) -> None:
    revoked = RevocationSet(retention=RETENTION, clock=clock)
    revoked.add(["a", "b"])
    assert revoked.is_revoked("a", clock.now())
    assert not revoked.is_revoked("c", clock.now())
    clock.advance(310)
    assert not revoked.is_revoked("a", clock.now())
    revoked.add(["c"])
    assert len(revoked) == 1


def test_until_from_the_wire_is_capped_and_past_ones_ignored(clock: FrozenClock) -> None:
    revoked = RevocationSet(retention=RETENTION, clock=clock)
    revoked.add(["old"], until=clock.now() - 1)
    revoked.add(["far"], until=clock.now() + 10**9)
    assert len(revoked) == 1
    clock.advance(86_401)
    assert not revoked.is_revoked("far", clock.now())


def test_an_until_longer_than_the_retention_is_shortened(clock: FrozenClock) -> None:
    # The CLI publishes for a day (it cannot know the apps' token lifetimes); each
    # process keeps an id only as long as its own access tokens can live.
    revoked = RevocationSet(retention=RETENTION, clock=clock)
    revoked.add(["cli"], until=clock.now() + 86_400)
    clock.advance(RETENTION.total_seconds() - 1)
    assert revoked.is_revoked("cli", clock.now())
    clock.advance(2)
    assert not revoked.is_revoked("cli", clock.now())


def test_a_full_set_becomes_unreliable_instead_of_forgetting(clock: FrozenClock) -> None:
    revoked = RevocationSet(retention=RETENTION, max_entries=2, clock=clock)
    revoked.add(["a", "b"])
    assert revoked.reliable
    revoked.add(["c"])
    assert len(revoked) == 2
    assert not revoked.reliable  # "c" is not held: callers must ask the store
    clock.advance(311)
    assert revoked.reliable
    revoked.add(["d"])  # expired entries make room again
    assert revoked.is_revoked("d", clock.now())


def test_messages_round_trip_and_garbage_is_ignored() -> None:
    assert decode_message(encode_message(["a", "b"], 5.0)) == (["a", "b"], 5.0)
    for junk in ["", "[]", "{}", '{"u": true, "s": []}', '{"u": 1, "s": "a"}', "\xff"]:
        assert decode_message(junk) is None
    assert decode_message('{"u": 1, "s": ["ok", 3, null]}') == (["ok"], 1.0)


def test_down_and_up_nest(clock: FrozenClock) -> None:
    revoked = RevocationSet(retention=RETENTION, clock=clock)
    revoked.mark_down()
    revoked.mark_down()
    revoked.mark_up()
    assert not revoked.reliable
    revoked.mark_up()
    assert revoked.reliable


def test_bad_configuration(redis_url: str) -> None:
    with pytest.raises(ConfigurationError):
        RevocationSet(retention=timedelta(0))
    with pytest.raises(ConfigurationError):
        RevocationSet(retention=RETENTION, max_entries=0)
    revoked = RevocationSet(retention=RETENTION)
    with pytest.raises(ConfigurationError):
        RedisRevocationFeed(redis_url, revoked, channel="bad channel")
    with pytest.raises(ConfigurationError):
        PostgresRevocationFeed("postgresql://x@127.0.0.1/x", revoked, channel="Bad-Name")


async def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until ``check`` holds (bounded); the feed works in the background."""
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


FeedFactory = Callable[[RevocationSet], RevocationFeed]


async def _spread_and_recover(make: FeedFactory, kill: Callable[[], Awaitable[None]]) -> None:
    clock = SystemClock()
    here_set = RevocationSet(retention=RETENTION, clock=clock)
    there_set = RevocationSet(retention=RETENTION, clock=clock)
    here, there = make(here_set), make(there_set)
    assert not there_set.reliable  # not connected yet: unreliable, so the store is asked
    try:
        await here.start(wait=5)
        await there.start(wait=5)
        assert here.healthy
        assert there.healthy
        assert there_set.reliable
        sid = f"s.{secrets.token_hex(8)}"
        await here.publish([sid])
        assert here_set.is_revoked(sid, clock.now())  # at once in the publisher
        await _eventually(lambda: there_set.is_revoked(sid, clock.now()))
        # Drop the listener's connection: unreliable until it reconnects and replays.
        await kill()
        await _eventually(lambda: not there.healthy)
        assert not there_set.reliable
        missed = f"s.{secrets.token_hex(8)}"
        await here.publish([missed])  # published while "there" was disconnected
        await _eventually(lambda: there.healthy)
        assert there_set.is_revoked(missed, clock.now())  # replayed from the backlog
        assert there_set.reliable
        # A process started later learns earlier revocations from the backlog too.
        late_set = RevocationSet(retention=RETENTION, clock=clock)
        late = make(late_set)
        try:
            await late.start(wait=5)
            assert late_set.is_revoked(sid, clock.now())
            assert late_set.is_revoked(missed, clock.now())
        finally:
            await late.stop()
    finally:
        await here.stop()
        await there.stop()
    assert not there.healthy


@pytest.fixture
def channel() -> str:
    return f"cctrev_{secrets.token_hex(4)}"


@pytest.fixture
async def redis_client(redis_url: str, channel: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.delete(channel + ":backlog")
    await client.aclose()


@pytest.mark.redis
@pytest.mark.anyio
async def test_redis_feed(redis_url: str, channel: str, redis_client: aioredis.Redis) -> None:
    made: list[RedisRevocationFeed] = []

    async def kill() -> None:
        # Only this test's subscribers (found by their local address): other runs share
        # the server. The publishers' connections are not subscribers.
        for feed in made:
            pubsub = feed._pubsub
            writer = getattr(getattr(pubsub, "connection", None), "_writer", None)
            if writer is not None:
                host, port = writer.get_extra_info("sockname")[:2]
                await redis_client.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")

    def make(revocations: RevocationSet) -> RevocationFeed:
        feed = RedisRevocationFeed(redis_url, revocations, channel=channel, heartbeat=0.2)
        made.append(feed)
        return feed

    await _spread_and_recover(make, kill)


def _ports(url: str) -> list[int]:
    hosts = url.split("://", 1)[1].split("/", 1)[0]
    return [int(h.rpartition(":")[2]) for h in hosts.split(",")]


@pytest.mark.redis
@pytest.mark.anyio
async def test_redis_cluster_feed_is_sharded(redis_cluster_url: str, channel: str) -> None:
    async def kill() -> None:
        # The listener sits on the master of the channel's slot: kill pub/sub everywhere.
        for port in _ports(redis_cluster_url):
            client = aioredis.Redis(port=port)
            await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            await client.aclose()

    def make(revocations: RevocationSet) -> RevocationFeed:
        return RedisRevocationFeed(
            redis_cluster_url, revocations, channel=channel, heartbeat=0.2
        )

    await _spread_and_recover(make, kill)
    # Sharded: the channel has subscribers only as a shard channel, on one master.
    feed = make(RevocationSet(retention=RETENTION))
    await feed.start(wait=5)
    owners = []
    for port in _ports(redis_cluster_url):
        client = aioredis.Redis(port=port)
        owners.append(await client.execute_command("PUBSUB", "SHARDNUMSUB", "{" + channel + "}"))
        assert await client.execute_command("PUBSUB", "NUMSUB", channel) == [channel.encode(), 0]
        await client.aclose()
    await feed.stop()
    assert sorted(o[1] for o in owners) == [0, 0, 1]


@pytest.mark.redis
@pytest.mark.anyio
async def test_redis_sentinel_feed(redis_sentinel_url: str, channel: str) -> None:
    async def kill() -> None:
        sentinel = aioredis.Redis(port=_ports(redis_sentinel_url)[0])
        _, port = await sentinel.execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "coatcheck"
        )
        await sentinel.aclose()
        client = aioredis.Redis(port=int(port))
        await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await client.aclose()

    def make(revocations: RevocationSet) -> RevocationFeed:
        return RedisRevocationFeed(
            redis_sentinel_url, revocations, channel=channel, heartbeat=0.2
        )

    await _spread_and_recover(make, kill)


@pytest.mark.redis
@pytest.mark.anyio
async def test_redis_publish_failure_is_queued_and_resent(redis_url: str, channel: str) -> None:
    revoked = RevocationSet(retention=RETENTION)
    feed = RedisRevocationFeed("redis://127.0.0.1:1/15", revoked, channel=channel, max_backoff=0.1)
    # Nothing listens on port 1: queued (and said so), known locally.
    assert await feed.publish(["s.x"]) is False
    assert feed.pending == 1
    assert revoked.is_revoked("s.x", SystemClock().now())
    assert not feed.healthy
    await feed.stop()


@pytest.fixture
async def pg_cleanup(postgres_url: str) -> AsyncIterator[None]:
    yield
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("DELETE FROM coatcheck_revocations WHERE session_id LIKE 's.%%'")


@pytest.mark.postgres
@pytest.mark.anyio
@pytest.mark.usefixtures("pg_cleanup")
async def test_postgres_feed(postgres_url: str, channel: str) -> None:
    made: list[PostgresRevocationFeed] = []

    async def kill() -> None:
        # Only this test's listeners: other runs share the server.
        pids = [f._listener.info.backend_pid for f in made if f._listener is not None]
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", (pids,)
            )

    def make(revocations: RevocationSet) -> RevocationFeed:
        feed = PostgresRevocationFeed(postgres_url, revocations, channel=channel, heartbeat=0.2)
        made.append(feed)
        return feed

    await _spread_and_recover(make, kill)


async def _manager_publishes(make: FeedFactory) -> None:
    """Issue 12 item 6: a revoke through the SessionManager reaches the other process."""
    clock = SystemClock()
    here_set, there_set = (RevocationSet(retention=RETENTION, clock=clock) for _ in range(2))
    here, there = make(here_set), make(there_set)
    try:
        await there.start(wait=5)
        manager = SessionManager(MemoryStore(), revocations=here)
        assert manager.feed is here
        _, record = await manager.create("alice")
        await manager.revoke_id(record.id)
        await _eventually(lambda: there_set.is_revoked(record.id, clock.now()))
        others = [(await manager.create("bob"))[1].id for _ in range(3)]
        await manager.revoke_user("bob")
        await _eventually(lambda: all(there_set.is_revoked(i, clock.now()) for i in others))
        assert here.pending == 0
    finally:
        await here.stop()
        await there.stop()


@pytest.mark.redis
@pytest.mark.anyio
@pytest.mark.usefixtures("redis_client")
async def test_the_manager_publishes_on_redis(redis_url: str, channel: str) -> None:
    await _manager_publishes(lambda s: RedisRevocationFeed(redis_url, s, channel=channel))


@pytest.mark.postgres
@pytest.mark.anyio
@pytest.mark.usefixtures("pg_cleanup")
async def test_the_manager_publishes_on_postgres(postgres_url: str, channel: str) -> None:
    await _manager_publishes(lambda s: PostgresRevocationFeed(postgres_url, s, channel=channel))


# -- events: the feed's state, what it publishes, and its lag --------------------------------


def test_messages_carry_their_publication_time_for_the_lag() -> None:
    stamped = encode_message(["a"], 5.0, sent_at=1.5)
    assert json.loads(stamped) == {"u": 5.0, "s": ["a"], "t": 1.5}
    assert decode_message(stamped) == (["a"], 5.0)  # older listeners read it as before


async def _feed_events(feed: RevocationFeed, send_old: Callable[[], Awaitable[None]]) -> None:
    heard: list[Event] = []
    kinds = (FeedStateChanged, RevocationsPublished, RevocationsReceived)
    channel = feed.channel
    with events.subscribe(heard.append, *kinds):
        await feed.start(wait=5)
        assert await feed.publish([f"s.{secrets.token_hex(8)}", f"s.{secrets.token_hex(8)}"])
        await _eventually(lambda: any(isinstance(e, RevocationsReceived) for e in heard))
        await send_old()  # a publisher from before the stamp
        await _eventually(lambda: sum(isinstance(e, RevocationsReceived) for e in heard) == 2)
        await feed.stop()
    # The listener may hear the message before the publisher's own call returns.
    assert heard[0] == FeedStateChanged(channel=channel, up=True)
    assert heard[-1] == FeedStateChanged(channel=channel, up=False)
    middle = heard[1:-1]
    assert len(middle) == 3
    assert RevocationsPublished(channel=channel, count=2, delivered=True) in middle
    assert RevocationsReceived(channel=channel, count=1, lag=None) == middle[-1]
    [received] = [e for e in middle[:-1] if isinstance(e, RevocationsReceived)]
    assert received.count == 2
    assert received.lag is not None
    assert 0 <= received.lag < 2.0  # the feed's promise: well under a second


@pytest.mark.redis
@pytest.mark.anyio
async def test_redis_feed_events(
    redis_url: str, channel: str, redis_client: aioredis.Redis
) -> None:
    feed = RedisRevocationFeed(redis_url, RevocationSet(retention=RETENTION), channel=channel)

    async def send_old() -> None:
        await redis_client.publish(channel, encode_message(["s.old"], SystemClock().now() + 60))

    await _feed_events(feed, send_old)


@pytest.mark.postgres
@pytest.mark.anyio
@pytest.mark.usefixtures("pg_cleanup")
async def test_postgres_feed_events(postgres_url: str, channel: str) -> None:
    feed = PostgresRevocationFeed(postgres_url, RevocationSet(retention=RETENTION), channel=channel)

    async def send_old() -> None:
        payload = encode_message(["s.old"], SystemClock().now() + 60)
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))

    await _feed_events(feed, send_old)


@pytest.mark.anyio
async def test_a_publish_that_cannot_reach_the_server_is_reported_queued(channel: str) -> None:
    heard: list[Event] = []
    feed = RedisRevocationFeed(
        f"redis://127.0.0.1:{free_port()}/15", RevocationSet(retention=RETENTION), channel=channel
    )
    with events.subscribe(heard.append, RevocationsPublished, FeedStateChanged):
        assert await feed.publish(["s.x"]) is False
        await feed.stop()
    # Never connected: no state change to report, one queued message.
    assert heard == [RevocationsPublished(channel=channel, count=1, delivered=False)]
