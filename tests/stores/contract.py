"""The store contract: one suite every :class:`~coatcheck.sessions.SessionStore` inherits.

A store's test module subclasses :class:`StoreContract` and provides a ``store``
fixture (sync or async) that yields a ready store and closes it afterwards::

    from .contract import StoreContract

    class TestRedisStore(StoreContract):
        @pytest.fixture
        async def store(self, redis_url):
            store = RedisStore.from_url(redis_url)
            yield store
            await store.close()

The suite never assumes the store is empty: every test makes fresh random user ids
and session ids, so it runs against a shared Redis database or PostgreSQL table.
Times come from the ``clock`` fixture (a FrozenClock at 1.8e9). To stay safe when
two test processes share a backend, ``delete_expired`` is only ever called with a
``now`` at most one minute past the clock's start; tests that watch a record expire
without pruning work ten days later (``LATER``), beyond any prune's reach.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from coatcheck.adapters.http import error_status
from coatcheck.clock import FrozenClock
from coatcheck.errors import InputError, InvalidText, SessionTooLarge
from coatcheck.policies import SessionPolicy
from coatcheck.sessions import ReplayCache, SessionRecord, SessionStore
from coatcheck.sessions.data import DATA_KEY, StoreSessions
from coatcheck.sessions.ids import new_token, session_id, user_slot
from coatcheck.sessions.manager import DEFAULT_MAX_DATA_SIZE, SessionManager
from coatcheck.sessions.mapping import dump_json, same

__all__ = ["CountingStore", "StoreContract", "make_record", "new_user"]

DAY = 86_400.0
LATER = 10 * DAY

#: One of every kind of JSON value, with keys no ASCII-only store would survive.
EVERY_JSON_TYPE: dict[str, Any] = {
    "null": None,
    "true": True,
    "false": False,
    "zero": 0,
    "one": 1,
    "negative": -42,
    "big": 2**53 + 1,
    "bigger": -(2**63),
    "float": 1.5,
    "tenth": 0.1,
    "tiny": 1e-7,
    "huge": 1.7976931348623157e308,
    "integral_float": 3.0,
    "text": "plain",
    "empty_text": "",
    "escapes": 'quote " backslash \\ newline \n tab \t \u2028 \u2029 \x7f',
    "unicode": "Zoë Ångström 東京 🧥 \U0010ffff",
    "empty_list": [],
    "empty_object": {},
    "list": [None, True, 0, -1.25, "x", [], {}, [[["deep"]]]],
    "object": {"nested": {"deeper": {"deepest": [1, {"k": "v"}]}}},
    "東京": "unicode key",
    "🧥 coat": {"ключ": "значение", "": "empty key"},
    "with space and \"quotes\"": 1,
    "{hash}tag": "braces in a key",
}


def new_user(prefix: str = "user") -> str:
    """A user id no other test (or earlier run) has used."""
    return f"{prefix}-{secrets.token_hex(8)}"


def make_record(now: float, user_id: str | None = None, **fields: Any) -> SessionRecord:
    """A live record for ``user_id`` (a new user when omitted) made at ``now``."""
    user = user_id if user_id is not None else new_user()
    sid = session_id(new_token(user))
    if sid is None:  # pragma: no cover - new_token always makes a well-formed token
        raise RuntimeError("new_token made a malformed token")
    values: dict[str, Any] = {
        "id": sid,
        "user_id": user,
        "created_at": now,
        "last_seen": now,
        "expires_at": now + DAY,
        "absolute_expires_at": now + 30 * DAY,
        "auth_time": now,
        "data": {},
        "user_agent": "pytest",
        "ip": "127.0.0.1",
        "version": 1,
    }
    values.update(fields)
    return SessionRecord(**values)


def _assert_same_json(got: Any, expected: dict[str, Any]) -> None:
    """Each value keeps its JSON type (dict equality would say True == 1 == 1.0).

    One allowance: a float of 1e16 or more is an integral number, and PostgreSQL's
    ``jsonb`` (a decimal) hands back the JSON number written (``1.7976931348623157e+308``)
    without a fraction, so as a Python int that reads back as the very same float;
    JSON itself has one kind of number.
    """
    assert set(got) == set(expected)
    for key, value in expected.items():
        if isinstance(value, float) and abs(value) >= 1e16:
            assert isinstance(got[key], (int, float)), key
            assert float(got[key]) == value, key
        else:
            assert same(got[key], value), key


class CountingStore:
    """Wraps a store and counts the calls made to each method (reads and writes)."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def count(self, name: str) -> int:
        return self.calls.get(name, 0)

    @property
    def writes(self) -> int:
        return sum(n for name, n in self.calls.items() if name not in ("get", "list_user"))

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        self._count("get")
        return await self.inner.get(session_id, now)

    async def create(self, record: SessionRecord) -> None:
        self._count("create")
        await self.inner.create(record)

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        self._count("touch")
        await self.inner.touch(session_id, last_seen, expires_at)

    async def update(self, record: SessionRecord) -> bool:
        self._count("update")
        return await self.inner.update(record)

    async def delete(self, session_id: str) -> SessionRecord | None:
        self._count("delete")
        return await self.inner.delete(session_id)

    async def delete_user(self, user_id: str) -> list[str]:
        self._count("delete_user")
        return await self.inner.delete_user(user_id)

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        self._count("list_user")
        return await self.inner.list_user(user_id, now)

    async def delete_expired(self, now: float, limit: int | None = None) -> int:
        self._count("delete_expired")
        return await self.inner.delete_expired(now, limit)

    async def remember_once(self, key: str, ttl: float, now: float) -> bool:
        self._count("remember_once")
        return await self.inner.remember_once(key, ttl, now)  # type: ignore[attr-defined,no-any-return]

    async def close(self) -> None:
        await self.inner.close()


