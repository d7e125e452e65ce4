"""SessionManager on the reference store: creation, validation, renewal, rotation, CAS."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from coatcheck.clock import FrozenClock
from coatcheck.errors import (
    ConfigurationError,
    ConflictError,
    InvalidCredentials,
    StoreError,
    StoreUnavailable,
)
from coatcheck.policies import SessionPolicy
from coatcheck.revocation import RevocationSet
from coatcheck.sessions import SessionManager, SessionRecord
from coatcheck.sessions.ids import session_id
from coatcheck.stores.memory import MemoryStore
from tests.stores.contract import CountingStore, make_record

pytestmark = pytest.mark.anyio

POLICY = SessionPolicy(
    idle_timeout=timedelta(hours=2),
    absolute_timeout=timedelta(hours=5),
    renew_interval=timedelta(minutes=10),
)
HOUR = 3600.0


@pytest.fixture
def store() -> CountingStore:
    return CountingStore(MemoryStore())


@pytest.fixture
def manager(store: CountingStore, clock: FrozenClock) -> SessionManager:
    return SessionManager(store, policy=POLICY, clock=clock)


class _Unfiltered(MemoryStore):
    """A store that forgets to hide expired records (the manager must still refuse them)."""

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        return self._records.get(session_id)


class _Down(MemoryStore):
    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        raise StoreUnavailable("down")

    async def delete(self, session_id: str) -> SessionRecord | None:
        raise StoreUnavailable("down")


class _AlwaysLoses(MemoryStore):
    updates = 0

    async def update(self, record: SessionRecord) -> bool:
        self.updates += 1
        return False


# -- create -------------------------------------------------------------------------------


async def test_create(manager: SessionManager, store: CountingStore, clock: FrozenClock) -> None:
    now = clock.now()
    data = {"theme": "dark"}
    token, record = await manager.create("alice", data=data, user_agent="UA", ip="10.1.2.3")
    assert session_id(token) == record.id
    assert token not in record.id
    assert record == SessionRecord(
        id=record.id,
        user_id="alice",
        created_at=now,
        last_seen=now,
        auth_time=now,
        expires_at=now + 2 * HOUR,
        absolute_expires_at=now + 5 * HOUR,
        data={"theme": "dark"},
        user_agent="UA",
        ip="10.1.2.3",
        version=1,
    )
    data["theme"] = "light"
    assert record.data == {"theme": "dark"}
    assert store.calls == {"create": 1}


async def test_every_login_gets_a_new_id(manager: SessionManager) -> None:
    (t1, r1), (t2, r2) = await manager.create("bob"), await manager.create("bob")
    assert t1 != t2
    assert r1.id != r2.id
    assert r1.id[:8] == r2.id[:8]  # same user, same slot


async def test_idle_expiry_is_capped_by_absolute(clock: FrozenClock) -> None:
    policy = SessionPolicy(
        idle_timeout=timedelta(hours=1),
        absolute_timeout=timedelta(hours=1),
        renew_interval=timedelta(minutes=1),
    )
    _, record = await SessionManager(MemoryStore(), policy=policy, clock=clock).create("u")
    assert record.expires_at == record.absolute_expires_at == clock.now() + HOUR


def test_update_attempts_must_be_positive() -> None:
    with pytest.raises(ConfigurationError):
        SessionManager(MemoryStore(), update_attempts=0)


def test_defaults_and_repr() -> None:
    manager = SessionManager(MemoryStore())
    assert manager.policy == SessionPolicy()
    assert isinstance(manager.store, MemoryStore)
    assert repr(manager).startswith("SessionManager(MemoryStore(")


# -- validate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", "x", "not-a-token", "0" * 52, "abcdefgh." + "A" * 43, "0123abcd." + "A" * 42, "é" * 52],
)
async def test_malformed_token_never_reaches_the_store(
    manager: SessionManager, store: CountingStore, token: str
) -> None:
    assert await manager.validate(token) is None
    assert await manager.revoke(token) is False
    assert await manager.rotate(token) is None
    assert store.calls == {}


async def test_unknown_token(manager: SessionManager, store: CountingStore) -> None:
    assert await manager.validate("0123abcd." + "A" * 43) is None
    assert store.calls == {"get": 1}


async def test_validate_keeps_without_writing(
    manager: SessionManager, store: CountingStore, clock: FrozenClock
) -> None:
    token, record = await manager.create("alice")
    clock.advance(599)
    assert await manager.validate(token) == record
    assert store.calls == {"create": 1, "get": 1}


async def test_validate_renews_once_when_due(
    manager: SessionManager, store: CountingStore, clock: FrozenClock
) -> None:
    token, record = await manager.create("alice")
    clock.advance(600)
    renewed = await manager.validate(token)
    assert renewed == replace(record, last_seen=clock.now(), expires_at=clock.now() + 2 * HOUR)
    assert store.calls == {"create": 1, "get": 1, "touch": 1}
    assert await store.get(record.id, clock.now()) == renewed
    assert await manager.validate(token) == renewed
    assert store.count("touch") == 1


async def test_renewal_keeps_a_busy_session_alive_until_absolute_expiry(
    manager: SessionManager, store: CountingStore, clock: FrozenClock
) -> None:
    token, record = await manager.create("alice")
    while clock.now() < record.absolute_expires_at - 60:
        current = await manager.validate(token)
        assert current is not None
        assert current.expires_at <= record.absolute_expires_at
        clock.advance(60)
    # 5 hours of a request a minute: one renewal per 10 minutes, not 300 writes.
    assert store.count("touch") == 29
    clock.advance(60)
    assert await manager.validate(token) is None


async def test_idle_session_expires(manager: SessionManager, clock: FrozenClock) -> None:
    token, _ = await manager.create("alice")
    clock.advance(2 * HOUR - 1)
    assert await manager.validate(token) is not None
    clock.advance(2 * HOUR)
    assert await manager.validate(token) is None


async def test_expired_record_is_refused_and_deleted(clock: FrozenClock) -> None:
    store = _Unfiltered()
    manager = SessionManager(store, policy=POLICY, clock=clock)
    token, _ = await manager.create("alice")
    clock.advance(2 * HOUR)
    assert await manager.validate(token) is None
    assert len(store) == 0


async def test_cleanup_failure_does_not_matter(clock: FrozenClock) -> None:
    class Flaky(_Unfiltered):
        async def delete(self, session_id: str) -> SessionRecord | None:
            raise StoreError("flaky")

    manager = SessionManager(Flaky(), policy=POLICY, clock=clock)
    token, _ = await manager.create("alice")
    clock.advance(5 * HOUR)
    assert await manager.validate(token) is None


async def test_store_failure_propagates(clock: FrozenClock) -> None:
    manager = SessionManager(_Down(), policy=POLICY, clock=clock)
    token, _ = await manager.create("alice")
    with pytest.raises(StoreUnavailable):
        await manager.validate(token)
    with pytest.raises(StoreUnavailable):
        await manager.revoke(token)


# -- rotate / revoke / list / prune -------------------------------------------------------


async def test_rotate(manager: SessionManager, clock: FrozenClock) -> None:
    token, record = await manager.create("alice", data={"cart": [1]}, user_agent="UA", ip="::1")
    clock.advance(HOUR)
    rotated = await manager.rotate(token)
    assert rotated is not None
    new, moved = rotated
    assert session_id(new) == moved.id
    assert moved == replace(
        record,
        id=moved.id,
        last_seen=clock.now(),
        auth_time=clock.now(),
        expires_at=clock.now() + 2 * HOUR,
    )
    assert moved.absolute_expires_at == record.absolute_expires_at  # no extra lifetime
    assert await manager.validate(token) is None
    assert await manager.validate(new) == moved
    assert await manager.list_user("alice") == [moved]


async def test_rotate_gone_session(manager: SessionManager, clock: FrozenClock) -> None:
    token, _ = await manager.create("alice")
    await manager.revoke(token)
    assert await manager.rotate(token) is None


async def test_rotate_refuses_an_expired_record(clock: FrozenClock) -> None:
    manager = SessionManager(_Unfiltered(), policy=POLICY, clock=clock)
    token, _ = await manager.create("alice")
    clock.advance(5 * HOUR)
    assert await manager.rotate(token) is None


async def test_revoke(manager: SessionManager) -> None:
    token, _ = await manager.create("alice")
    assert await manager.revoke(token) is True
    assert await manager.validate(token) is None
    assert await manager.revoke(token) is False


async def test_revoke_id(manager: SessionManager) -> None:
    token, record = await manager.create("alice")
    assert await manager.revoke_id(record.id) == record
    assert await manager.validate(token) is None
    assert await manager.revoke_id(record.id) is None


async def test_revoke_user_and_list(manager: SessionManager, clock: FrozenClock) -> None:
    records = []
    for _ in range(3):
        records.append((await manager.create("alice"))[1])
        clock.advance(1)
    _, bob = await manager.create("bob")
    assert await manager.list_user("alice") == records
    assert sorted(await manager.revoke_user("alice")) == sorted(r.id for r in records)
    assert await manager.list_user("alice") == []
    assert await manager.list_user("bob") == [bob]


async def test_prune(manager: SessionManager, store: CountingStore, clock: FrozenClock) -> None:
    for _ in range(3):
        await manager.create("alice")
    clock.advance(HOUR)
    _, live = await manager.create("bob")
    clock.advance(HOUR)
    assert await manager.prune(limit=2) == 2
    assert await manager.prune() == 1
    assert await manager.prune() == 0
    assert await manager.list_user("bob") == [live]


# -- update_data --------------------------------------------------------------------------


async def test_update_data(manager: SessionManager, clock: FrozenClock) -> None:
    token, record = await manager.create("alice", data={"n": 1})

    def bump(data: dict[str, Any]) -> None:
        data["n"] += 1

    updated = await manager.update_data(record.id, bump)
    assert updated.data == {"n": 2}
    assert updated.version == 2
    assert await manager.validate(token) == updated


async def test_update_data_of_gone_session(manager: SessionManager) -> None:
    with pytest.raises(InvalidCredentials):
        await manager.update_data(make_record(0.0).id, lambda d: None)


async def test_update_data_gives_up_after_too_many_conflicts(clock: FrozenClock) -> None:
    store = _AlwaysLoses()
    manager = SessionManager(store, policy=POLICY, clock=clock, update_attempts=5)
    _, record = await manager.create("alice")
    calls: list[dict[str, Any]] = []
    with pytest.raises(ConflictError):
        await manager.update_data(record.id, calls.append)
    assert store.updates == 5
    assert len(calls) == 5  # the change is re-applied to fresh data on each attempt


async def test_update_data_retries_on_fresh_data(
    manager: SessionManager, store: CountingStore, clock: FrozenClock
) -> None:
    _, record = await manager.create("alice", data={"items": []})
    raced = False

    def add(data: dict[str, Any]) -> None:
        nonlocal raced
        data["items"].append("mine")
        if not raced:  # another writer lands between our read and our write
            raced = True
            inner = store.inner
            assert isinstance(inner, MemoryStore)
            inner._records[record.id] = record.with_data({"items": ["theirs"]})

    updated = await manager.update_data(record.id, add)
    assert updated.data == {"items": ["theirs", "mine"]}
    assert updated.version == 3
    assert store.count("update") == 2


async def test_failing_change_writes_nothing(manager: SessionManager, clock: FrozenClock) -> None:
    _, record = await manager.create("alice", data={"n": 1})

    def boom(data: dict[str, Any]) -> None:
        data["n"] = 99
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await manager.update_data(record.id, boom)
    assert await manager.list_user("alice") == [record]


# -- revocations are published (issue 12 item 6) -------------------------------------------


async def test_every_revocation_path_publishes(store: CountingStore, clock: FrozenClock) -> None:
    revoked = RevocationSet(retention=timedelta(minutes=6), clock=clock)
    manager = SessionManager(store, policy=POLICY, clock=clock, revocations=revoked)
    assert (manager.revocations, manager.feed) == (revoked, None)
    tokens = [(await manager.create("alice"))[0] for _ in range(4)]
    ids = [session_id(t) or "" for t in tokens]
    assert await manager.revoke(tokens[0])
    assert await manager.revoke_id(ids[1]) is not None
    assert await manager.revoke_user("alice", keep=ids[2]) == [ids[3]]
    assert await manager.revoke_user("alice") == [ids[2]]
    assert all(revoked.is_revoked(sid, clock.now()) for sid in ids)
    # Published even when the store no longer had it: a retry must still reach others.
    again = f"{ids[0][:8]}.{'0' * 64}"
    assert await manager.revoke_id(again) is None
    assert revoked.is_revoked(again, clock.now())


async def test_without_revocations_nothing_is_published(manager: SessionManager) -> None:
    token, _ = await manager.create("alice")
    assert await manager.revoke(token)
    assert (manager.revocations, manager.feed) == (None, None)


def test_revocations_are_set_once(clock: FrozenClock) -> None:
    one = RevocationSet(retention=timedelta(minutes=6), clock=clock)
    other = RevocationSet(retention=timedelta(minutes=6), clock=clock)
    manager = SessionManager(MemoryStore(), clock=clock, revocations=one)
    manager.use_revocations(one)  # the same again: fine
    with pytest.raises(ConfigurationError):
        manager.use_revocations(other)
    with pytest.raises(ConfigurationError):
        SessionManager(MemoryStore(), revocations="redis://x")  # type: ignore[arg-type]
