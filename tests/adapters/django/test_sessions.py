"""The session engine keeps Django's SessionBase contract, on every store.

:class:`SessionContract` mirrors Django's own backend suite,
``tests/sessions_tests/tests.py`` (``SessionTestsMixin``, and
``DatabaseSessionTests.test_clearsessions_command`` / ``test_aclear_expired``), test for
test under the same names, written afresh for this engine; it runs on the memory,
SQLite, Redis and PostgreSQL stores. Where the engine deliberately differs from
Django's backends the test says so (a session key must be a coatcheck token, so
Django's ``test_session_key_valid_string_saved`` becomes its opposite). The tests
after it are coatcheck's own: ids hashed at rest, logins stored under the user,
password changes, idle and absolute timeouts, throttled renewal writes.
"""

from __future__ import annotations

import secrets
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import django
import pytest
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import UpdateError
from django.core import management
from django.test import SimpleTestCase, override_settings
from django.utils import timezone

from coatcheck.adapters.django.conf import get_runtime
from coatcheck.adapters.django.sessions import SessionStore
from coatcheck.clock import FrozenClock
from coatcheck.sessions.ids import session_id

_RUN = secrets.token_hex(4)


def _run(coro: Any) -> Any:
    from coatcheck.sync import run_sync

    return run_sync(coro)


def _stored(key: str) -> Any:
    """The record the store holds for a session key (read by its hash), or None."""
    manager = get_runtime().sync.manager
    sid = session_id(key)
    assert sid is not None
    return _run(manager.get_id(sid))


ASYNC_API = pytest.mark.skipif(
    django.VERSION < (5, 0), reason="Django 4.2's SessionBase has no async methods"
)