class StoreContract:
    """Behaviour every session store shares. Subclasses provide the ``store`` fixture."""

    pytestmark = pytest.mark.anyio

    #: Stores whose entries expire by the backend's own clock (Redis) instead of the
    #: caller's ``now``: the replay-expiry test then waits for the backend.
    expires_by_own_clock = False

    @pytest.fixture
    def store(self) -> SessionStore:
        raise NotImplementedError("a StoreContract subclass must provide a `store` fixture")

    @pytest.fixture
    def second_store(self, store: SessionStore) -> SessionStore:
        """Another instance on the same data, as a second app process would open it.

        Stores whose data can be shared (a file, a server) override this with a new
        instance (own connections); the default is the same instance.
        """
        return store

    # -- get / create ---------------------------------------------------------------------

    async def test_get_unknown_returns_none(self, store: SessionStore, clock: FrozenClock) -> None:
        record = make_record(clock.now())
        assert await store.get(record.id, clock.now()) is None

    async def test_create_then_get_round_trips_every_field(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        now = clock.now()
        record = make_record(
            now,
            created_at=now - 120.5,
            last_seen=now - 60.25,
            expires_at=now + 3 * DAY + 0.75,
            absolute_expires_at=now + 20 * DAY + 0.5,
            auth_time=now - 300.125,
            data={"cart": [1, 2, {"sku": "A-1"}], "flag": True, "none": None, "n": 1.5},
            user_agent="Mozilla/5.0 (X11; Linux x86_64)",
            ip="2001:db8::1",
            version=7,
        )
        await store.create(record)
        got = await store.get(record.id, now)
        assert got == record
        assert isinstance(got.data, dict)

    async def test_records_are_independent(self, store: SessionStore, clock: FrozenClock) -> None:
        user = new_user()
        first = make_record(clock.now(), user, data={"n": 1})
        second = make_record(clock.now(), user, data={"n": 2})
        await store.create(first)
        await store.create(second)
        assert await store.get(first.id, clock.now()) == first
        assert await store.get(second.id, clock.now()) == second

    async def test_unicode_and_300_byte_payload_round_trip(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        user = new_user("usér-Zoë-東京")
        data = {
            "name": "Zoë Ångström 🧥",
            "city": "東京",
            "quote": 'He said "hi"\n\t\\ and left \u2028',
            "blob": secrets.token_hex(150),  # 300 bytes
        }
        record = make_record(clock.now(), user, data=data, user_agent="Safari/17 ☕", ip="::1")
        await store.create(record)
        assert await store.get(record.id, clock.now()) == record
        assert await store.list_user(user, clock.now()) == [record]

    async def test_every_json_type_round_trips(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        record = make_record(clock.now(), data=EVERY_JSON_TYPE)
        await store.create(record)
        got = await store.get(record.id, clock.now())
        assert got is not None
        _assert_same_json(got.data, EVERY_JSON_TYPE)
        changed = record.with_data({**EVERY_JSON_TYPE, "list": [False, 1.0, 2]})
        assert await store.update(changed)
        got = await store.get(record.id, clock.now())
        assert got is not None
        _assert_same_json(got.data, changed.data)

    async def test_data_at_the_size_limit_round_trips_and_more_is_refused(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        manager = SessionManager(store, clock=clock)
        assert manager.max_data_size == DEFAULT_MAX_DATA_SIZE == 64 * 1024
        # {"blob":"..."} is 11 bytes of JSON around the text; "é" is 2 bytes of UTF-8.
        blob = "é" * 100 + "x" * (DEFAULT_MAX_DATA_SIZE - 11 - 200)
        data = {"blob": blob}
        assert len(dump_json(data)) == DEFAULT_MAX_DATA_SIZE
        token, record = await manager.create(new_user(), data=data)
        assert await manager.validate(token) == record
        with pytest.raises(SessionTooLarge) as caught:
            await manager.update_data(record.id, lambda d: d.update(blob=blob + "x"))
        assert caught.value.size == DEFAULT_MAX_DATA_SIZE + 1
        assert caught.value.limit == DEFAULT_MAX_DATA_SIZE
        assert "max_data_size" in caught.value.message
        assert await manager.validate(token) == record  # nothing was written
        with pytest.raises(SessionTooLarge):
            await manager.create(new_user(), data={"blob": blob + "x"})
        small = SessionManager(store, clock=clock, max_data_size=100)
        with pytest.raises(SessionTooLarge):
            await small.create("", data={"blob": "x" * 100})

    @pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b", "\udfff"], ids=["nul", "high", "low"])
    async def test_text_no_store_can_keep_is_bad_input_not_a_store_error(
        self, store: SessionStore, clock: FrozenClock, bad: str
    ) -> None:
        # Regression: a NUL reached PostgreSQL (StoreError, a 503) and a lone surrogate
        # SQLite (UnicodeEncodeError, a 500); other stores kept them. The same 400 on all.
        manager = SessionManager(store, clock=clock)
        token, record = await manager.create(new_user(), data={"ok": ["fine"]})
        attempts: list[Any] = [
            lambda: manager.create(bad),
            lambda: manager.create(new_user(), user_agent=bad),
            lambda: manager.create(new_user(), ip=bad),
            lambda: manager.create(new_user(), data={bad: 1}),
            lambda: manager.create(new_user(), data={"k": [{"deep": bad}]}),
            lambda: manager.update_data(record.id, lambda d: d.update({bad: 1})),
            lambda: manager.update_data(record.id, lambda d: d.update(k={"x": bad})),
            lambda: manager.list_user(bad),
            lambda: manager.revoke_user(bad),
            lambda: manager.revoke_id(bad),
            lambda: manager.get_id(bad),
        ]
        for attempt in attempts:
            with pytest.raises(InvalidText) as caught:
                await attempt()
            assert isinstance(caught.value, InputError)
            assert error_status(caught.value) == 400
            assert bad not in str(caught.value)
        assert await manager.validate(token) == record  # nothing was written
        assert await manager.list_user(record.user_id) == [record]

    # -- guests -----------------------------------------------------------------------------

    async def test_guest_sessions_belong_to_no_user(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        manager = SessionManager(store, clock=clock)
        guests = [await manager.create("", data={DATA_KEY: {"n": i}}) for i in range(8)]
        user = new_user()
        _, login = await manager.create(user)
        for token, record in guests:
            assert record.user_id == ""
            assert await manager.validate(token) == record
        # Random slots, so that guests spread over a cluster's slots.
        assert len({record.id[:8] for _, record in guests}) > 1
        assert user_slot("") not in {record.id[:8] for _, record in guests}
        assert await store.list_user("", clock.now()) == []
        assert await store.delete_user("") == []
        assert await manager.revoke_user("") == []
        for token, record in guests:
            assert await manager.validate(token) == record
        assert await store.list_user(user, clock.now()) == [login]
        # A guest's data changes like anyone's (compare-and-set), and it can go.
        token, record = guests[0]
        updated = await manager.update_data(record.id, lambda d: d.update(extra=True))
        assert updated.user_id == ""
        assert updated.data["extra"] is True
        assert await store.list_user("", clock.now()) == []
        assert await store.delete(record.id) == updated
        assert await manager.validate(token) is None

    async def test_fifty_concurrent_requests_each_adding_a_key_lose_nothing(
        self, store: SessionStore, second_store: SessionStore, clock: FrozenClock
    ) -> None:
        # Two instances (two app processes' pools), the requests split between them.
        backends = [StoreSessions(SessionManager(s, clock=clock)) for s in (store, second_store)]
        first = await backends[0].open({})
        first["start"] = True
        set_cookie = await backends[0].save(first)
        request = {"cookie": set_cookie[0][1].partition(";")[0]}

        async def add(i: int) -> None:
            backend = backends[i % 2]
            session = await backend.open(request)
            await asyncio.sleep(0)  # every request reads before any saves: all race
            session[f"k{i}"] = i
            assert await backend.save(session) == []

        await asyncio.gather(*(add(i) for i in range(50)))
        final = await backends[1].open(request)
        assert dict(final) == {"start": True, **{f"k{i}": i for i in range(50)}}

    # -- expiry -----------------------------------------------------------------------------

    async def test_get_after_idle_expiry_returns_none(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        now = clock.now() + LATER
        record = make_record(now, expires_at=now + 10.0)
        await store.create(record)
        assert await store.get(record.id, now + 9.5) == record
        assert await store.get(record.id, now + 10.0) is None
        assert await store.get(record.id, now + 11.0) is None

    async def test_get_after_absolute_expiry_returns_none(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        now = clock.now() + LATER
        # The idle expiry is normally capped at the absolute one; a store must still
        # honour the absolute expiry on its own (SessionRecord.is_expired checks both).
        record = make_record(now, expires_at=now + DAY, absolute_expires_at=now + 10.0)
        await store.create(record)
        assert await store.get(record.id, now + 9.0) == record
        assert await store.get(record.id, now + 10.0) is None

    async def test_touch_cannot_outlive_absolute_expiry(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        now = clock.now() + LATER
        record = make_record(now, expires_at=now + 50.0, absolute_expires_at=now + 50.0)
        await store.create(record)
        await store.touch(record.id, now + 40.0, now + 50.0)
        assert await store.get(record.id, now + 49.0) is not None
        assert await store.get(record.id, now + 50.0) is None

    # -- touch ------------------------------------------------------------------------------

    async def test_touch_updates_renewal_fields_only(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        now = clock.now() + LATER
        record = make_record(now, data={"a": 1}, version=3, expires_at=now + 100.0)
        await store.create(record)
        await store.touch(record.id, now + 50.0, now + 150.0)
        got = await store.get(record.id, now + 120.0)
        assert got == replace(record, last_seen=now + 50.0, expires_at=now + 150.0)

    async def test_touch_of_missing_session_is_ignored(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        record = make_record(clock.now())
        await store.touch(record.id, clock.now(), clock.now() + DAY)
        assert await store.get(record.id, clock.now()) is None
        assert await store.list_user(record.user_id, clock.now()) == []

    # -- update (compare-and-set) -----------------------------------------------------------

    async def test_update_with_next_version_writes(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        record = make_record(clock.now(), data={"a": 1})
        await store.create(record)
        changed = record.with_data({"a": 2, "b": "x"})
        assert await store.update(changed) is True
        assert await store.get(record.id, clock.now()) == changed
        assert await store.list_user(record.user_id, clock.now()) == [changed]

    async def test_update_with_stale_version_changes_nothing(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        record = make_record(clock.now(), data={"a": 1})
        await store.create(record)
        winner = record.with_data({"a": "winner"})
        loser = record.with_data({"a": "loser"})
        assert await store.update(winner) is True
        assert await store.update(loser) is False
        assert await store.get(record.id, clock.now()) == winner
        # Neither an older nor a skipped-ahead version may land.
        assert await store.update(record) is False
        assert await store.update(replace(winner, version=winner.version + 2)) is False
        assert await store.get(record.id, clock.now()) == winner

    async def test_update_of_missing_session_returns_false(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        record = make_record(clock.now())
        assert await store.update(record.with_data({"a": 1})) is False
        assert await store.get(record.id, clock.now()) is None
        assert await store.list_user(record.user_id, clock.now()) == []

    async def test_many_concurrent_writers_lose_nothing(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        manager = SessionManager(store, clock=clock)
        token, record = await manager.create(new_user(), data={"start": True})
        writers = 20

        def adder(i: int) -> Any:
            def change(data: dict[str, Any]) -> None:
                data[f"k{i}"] = i

            return change

        results = await asyncio.gather(
            *(manager.update_data(record.id, adder(i)) for i in range(writers))
        )
        final = await store.get(record.id, clock.now())
        assert final is not None
        assert final.data == {"start": True, **{f"k{i}": i for i in range(writers)}}
        assert final.version == record.version + writers
        assert sorted(r.version for r in results) == list(
            range(record.version + 1, record.version + writers + 1)
        )
        assert await manager.validate(token) == final

    async def test_concurrent_writers_through_two_store_instances_lose_nothing(
        self, store: SessionStore, second_store: SessionStore, clock: FrozenClock
    ) -> None:
        # Two instances (two pools or connections): what two app processes would have.
        managers = [
            SessionManager(s, clock=clock, update_attempts=200) for s in (store, second_store)
        ]
        _, record = await managers[0].create(new_user(), data={"n": 0})
        writers = 40

        def adder(i: int) -> Any:
            def change(data: dict[str, Any]) -> None:
                data[f"w{i}"] = i
                data["n"] += 1

            return change

        await asyncio.gather(
            *(managers[i % 2].update_data(record.id, adder(i)) for i in range(writers))
        )
        final = await second_store.get(record.id, clock.now())
        assert final is not None
        assert final.data == {"n": writers, **{f"w{i}": i for i in range(writers)}}
        assert final.version == record.version + writers

    # -- delete -----------------------------------------------------------------------------

    async def test_delete_returns_record_and_unindexes_it(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        user = new_user()
        gone = make_record(clock.now(), user, data={"x": 1})
        kept = make_record(clock.now() + 1, user)
        await store.create(gone)
        await store.create(kept)
        assert await store.delete(gone.id) == gone
        assert await store.get(gone.id, clock.now()) is None
        assert await store.list_user(user, clock.now() + 2) == [kept]
        assert await store.delete(gone.id) is None

    async def test_delete_unknown_returns_none(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        assert await store.delete(make_record(clock.now()).id) is None

    async def test_delete_user_removes_all_and_leaves_others(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        user, other = new_user(), new_user()
        mine = [make_record(clock.now() + i, user) for i in range(3)]
        theirs = make_record(clock.now(), other)
        for record in [*mine, theirs]:
            await store.create(record)
        removed = await store.delete_user(user)
        assert sorted(removed) == sorted(r.id for r in mine)
        for record in mine:
            assert await store.get(record.id, clock.now()) is None
        assert await store.list_user(user, clock.now()) == []
        assert await store.get(theirs.id, clock.now()) == theirs
        assert await store.list_user(other, clock.now()) == [theirs]
        assert await store.delete_user(user) == []

    async def test_delete_user_unknown_returns_empty(self, store: SessionStore) -> None:
        assert await store.delete_user(new_user()) == []

    # -- list_user --------------------------------------------------------------------------

    async def test_list_user_is_live_sessions_oldest_first(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        now = clock.now() + LATER
        user = new_user()
        middle = make_record(now - 20, user, user_agent="middle")
        newest = make_record(now - 10, user, user_agent="newest")
        oldest = make_record(now - 30, user, user_agent="oldest")
        expired = make_record(now - 40, user, expires_at=now - 1)
        stranger = make_record(now - 50, new_user())
        for record in (middle, newest, expired, oldest, stranger):
            await store.create(record)
        assert await store.list_user(user, now) == [oldest, middle, newest]
        assert await store.list_user(user, now - 5) == [expired, oldest, middle, newest]
        assert await store.list_user(new_user(), now) == []

    # -- delete_expired ---------------------------------------------------------------------

    async def _expired_and_live(
        self, store: SessionStore, clock: FrozenClock, count: int
    ) -> tuple[list[SessionRecord], list[SessionRecord], float]:
        base = clock.now()
        user = new_user()
        expired = [
            make_record(base - 100 + i, user, expires_at=base + 10.0 + i) for i in range(count)
        ]
        live = [make_record(base - 50 + i, user) for i in range(2)]
        for record in [*expired, *live]:
            await store.create(record)
        return expired, live, base + 30.0

    async def test_delete_expired_removes_only_expired(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        expired, live, now = await self._expired_and_live(store, clock, 4)
        assert await store.delete_expired(now) >= len(expired)
        before = clock.now()  # a time when all of them were still live
        for record in expired:
            assert await store.get(record.id, before) is None
        for record in live:
            assert await store.get(record.id, now) == record
        assert await store.list_user(live[0].user_id, before) == live
        # Nothing is left to remove for this user; others' leftovers may still go.
        for record in expired:
            assert await store.delete(record.id) is None

    async def test_delete_expired_honours_limit(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        expired, live, now = await self._expired_and_live(store, clock, 5)
        assert await store.delete_expired(now, limit=2) == 2
        for _ in range(10_000):  # drain, in batches, whatever older runs left behind
            if await store.delete_expired(now, limit=50) == 0:
                break
        assert await store.delete_expired(now, limit=2) == 0
        before = clock.now()
        for record in expired:
            assert await store.get(record.id, before) is None
        assert await store.list_user(live[0].user_id, before) == live

    async def test_delete_expired_with_nothing_expired(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        record = make_record(clock.now())
        await store.create(record)
        await store.delete_expired(clock.now())
        assert await store.get(record.id, clock.now()) == record

    # -- through the manager ----------------------------------------------------------------

    async def test_manager_renews_at_most_once_per_interval(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        policy = SessionPolicy(
            idle_timeout=timedelta(days=1),
            absolute_timeout=timedelta(days=30),
            renew_interval=timedelta(hours=1),
        )
        counting = CountingStore(store)
        manager = SessionManager(counting, policy=policy, clock=clock)
        token, created = await manager.create(new_user())
        assert counting.writes == 1

        for _ in range(11):  # 55 minutes of requests every 5 minutes: no write
            clock.advance(300)
            assert await manager.validate(token) is not None
        assert counting.count("touch") == 0
        assert counting.count("get") == 11

        clock.advance(300)  # an hour since the last write: exactly one renewal
        renewed = await manager.validate(token)
        assert renewed is not None
        assert renewed.last_seen == clock.now()
        assert renewed.expires_at == clock.now() + DAY
        assert counting.count("touch") == 1
        assert await store.get(created.id, clock.now()) == renewed

        for _ in range(10):
            clock.advance(60)
            assert await manager.validate(token) is not None
        assert counting.count("touch") == 1
        assert counting.count("get") == 22
        assert counting.writes == 2

    async def test_manager_session_expires_when_idle(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        policy = SessionPolicy(idle_timeout=timedelta(days=1), renew_interval=timedelta(hours=1))
        manager = SessionManager(store, policy=policy, clock=clock)
        token, _ = await manager.create(new_user())
        clock.advance(DAY - 1)
        assert await manager.validate(token) is not None  # renews: a day from now
        clock.advance(DAY - 1)
        assert await manager.validate(token) is not None
        clock.advance(DAY)
        assert await manager.validate(token) is None

    async def test_manager_create_validate_revoke(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        manager = SessionManager(store, clock=clock)
        user = new_user()
        token, record = await manager.create(user, data={"k": "v"}, user_agent="ua", ip="10.0.0.1")
        assert await manager.validate(token) == record
        assert await manager.list_user(user) == [record]
        assert await manager.revoke(token) is True
        assert await manager.validate(token) is None
        assert await manager.revoke(token) is False

    async def test_manager_rotate_moves_session_to_new_id(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        manager = SessionManager(store, clock=clock)
        user = new_user()
        token, record = await manager.create(user, data={"cart": [1]})
        rotated = await manager.rotate(token)
        assert rotated is not None
        new_token_, moved = rotated
        assert new_token_ != token
        assert moved.id != record.id
        assert moved.data == record.data
        assert await manager.validate(token) is None
        assert await manager.validate(new_token_) == moved
        assert await manager.list_user(user) == [moved]

    async def test_manager_revoke_user(self, store: SessionStore, clock: FrozenClock) -> None:
        manager = SessionManager(store, clock=clock)
        user = new_user()
        tokens = [(await manager.create(user))[0] for _ in range(3)]
        other_token, _ = await manager.create(new_user())
        assert len(await manager.revoke_user(user)) == 3
        for token in tokens:
            assert await manager.validate(token) is None
        assert await manager.validate(other_token) is not None

    # -- one-time values (ReplayCache) --------------------------------------------------------

    async def test_store_is_a_replay_cache(self, store: SessionStore) -> None:
        assert isinstance(store, ReplayCache)

    async def test_remember_once_answers_true_once(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        cache = _replay(store)
        key, other = _key(), _key()
        assert await cache.remember_once(key, 60.0, clock.now()) is True
        assert await cache.remember_once(key, 60.0, clock.now()) is False
        assert await cache.remember_once(key, 60.0, clock.now() + 30) is False
        assert await cache.remember_once(other, 60.0, clock.now()) is True

    async def test_remember_once_forgets_after_ttl(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        cache = _replay(store)
        key = _key()
        ttl = 0.2 if self.expires_by_own_clock else 60.0
        assert await cache.remember_once(key, ttl, clock.now()) is True
        later = clock.now() + ttl + 1
        deadline = time.monotonic() + 5
        while not await cache.remember_once(key, ttl, later):
            # Only a backend with its own clock gets here: wait for it to expire the key.
            assert self.expires_by_own_clock
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert await cache.remember_once(key, ttl, later) is False

    async def test_concurrent_remember_once_lets_exactly_one_through(
        self, store: SessionStore, second_store: SessionStore, clock: FrozenClock
    ) -> None:
        # Two instances: what two app processes replaying one DPoP proof would do.
        caches = [_replay(store), _replay(second_store)]
        key = _key()
        answers = await asyncio.gather(
            *(caches[i % 2].remember_once(key, 60.0, clock.now()) for i in range(40))
        )
        assert answers.count(True) == 1

    async def test_remember_once_leaves_sessions_alone(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        record = make_record(clock.now())
        await store.create(record)
        assert await _replay(store).remember_once(record.id, 60.0, clock.now()) is True
        assert await store.get(record.id, clock.now()) == record
        assert await store.delete_expired(clock.now() + 30) == 0
        assert await store.get(record.id, clock.now()) == record

    async def test_delete_expired_keeps_live_values(
        self, store: SessionStore, clock: FrozenClock
    ) -> None:
        cache = _replay(store)
        spent, live = _key(), _key()
        assert await cache.remember_once(spent, 10.0, clock.now()) is True
        assert await cache.remember_once(live, 600.0, clock.now()) is True
        await store.delete_expired(clock.now() + 20)
        assert await cache.remember_once(live, 600.0, clock.now() + 20) is False
        # Judged by the caller's clock (a backend with its own still holds it 10 s).
        spent_again = await cache.remember_once(spent, 10.0, clock.now() + 20)
        assert spent_again is not self.expires_by_own_clock


def _key() -> str:
    return "t:" + secrets.token_hex(16)


def _replay(store: SessionStore) -> ReplayCache:
    assert isinstance(store, ReplayCache)
    return store
