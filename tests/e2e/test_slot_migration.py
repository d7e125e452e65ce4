"""A slot migrating between cluster masters (``ASK`` redirects) while requests run.

Each test starts its own throwaway cluster and moves the slot of some users' sessions
from one master to another the way ``redis-cli --cluster reshard`` does (``CLUSTER
SETSLOT ... IMPORTING`` / ``MIGRATING``, ``MIGRATE`` a few keys at a time, ``SETSLOT
... NODE``). While the slot is split, a key already moved is answered with ``ASK``
by the old master, and a command that needs keys on both sides with ``TRYAGAIN``.

What must hold: a read always finds the session wherever its key is (200 for the right
user: never a guest, never a 500); a write either completes or is refused with 503
``store_unavailable`` (never half done); an acknowledged session is still there after
the move, a deleted one is still gone, and a user's index still names exactly their
sessions, so "log out everywhere" misses none.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from redis.crc import key_slot

from coatcheck.demo import DemoConfig, create_app
from coatcheck.errors import StoreUnavailable
from coatcheck.sessions.ids import session_id, user_slot
from coatcheck.sessions.manager import SessionManager
from coatcheck.stores import RedisStore, SyncRedisStore

from .. import _topology

pytestmark = [pytest.mark.slow, pytest.mark.redis]

PASSWORD = "correct horse battery"


def _cluster_slot(user: str) -> int:
    # The store's hash tag is the first 4 hex digits of the user's slot.
    return key_slot(b"{" + user_slot(user)[:4].encode() + b"}")


def _users_in_slot(slot: int, count: int, prefix: str) -> list[str]:
    """``count`` user ids whose sessions live in cluster slot ``slot``."""
    found = []
    for i in itertools.count():
        name = f"{prefix}{i}"
        if _cluster_slot(name) == slot:
            found.append(name)
            if len(found) == count:
                return found
    raise AssertionError("unreachable")


class Migration:
    """Move one slot from its master to another, a few keys at a time."""

    def __init__(self, cluster: _topology.Cluster, slot: int) -> None:
        self.slot = slot
        self.source = cluster.master_of_slot(slot)
        self.target = next(p for p in cluster.masters if p != self.source)
        self.masters = list(cluster.masters)
        self.client = {p: redis.Redis(port=p) for p in self.masters}
        self.ids = {p: c.execute_command("CLUSTER MYID").decode() for p, c in self.client.items()}

    def begin(self) -> None:
        s, t = self.source, self.target
        self.client[t].execute_command("CLUSTER SETSLOT", self.slot, "IMPORTING", self.ids[s])
        self.client[s].execute_command("CLUSTER SETSLOT", self.slot, "MIGRATING", self.ids[t])

    def keys_left(self) -> list[bytes]:
        # The command name as bytes: redis-py then leaves the reply raw (keys are binary).
        keys: list[bytes] = self.client[self.source].execute_command(
            b"CLUSTER", b"GETKEYSINSLOT", self.slot, 1000
        )
        return keys

    def move(self, keys: list[bytes]) -> None:
        for key in keys:
            reply = self.client[self.source].execute_command(
                "MIGRATE", "127.0.0.1", self.target, key, 0, 5000
            )
            # NOKEY: gone since it was listed (a request deleted it meanwhile).
            assert reply in (b"OK", b"NOKEY"), (reply, key)

    def finish(self) -> None:
        while keys := self.keys_left():
            self.move(keys)
        target_id = self.ids[self.target]
        # The new owner first, then the old one, then the rest (as redis-cli does).
        for port in (self.target, self.source, *self.masters):
            self.client[port].execute_command("CLUSTER SETSLOT", self.slot, "NODE", target_id)

    def close(self) -> None:
        for client in self.client.values():
            client.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[_topology.Cluster]:
    started = _topology.start_cluster(tmp_path / "cluster")
    yield started
    started.stop()


def _asking_calls(port: int) -> int:
    client = redis.Redis(port=port)
    stats = client.info("commandstats").get("cmdstat_asking", {})
    client.close()
    return int(stats.get("calls", 0))


@pytest.mark.anyio
@pytest.mark.parametrize(("kind", "options"), [(RedisStore, ""), (SyncRedisStore, "?wait=1")])
async def test_every_operation_on_a_half_moved_slot(
    cluster: _topology.Cluster, kind: type[RedisStore], options: str
) -> None:
    """The user's index and half their sessions on the new master, half on the old:
    reads follow ASK; each write is done whole or refused (503), never half done.
    The same over blocking I/O (WSGI), whose pauses before a retry block instead, and
    with WAIT after each write (sent with it, so redirected with it)."""
    store = kind.from_url(cluster.url + options)
    manager = SessionManager(store)
    slot = _cluster_slot("mover-seed")
    user, other = _users_in_slot(slot, 2, "mover")
    tokens = [(await manager.create(user))[0] for _ in range(8)]
    other_tokens = [(await manager.create(other))[0] for _ in range(4)]
    ids = [session_id(t) or "" for t in tokens]
    keys = [store._session_key(i)[0] for i in ids]  # type: ignore[index]
    migration = Migration(cluster, slot)
    migration.begin()
    # The index and the first half of the records move; the rest stay behind.
    migration.move([store._user_keys(user)[0], *keys[:4]])
    for token in tokens:
        record = await manager.validate(token)
        assert record is not None
        assert record.user_id == user
    for token in other_tokens:
        record = await manager.validate(token)
        assert record is not None
        assert record.user_id == other
    assert _asking_calls(migration.target) >= 4  # the moved ones were read through ASK
    done: dict[str, object] = {}

    async def attempt(name: str, op: Awaitable[object]) -> None:
        with contextlib.suppress(StoreUnavailable):  # refused as a whole: a 503
            done[name] = await op

    await attempt("list_user", store.list_user(user, time.time()))
    await attempt("create", manager.create(user))
    await attempt("delete moved", store.delete(ids[0]))
    await attempt("delete kept", store.delete(ids[7]))
    await attempt("touch moved", store.touch(ids[1], time.time(), time.time() + 3600))
    await attempt("delete_user", store.delete_user(other))
    migration.finish()
    migration.close()
    # Whatever each call answered, the data agrees with it now.
    created = done.get("create")
    expected = set(tokens) | ({created[0]} if isinstance(created, tuple) else set())
    if "delete moved" in done:
        expected.discard(tokens[0])
    if "delete kept" in done:
        expected.discard(tokens[7])
    live = {t for t in expected if await manager.validate(t) is not None}
    assert live == expected
    for gone in set(tokens) - expected:
        assert await manager.validate(gone) is None
    listed = {r.id for r in await store.list_user(user, time.time())}
    assert listed == {session_id(t) for t in expected}  # the index lost no entry
    others = [await manager.validate(t) for t in other_tokens]
    if "delete_user" in done:
        assert others == [None] * 4  # log out everywhere missed none
    else:
        assert all(r is not None for r in others)
        assert len(await store.list_user(other, time.time())) == 4
    await store.close()


@pytest.mark.anyio
async def test_requests_while_slots_move_there_and_back(
    tmp_path: Path, cluster: _topology.Cluster
) -> None:
    """Logins, reads and logouts through the demo while the slots of three users move
    to other masters a key at a time, and back."""
    app = create_app(
        DemoConfig(mode="session", store_url=cluster.url, users_path=str(tmp_path / "u.db"))
    )
    answers: list[tuple[str, int, str]] = []
    acknowledged: list[str] = []
    logged_out: list[str] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        tokens, ids = {}, {}
        for name in ("mover-a", "mover-b", "mover-c", "stayer-a", "stayer-b", "stayer-c"):
            made = await client.post(
                "/api/register", json={"username": name, "password": PASSWORD, "name": name}
            )
            ids[name] = made.json()["user_id"]
            login = await client.post("/api/login", json={"username": name, "password": PASSWORD})
            assert login.status_code == 200, login.text
            tokens[name] = login.json()["token"]
        movers = [ids[n] for n in ("mover-a", "mover-b", "mover-c")]
        slots = sorted({_cluster_slot(u) for u in movers})
        assert not {_cluster_slot(ids[n]) for n in ids if n.startswith("stayer")} & set(slots)
        writer_store = RedisStore.from_url(cluster.url)
        manager = SessionManager(writer_store)
        stop = asyncio.Event()

        def store_key(token: str) -> bytes:
            keys = writer_store._session_key(session_id(token) or "")
            assert keys is not None
            return keys[0]

        async def reader() -> None:
            while not stop.is_set():
                for name, token in tokens.items():
                    answer = await client.get(
                        "/api/me", headers={"authorization": f"Bearer {token}"}
                    )
                    body = answer.json()
                    who = body.get("username", "") if answer.status_code == 200 else body["error"]
                    answers.append((name, answer.status_code, who))
                await asyncio.sleep(0.001)

        async def logout(token: str) -> None:
            answer = await client.post("/api/logout", headers={"authorization": f"Bearer {token}"})
            assert answer.status_code in (200, 204, 503), answer.text
            if answer.status_code != 503:
                logged_out.append(token)

        async def writer() -> None:
            # Creates, logouts and listings (the scripts that reach the keys an index
            # names) for the moving users, all through the move.
            n = 0
            while not stop.is_set():
                n += 1
                user = movers[n % len(movers)]
                try:
                    token, _ = await manager.create(user)
                    acknowledged.append(token)
                except StoreUnavailable:
                    token = ""
                if unread:
                    await logout(unread.pop())
                if token and n % 3 == 0:
                    await logout(token)
                with contextlib.suppress(StoreUnavailable):
                    await writer_store.list_user(user, time.time())
                await asyncio.sleep(0.002)

        # Sessions nobody reads, so each move goes on a while after the read ones moved;
        # the writer logs out of some of them meanwhile.
        for user in movers:
            for _ in range(30):
                acknowledged.append((await manager.create(user))[0])
        unread = acknowledged[::3]
        read_keys = [store_key(tokens[name]) for name in ("mover-a", "mover-b", "mover-c")]

        async def move(migrations: list[Migration]) -> None:
            for m in migrations:
                await asyncio.to_thread(m.begin)
            for m in migrations:  # the sessions being read first
                mine = [k for k in read_keys if key_slot(k) == m.slot]
                await asyncio.to_thread(m.move, mine)
            busy = list(migrations)
            while busy:  # then the rest, a key at a time
                for m in list(busy):
                    keys = await asyncio.to_thread(m.keys_left)
                    if keys:
                        await asyncio.to_thread(m.move, keys[:1])
                    else:
                        busy.remove(m)
                await asyncio.sleep(0.02)
            for m in migrations:
                await asyncio.to_thread(m.finish)
                m.close()

        tasks = [asyncio.create_task(reader()) for _ in range(2)]
        tasks.append(asyncio.create_task(writer()))
        await asyncio.sleep(0.3)
        asked = {p: _asking_calls(p) for p in cluster.masters}
        there = [Migration(cluster, slot) for slot in slots]
        await move(there)
        back = [Migration(cluster, slot) for slot in slots]
        await move(back)
        asked = {p: _asking_calls(p) - asked[p] for p in cluster.masters}
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*tasks)
        await writer_store.close()
    redirected = sum(asked.values())
    assert redirected > 0, "no request was ever redirected with ASK: the test tested nothing"
    for name, status, who in answers:
        # A session that exists is always found, wherever its key is at that moment.
        assert (status, who) == (200, name), (name, status, who)
    check = RedisStore.from_url(cluster.url)
    checker = SessionManager(check)
    for token in logged_out:
        assert await checker.validate(token) is None  # a logout stays done
    kept = [t for t in acknowledged if t not in set(logged_out)]
    for token in kept:
        assert await checker.validate(token) is not None  # no acknowledged write lost
    for name, user in zip(("mover-a", "mover-b", "mover-c"), movers, strict=True):
        listed = {r.id for r in await check.list_user(user, time.time())}
        mine = {session_id(t) for t in [*kept, tokens[name]] if t[:8] == user_slot(user)}
        assert listed == mine  # the index names every session: log out everywhere works
    print(f"\nslots {slots} moved there and back: {len(answers)} reads, "
          f"{len(acknowledged)} sessions created, {len(logged_out)} logged out, "
          f"{redirected} ASK redirects followed")  # fmt: skip
    await check.close()