class SessionContract:
    """Django's SessionTestsMixin, for this engine. Subclasses name the store.

    The ``async`` tests mirror Django 5's; Django 4.2 has no async session API, so
    there they are skipped (with that reason).
    """

    backend = SessionStore
    session: SessionStore

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.session = self.backend()
        self.addCleanup(self.session.delete)  # type: ignore[attr-defined]

    def test_new_session(self) -> None:
        assert self.session.modified is False
        assert self.session.accessed is False

    def test_get_empty(self) -> None:
        assert self.session.get("cat") is None

    @ASYNC_API
    async def test_get_empty_async(self) -> None:
        assert await self.session.aget("cat") is None

    def test_store(self) -> None:
        self.session["cat"] = "dog"
        assert self.session.modified is True
        assert self.session.pop("cat") == "dog"

    @ASYNC_API
    async def test_store_async(self) -> None:
        await self.session.aset("cat", "dog")
        assert self.session.modified is True
        assert await self.session.apop("cat") == "dog"

    def test_pop(self) -> None:
        self.session["some key"] = "exists"
        assert self.session.pop("some key") == "exists"
        assert self.session.accessed is True
        assert self.session.modified is True
        assert self.session.get("some key") is None

    def test_pop_default(self) -> None:
        assert self.session.pop("some key", "does not exist") == "does not exist"
        assert self.session.accessed is True
        assert self.session.modified is False

    def test_pop_no_default_keyerror_raised(self) -> None:
        with pytest.raises(KeyError):
            self.session.pop("some key")

    def test_setdefault(self) -> None:
        assert self.session.setdefault("foo", "bar") == "bar"
        assert self.session.setdefault("foo", "baz") == "bar"
        assert self.session.accessed is True
        assert self.session.modified is True

    def test_update(self) -> None:
        self.session.update({"update key": 1})
        assert self.session.accessed is True
        assert self.session.modified is True
        assert self.session.get("update key", None) == 1

    def test_has_key(self) -> None:
        self.session["some key"] = 1
        self.session.modified = False
        self.session.accessed = False
        assert "some key" in self.session
        assert self.session.accessed is True
        assert self.session.modified is False

    def test_values_keys_items(self) -> None:
        assert list(self.session.values()) == []
        self.session["x"] = 1
        self.session.modified = False
        self.session.accessed = False
        assert list(self.session.keys()) == ["x"]
        assert list(self.session.values()) == [1]
        assert list(self.session.items()) == [("x", 1)]
        assert self.session.accessed is True
        assert self.session.modified is False

    def test_clear(self) -> None:
        self.session["x"] = 1
        self.session.modified = False
        self.session.accessed = False
        assert list(self.session.items()) == [("x", 1)]
        self.session.clear()
        assert list(self.session.items()) == []
        assert self.session.accessed is True
        assert self.session.modified is True

    def test_save(self) -> None:
        self.session.save()
        assert self.session.exists(self.session.session_key) is True

    @ASYNC_API
    async def test_save_async(self) -> None:
        await self.session.asave()
        assert await self.session.aexists(self.session.session_key) is True

    def test_delete(self) -> None:
        self.session.save()
        self.session.delete(self.session.session_key)
        assert self.session.exists(self.session.session_key) is False

    @ASYNC_API
    async def test_delete_async(self) -> None:
        await self.session.asave()
        await self.session.adelete(self.session.session_key)
        assert await self.session.aexists(self.session.session_key) is False

    def test_flush(self) -> None:
        self.session["foo"] = "bar"
        self.session.save()
        prev_key = self.session.session_key
        self.session.flush()
        assert self.session.exists(prev_key) is False
        assert self.session.session_key is None
        assert self.session.modified is True
        assert self.session.accessed is True

    @ASYNC_API
    async def test_flush_async(self) -> None:
        await self.session.aset("foo", "bar")
        await self.session.asave()
        prev_key = self.session.session_key
        await self.session.aflush()
        assert await self.session.aexists(prev_key) is False
        assert self.session.session_key is None

    def test_cycle(self) -> None:
        self.session["a"], self.session["b"] = "c", "d"
        self.session.save()
        prev_key = self.session.session_key
        prev_data = list(self.session.items())
        self.session.cycle_key()
        assert self.session.exists(prev_key) is False
        assert self.session.session_key != prev_key
        assert list(self.session.items()) == prev_data

    @ASYNC_API
    async def test_cycle_async(self) -> None:
        await self.session.aset("a", "c")
        await self.session.aset("b", "d")
        await self.session.asave()
        prev_key = self.session.session_key
        prev_data = list(await self.session.aitems())
        await self.session.acycle_key()
        assert await self.session.aexists(prev_key) is False
        assert self.session.session_key != prev_key
        assert list(await self.session.aitems()) == prev_data

    def test_cycle_with_no_session_cache(self) -> None:
        self.session["a"], self.session["b"] = "c", "d"
        self.session.save()
        prev_data = list(self.session.items())
        self.session = self.backend(self.session.session_key)
        assert hasattr(self.session, "_session_cache") is False
        self.session.cycle_key()
        assert sorted(self.session.items()) == sorted(prev_data)

    def test_save_doesnt_clear_data(self) -> None:
        self.session["a"] = "b"
        self.session.save()
        assert self.session["a"] == "b"

    def test_invalid_key(self) -> None:
        session = self.backend("1")
        session.save()
        assert session.session_key != "1"
        assert session.get("cat") is None
        session.delete()
        session.delete("1")

    @ASYNC_API
    async def test_invalid_key_async(self) -> None:
        session = self.backend("1")
        await session.asave()
        assert session.session_key != "1"
        assert await session.aget("cat") is None
        await session.adelete()

    def test_session_key_empty_string_invalid(self) -> None:
        self.session._session_key = ""
        assert self.session.session_key is None

    def test_session_key_too_short_invalid(self) -> None:
        self.session._session_key = "1234567"
        assert self.session.session_key is None

    def test_session_key_not_a_token_invalid(self) -> None:
        # Django's test_session_key_valid_string_saved accepts any 8 characters; this
        # engine accepts only a coatcheck token, so a guessed or planted key is no key.
        self.session._session_key = "12345678"
        assert self.session.session_key is None

    def test_session_key_is_read_only(self) -> None:
        with pytest.raises(AttributeError):
            self.session.session_key = "x" * 40  # type: ignore[misc]

    def test_default_expiry(self) -> None:
        assert self.session.get_expiry_age() == settings.SESSION_COOKIE_AGE
        self.session.set_expiry(0)
        assert self.session.get_expiry_age() == settings.SESSION_COOKIE_AGE

    def test_custom_expiry_seconds(self) -> None:
        modification = timezone.now()
        self.session.set_expiry(10)
        assert self.session.get_expiry_date(modification=modification) == modification + (
            timedelta(seconds=10)
        )
        assert self.session.get_expiry_age(modification=modification) == 10

    def test_custom_expiry_datetime(self) -> None:
        modification = timezone.now()
        self.session.set_expiry(modification + timedelta(seconds=10))
        assert self.session.get_expiry_date(modification=modification) == modification + (
            timedelta(seconds=10)
        )
        assert self.session.get_expiry_age(modification=modification) == 10

    def test_custom_expiry_reset(self) -> None:
        self.session.set_expiry(None)
        self.session.set_expiry(10)
        self.session.set_expiry(None)
        assert self.session.get_expiry_age() == settings.SESSION_COOKIE_AGE

    def test_get_expire_at_browser_close(self) -> None:
        for at_close in (False, True):
            with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=at_close):
                self.session.set_expiry(10)
                assert self.session.get_expire_at_browser_close() is False
                self.session.set_expiry(0)
                assert self.session.get_expire_at_browser_close() is True
                self.session.set_expiry(None)
                assert self.session.get_expire_at_browser_close() is at_close

    def test_actual_expiry(self) -> None:
        self.session["foo"] = "bar"
        self.session.set_expiry(-timedelta(seconds=10))
        self.session.save()
        # With an expiry date in the past, the session expires instantly.
        new_session = self.backend(self.session.session_key)
        assert "foo" not in new_session
        assert new_session.session_key is None

    @ASYNC_API
    async def test_actual_expiry_async(self) -> None:
        await self.session.aset("foo", "bar")
        await self.session.aset_expiry(-timedelta(seconds=10))
        await self.session.asave()
        new_session = self.backend(self.session.session_key)
        assert await new_session.ahas_key("foo") is False

    def test_session_load_does_not_create_record(self) -> None:
        # Creating session records on load is a DoS vulnerability.
        key = SessionStore().session_key or "x" * 8 + "." + "y" * 43
        session = self.backend(key)
        assert session.load() == {}
        assert session.session_key is None
        assert session.exists(key) is False

    @ASYNC_API
    async def test_session_load_does_not_create_record_async(self) -> None:
        key = "abcdef12." + "y" * 43
        session = self.backend(key)
        assert await session.aload() == {}
        assert session.session_key is None
        assert await session.aexists(key) is False

    def test_session_save_does_not_resurrect_session_logged_out_in_other_context(
        self,
    ) -> None:
        s1 = self.backend()
        s1["test_data"] = "value1"
        s1.save(must_create=True)
        s2 = self.backend(s1.session_key)
        s2.delete()
        s1["test_data"] = "value2"
        with pytest.raises(UpdateError):
            s1.save()
        assert s1.load() == {}

    @ASYNC_API
    async def test_session_asave_does_not_resurrect_session_logged_out_in_other_context(
        self,
    ) -> None:
        s1 = self.backend()
        await s1.aset("test_data", "value1")
        await s1.asave(must_create=True)
        s2 = self.backend(s1.session_key)
        await s2.adelete()
        await s1.aset("test_data", "value2")
        with pytest.raises(UpdateError):
            await s1.asave()
        assert await s1.aload() == {}

    def test_clearsessions_command(self) -> None:
        # DatabaseSessionTests.test_clearsessions_command, counting live sessions
        # through the store's own expiry sweep.
        self.session["foo"] = "bar"
        self.session.set_expiry(3600)
        self.session.save()
        other = self.backend()
        other["foo"] = "bar"
        other.set_expiry(-3600)
        other.save()
        assert self.session.exists(self.session.session_key)
        assert not other.exists(other.session_key)
        before = self.raw_count()
        management.call_command("clearsessions")
        after = self.raw_count()
        if before is not None:
            assert (before, after) == (2, 1)
        assert self.session.exists(self.session.session_key)
        # Nothing is left for a second sweep.
        assert _run(get_runtime().sync.manager.prune()) == 0

    @ASYNC_API
    async def test_aclear_expired(self) -> None:
        await self.session.aset("key", "value")
        await self.session.aset_expiry(3600)
        await self.session.asave()
        other = self.backend()
        await other.aset("key", "value")
        await other.aset_expiry(-3600)
        await other.asave()
        before = self.raw_count()
        await self.session.aclear_expired()
        after = self.raw_count()
        if before is not None:
            assert (before, after) == (2, 1)
        assert await self.session.aexists(self.session.session_key)

    def raw_count(self) -> int | None:
        """Every stored session, expired or not, when the store can tell (else None)."""
        return None


