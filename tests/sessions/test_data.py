"""StoreSessions without a framework: where the data goes, and the edges adapters rarely hit."""

from __future__ import annotations

from typing import Any

import pytest

from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, SessionValueError
from coatcheck.sessions import (
    GUEST,
    CookieSessions,
    SessionManager,
    SessionMapping,
    StoreSessions,
    Visitor,
)
from coatcheck.sessions.data import DATA_KEY, OWNER_KEY
from coatcheck.stores import MemoryStore

pytestmark = pytest.mark.anyio


def _cookie(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {"cookie": headers[0][1].partition(";")[0]}


@pytest.fixture
def manager(clock: FrozenClock) -> SessionManager:
    return SessionManager(MemoryStore(), clock=clock)


async def _guest(sessions: StoreSessions, **data: Any) -> dict[str, str]:
    session = await sessions.open({})
    session.update(data)
    return _cookie(await sessions.save(session))


async def test_a_login_during_the_request_moves_the_data_into_the_login_session(
    manager: SessionManager,
) -> None:
    sessions = StoreSessions(manager)
    request = await _guest(sessions, cart=["hat"])
    session = await sessions.open(request)
    session["note"] = "added in the login request"
    _, login = await manager.create("ada")
    headers = await sessions.save(session, Visitor("ada", login))
    assert headers == [("set-cookie", headers[0][1])]
    assert "Max-Age=0" in headers[0][1]  # the guest cookie goes
    stored = await manager.get_id(login.id)
    assert stored is not None
    assert stored.data[DATA_KEY] == {"cart": ["hat"], "note": "added in the login request"}
    assert len(manager.store) == 1  # type: ignore[arg-type]


async def test_someone_elses_data_is_hidden_and_left_alone(manager: SessionManager) -> None:
    sessions = StoreSessions(manager)
    session = await sessions.open({}, Visitor("ada"))
    session["private"] = "ada's"
    request = _cookie(await sessions.save(session))
    [record] = manager.store._records.values()  # type: ignore[attr-defined]
    assert record.data == {DATA_KEY: {"private": "ada's"}, OWNER_KEY: "ada"}
    for visitor in (GUEST, Visitor("bob")):
        other = await sessions.open(request, visitor)
        assert dict(other) == {}
        assert await sessions.save(other) == []
    assert (await manager.get_id(record.id)) == record
    assert dict(await sessions.open(request, Visitor("ada"))) == {"private": "ada's"}


async def test_a_guest_session_emptied_by_another_tab_starts_again(
    manager: SessionManager,
) -> None:
    sessions = StoreSessions(manager)
    request = await _guest(sessions, a=1)
    slow = await sessions.open(request)
    fast = await sessions.open(request)
    fast.clear()
    assert "Max-Age=0" in (await sessions.save(fast))[0][1]
    slow["b"] = 2
    headers = await sessions.save(slow)
    assert headers
    assert "Max-Age=" in headers[0][1]
    assert "Max-Age=0" not in headers[0][1]
    # Key-level: the other tab's clear() stands, and this one's own change too.
    assert dict(await sessions.open(_cookie(headers))) == {"b": 2}


async def test_changes_to_a_login_session_logged_out_meanwhile_go_with_it(
    manager: SessionManager,
) -> None:
    sessions = StoreSessions(manager)
    token, login = await manager.create("ada")
    session = await sessions.open({}, Visitor("ada", login))
    await manager.revoke(token)  # another tab logged out
    session["late"] = True
    assert await sessions.save(session) == []
    assert len(manager.store) == 0  # type: ignore[arg-type]


async def test_a_hook_that_returns_something_not_json_fails_loudly(
    manager: SessionManager,
) -> None:
    sessions = StoreSessions(manager, on_login=lambda data: {"when": object()})
    session = await sessions.open({})
    session["a"] = 1
    with pytest.raises(SessionValueError, match="when"):
        await sessions.save(session, Visitor("ada"))


async def test_misuse_is_a_configuration_error(manager: SessionManager) -> None:
    with pytest.raises(ConfigurationError):
        StoreSessions(manager, on_logout=None)  # type: ignore[arg-type]
    sessions = StoreSessions(manager)
    with pytest.raises(ConfigurationError, match="not opened"):
        await sessions.save(SessionMapping())
    other = await CookieSessions("a secret of thirty-two bytes or more!").open({})
    with pytest.raises(ConfigurationError, match="not opened"):
        await sessions.save(other)
    assert "cookie_name='__Host-coatcheck_data'" in repr(sessions)
