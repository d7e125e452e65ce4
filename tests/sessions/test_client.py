"""CookieSessions: the mapping in a signed or encrypted cookie, and its honest limits."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from coatcheck.clock import FrozenClock
from coatcheck.cookies import MAX_COOKIE_SIZE
from coatcheck.errors import ConfigurationError, SessionTooLarge
from coatcheck.sessions import GUEST, CookieSessions, Visitor

# The session-data cookie's default name under the default (Secure) policy.
DATA = "__Host-coatcheck_data"

pytestmark = pytest.mark.anyio

OLD = "the first secret of this app, long enough......"
NEW = "the second secret, added to rotate, long enough!"


def _request(headers: list[tuple[str, str]]) -> dict[str, str]:
    pairs = [v.partition(";")[0] for _, v in headers]
    return {"cookie": "; ".join(pairs)}


async def _round(
    sessions: CookieSessions, request: dict[str, str], change: Any = None,
    visitor: Visitor = GUEST, after: Visitor | None = None,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    session = await sessions.open(request, visitor)
    shown = dict(session)
    if change is not None:
        change(session)
    return shown, await sessions.save(session, after)


@pytest.mark.parametrize("encrypt", [False, True], ids=["signed", "encrypted"])
async def test_a_round_trip_and_nothing_sent_when_nothing_changed(
    encrypt: bool, clock: FrozenClock
) -> None:
    sessions = CookieSessions(OLD, encrypt=encrypt, clock=clock)
    shown, headers = await _round(sessions, {}, lambda s: s.update(name="Zoë", cart=[1]))
    assert shown == {}
    assert len(headers) == 1
    set_cookie = headers[0][1]
    assert set_cookie.startswith(DATA + "=")
    assert "Max-Age=1209600" in set_cookie
    assert "HttpOnly" in set_cookie
    clock.advance(60)
    shown, again = await _round(sessions, _request(headers))
    assert shown == {"name": "Zoë", "cart": [1]}
    assert again == []  # unchanged: not re-sent (unlike Starlette's every response)
    value = set_cookie.partition("=")[2].partition(";")[0]
    if encrypt:
        assert value.count(".") == 4
        # No segment reveals the data (a short substring could occur in random base64).
        for segment in value.split("."):
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
            assert "Zoë".encode() not in raw
            assert b'"cart"' not in raw
    else:
        payload = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))
        assert payload["d"] == {"name": "Zoë", "cart": [1]}  # signed, readable by anyone


async def test_tampered_foreign_or_expired_cookies_are_a_fresh_guest(clock: FrozenClock) -> None:
    sessions = CookieSessions(OLD, max_age=timedelta(hours=1), clock=clock)
    _, headers = await _round(sessions, {}, lambda s: s.update(role="user"))
    value = headers[0][1].partition("=")[2].partition(";")[0]
    payload = base64.urlsafe_b64decode(value.split(".")[0] + "==").replace(b"user", b"root")
    forged = base64.urlsafe_b64encode(payload).rstrip(b"=").decode() + value[value.index("."):]
    other = CookieSessions(NEW, clock=clock)
    for bad in (forged, value[:-2] + "AA", "junk", "a.b.c"):
        shown, out = await _round(sessions, {"cookie": f"{DATA}={bad}"})
        assert shown == {}
        assert out
        assert "Max-Age=0" in out[0][1]
    shown, _ = await _round(other, {"cookie": f"{DATA}={value}"})
    assert shown == {}  # another app's secret
    clock.advance(3601)
    shown, out = await _round(sessions, {"cookie": f"{DATA}={value}"})
    assert shown == {}  # past max_age
    assert "Max-Age=0" in out[0][1]


@pytest.mark.parametrize("encrypt", [False, True], ids=["signed", "encrypted"])
async def test_rotation_newest_writes_all_read(encrypt: bool, clock: FrozenClock) -> None:
    before = CookieSessions([OLD], encrypt=encrypt, clock=clock)
    _, headers = await _round(before, {}, lambda s: s.update(a=1))
    after = CookieSessions([OLD, NEW], encrypt=encrypt, clock=clock)
    shown, out = await _round(after, _request(headers), lambda s: s.update(b=2))
    assert shown == {"a": 1}
    only_new = CookieSessions([NEW], encrypt=encrypt, clock=clock)
    shown, _ = await _round(only_new, _request(out))
    assert shown == {"a": 1, "b": 2}  # written with NEW, the newest


async def test_sliding_expiry_reissues_past_half_life_only(clock: FrozenClock) -> None:
    sessions = CookieSessions(OLD, max_age=timedelta(hours=2), clock=clock)
    _, headers = await _round(sessions, {}, lambda s: s.update(a=1))
    clock.advance(3599)
    assert (await _round(sessions, _request(headers)))[1] == []
    clock.advance(2)
    _, renewed = await _round(sessions, _request(headers))
    assert renewed
    assert "Max-Age=7200" in renewed[0][1]
    clock.advance(7000)  # past the first cookie's life, within the renewed one's
    assert (await _round(sessions, _request(renewed)))[0] == {"a": 1}


@pytest.mark.parametrize("encrypt", [False, True], ids=["signed", "encrypted"])
async def test_oversize_data_is_an_error_at_save_never_a_dropped_cookie(
    encrypt: bool, clock: FrozenClock
) -> None:
    sessions = CookieSessions(OLD, encrypt=encrypt, clock=clock)
    session = await sessions.open({})
    session["notes"] = "n" * 3100  # fits 4 KB as JSON, not once base64 and signed
    with pytest.raises(SessionTooLarge) as caught:
        await sessions.save(session)
    assert caught.value.limit == MAX_COOKIE_SIZE
    assert caught.value.size > MAX_COOKIE_SIZE
    assert "StoreSessions" in caught.value.message
    session = await sessions.open({})
    session["notes"] = "n" * 2000
    assert len((await sessions.save(session))[0][1].partition(";")[0]) <= MAX_COOKIE_SIZE


async def test_the_owner_rules_are_the_stores(clock: FrozenClock) -> None:
    sessions = CookieSessions(OLD, clock=clock, on_logout=lambda d: {"lang": d.get("lang")})
    ada = Visitor("ada")
    _, guest = await _round(sessions, {}, lambda s: s.update(cart=["hat"], lang="fr"))
    _, logged_in = await _round(sessions, _request(guest), after=ada)  # login in this request
    assert (await _round(sessions, _request(logged_in), visitor=ada))[0] == {
        "cart": ["hat"], "lang": "fr",
    }  # fmt: skip
    shown, _ = await _round(sessions, _request(logged_in))  # ada's cookie, seen by a guest
    assert shown == {}
    shown, _ = await _round(sessions, _request(logged_in), visitor=Visitor("bob"))
    assert shown == {}
    _, out = await _round(sessions, _request(logged_in), visitor=ada, after=GUEST)
    assert (await _round(sessions, _request(out)))[0] == {"lang": "fr"}
    # A guest's cookie arriving with a login is carried, to a new id.
    shown, carried = await _round(sessions, _request(guest), visitor=ada)
    assert shown == {"cart": ["hat"], "lang": "fr"}
    assert carried
    assert carried[0][1] != guest[0][1]


async def test_guest_cookies_carry_an_id_for_csrf_binding(clock: FrozenClock) -> None:
    sessions = CookieSessions(OLD, clock=clock)
    _, headers = await _round(sessions, {}, lambda s: s.update(a=1))
    first = await sessions.open(_request(headers))
    assert first.binding.startswith("cookie\x00")
    _, again = await _round(sessions, _request(headers), lambda s: s.update(b=2))
    assert (await sessions.open(_request(again))).binding == first.binding


def test_configuration_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        CookieSessions("short")
    with pytest.raises(ConfigurationError):
        CookieSessions(OLD, max_age=timedelta(0))
    with pytest.raises(ConfigurationError):
        CookieSessions(OLD, on_login="keep")  # type: ignore[arg-type]
    assert "signed" in repr(CookieSessions(OLD))
    assert "encrypted" in repr(CookieSessions(OLD, encrypt=True))