class _WithStore(SessionContract):
    store_url: ClassVar[str]

    def setUp(self) -> None:
        self._override = override_settings(
            COATCHECK={"STORE": self.store_url, "COOKIE_SECURE": False}
        )
        self._override.enable()
        self.addCleanup(self._override.disable)
        super().setUp()


class TestMemoryEngine(_WithStore, SimpleTestCase):
    store_url = "memory://"

    def raw_count(self) -> int | None:
        store = get_runtime().sync.store
        return len(store._records)  # type: ignore[attr-defined]


class TestSQLiteEngine(_WithStore, SimpleTestCase):
    store_url = ""

    @pytest.fixture(autouse=True)
    def _path(self, tmp_path: Path) -> None:
        self.path = tmp_path / "sessions.db"
        self.store_url = f"sqlite:///{self.path}"

    def raw_count(self) -> int | None:
        with sqlite3.connect(self.path) as db:
            tables = [
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            table = next(name for name in tables if "session" in name)
            count: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        return count


class TestRedisEngine(_WithStore, SimpleTestCase):
    store_url = ""

    @pytest.fixture(autouse=True)
    def _url(self, redis_url: str) -> None:
        # A prefix of this run's own: never another test's keys, never a FLUSHDB.
        self.store_url = f"{redis_url}?prefix=ccdj:{_RUN}:{secrets.token_hex(3)}:"


class TestPostgresEngine(_WithStore, SimpleTestCase):
    store_url = ""

    @pytest.fixture(autouse=True)
    def _url(self, postgres_store_url: str) -> None:
        self.store_url = postgres_store_url


# -- coatcheck's own rules, through the engine ----------------------------------------------


@pytest.fixture
def frozen() -> FrozenClock:
    return FrozenClock(1_800_000_000.0)


def _configure(clock: FrozenClock, **more: Any) -> Any:
    return override_settings(
        COATCHECK={"STORE": "memory://", "COOKIE_SECURE": False, "CLOCK": clock, **more}
    )


def test_the_store_holds_only_the_hash_of_the_key(frozen: FrozenClock) -> None:
    with _configure(frozen):
        session = SessionStore()
        session["a"] = 1
        session.save()
        key = session.session_key
        store = get_runtime().sync.store
        ids = list(store._records)  # type: ignore[attr-defined]
        assert ids == [session_id(key)]
        assert key not in repr(store._records)  # type: ignore[attr-defined]
        assert key.split(".", 1)[1] not in ids[0]


def test_a_login_is_stored_under_the_user_on_a_new_key(frozen: FrozenClock) -> None:
    with _configure(frozen):
        session = SessionStore()
        session["cart"] = [1, 2]
        session.save()
        guest_key = session.session_key
        assert _stored(guest_key).user_id == ""
        session[SESSION_KEY] = "42"
        session.save()
        assert session.session_key != guest_key
        assert _stored(guest_key) is None
        record = _stored(session.session_key)
        assert record.user_id == "42"
        assert record.data["cart"] == [1, 2]
        devices = _run(get_runtime().sync.manager.list_user("42"))
        assert [r.id for r in devices] == [record.id]


def test_a_password_change_ends_the_users_other_sessions(frozen: FrozenClock) -> None:
    with _configure(frozen):
        sessions = []
        for _ in range(3):
            session = SessionStore()
            session.update({SESSION_KEY: "7", HASH_SESSION_KEY: "old"})
            session.save()
            sessions.append(session)
        runtime = get_runtime()
        here = sessions[0]
        # update_session_auth_hash(): cycle_key, then the new hash.
        here.cycle_key()
        here[HASH_SESSION_KEY] = "new"
        here.save()
        live = _run(runtime.sync.manager.list_user("7"))
        assert [r.id for r in live] == [session_id(here.session_key)]
        for other in sessions[1:]:
            assert SessionStore(other.session_key).load() == {}
            # Published: processes that check without the store know at once.
            assert runtime.revocations.is_revoked(session_id(other.session_key), frozen.now())


def test_idle_and_absolute_timeouts(frozen: FrozenClock) -> None:
    with _configure(frozen, IDLE_TIMEOUT=600, ABSOLUTE_TIMEOUT=3600, RENEW_INTERVAL=60):
        session = SessionStore()
        session["a"] = 1
        session.save()
        key = session.session_key
        # Active every 5 minutes: the idle expiry slides...
        for _ in range(10):
            frozen.advance(300)
            assert SessionStore(key).load() == {"a": 1}
        # ...until the absolute cap (an hour), whatever the activity.
        frozen.advance(601)
        assert SessionStore(key).load() == {}
        session = SessionStore()
        session["b"] = 2
        session.save()
        frozen.advance(601)  # idle past 10 minutes
        assert SessionStore(session.session_key).load() == {}


def test_renewal_writes_are_throttled(frozen: FrozenClock) -> None:
    with _configure(frozen, RENEW_INTERVAL=3600):
        session = SessionStore()
        session["a"] = 1
        session.save()
        key = session.session_key
        seen = _stored(key).last_seen
        for _ in range(5):
            frozen.advance(60)
            SessionStore(key).load()
        assert _stored(key).last_seen == seen  # reads only: no write per request
        frozen.advance(3600)
        SessionStore(key).load()
        assert _stored(key).last_seen == frozen.now()


def test_a_forged_or_malformed_key_is_a_new_empty_session(frozen: FrozenClock) -> None:
    with _configure(frozen):
        for key in ("", "x", "a" * 5000, "abcdef12.\x00" + "y" * 40, "../../etc", "ø" * 20):
            session = SessionStore(key)
            assert session.load() == {}
            assert session.session_key is None


def test_concurrent_requests_keep_each_others_keys(frozen: FrozenClock) -> None:
    # As every coatcheck session mapping: changes merge key by key (Django's own
    # backends keep only the last writer's whole dict).
    with _configure(frozen):
        session = SessionStore()
        session.update({"keep": 1, "drop": 2, "cart": [1]})
        session.save()
        first, second = SessionStore(session.session_key), SessionStore(session.session_key)
        first.load()
        second.load()
        first["a"] = "from the first tab"
        first["cart"].append(2)
        second["b"] = "from the second tab"
        del second["drop"]
        first.save()
        second.save()
        assert SessionStore(session.session_key).load() == {
            "keep": 1,
            "cart": [1, 2],
            "a": "from the first tab",
            "b": "from the second tab",
        }
        # clear() is the app asking for nothing: it wins over keys added meanwhile.
        third = SessionStore(session.session_key)
        third.load()
        third.clear()
        third["keep"] = 1  # as it was: still kept
        third["only"] = True
        third.save()
        assert SessionStore(session.session_key).load() == {"keep": 1, "only": True}
