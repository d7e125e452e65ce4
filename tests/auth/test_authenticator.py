from __future__ import annotations

from datetime import timedelta

import pytest

from coatcheck.auth import (
    Authenticator,
    BearerTransport,
    CookieTransport,
    JWTStrategy,
    SessionStrategy,
)
from coatcheck.clock import FrozenClock
from coatcheck.errors import (
    ConfigurationError,
    InvalidCredentials,
    MissingCredentials,
    StoreUnavailable,
)
from coatcheck.policies import CookiePolicy, SessionPolicy
from coatcheck.sessions import SessionManager, SessionRecord
from coatcheck.stores import MemoryStore
from coatcheck.tokens import JWTCodec, Key

pytestmark = pytest.mark.anyio

POLICY = SessionPolicy(
    idle_timeout=timedelta(hours=2),
    absolute_timeout=timedelta(days=1),
    renew_interval=timedelta(minutes=10),
)


class DownStore(MemoryStore):
    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        raise StoreUnavailable("the store is down")


def _session_auth(clock: FrozenClock, store: MemoryStore | None = None) -> Authenticator:
    manager = SessionManager(MemoryStore() if store is None else store, policy=POLICY, clock=clock)
    cookie = CookieTransport("sid", CookiePolicy(secure=False), clock=clock)
    return Authenticator(SessionStrategy(manager, clock=clock), (cookie, BearerTransport()))


def _jwt_auth(clock: FrozenClock) -> Authenticator:
    strategy = JWTStrategy(
        JWTCodec(Key.generate("HS256"), clock=clock), ttl=timedelta(hours=1), clock=clock
    )
    cookie = CookieTransport("tok", CookiePolicy(secure=False), clock=clock)
    return Authenticator(strategy, (cookie, BearerTransport()))


def _cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


def test_needs_a_transport() -> None:
    with pytest.raises(ConfigurationError):
        Authenticator(JWTStrategy(JWTCodec(Key.generate("HS256"))), ())


async def test_guest_without_credentials(clock: FrozenClock) -> None:
    auth = _session_auth(clock)
    result = await auth.authenticate({})
    assert result.identity is None
    assert result.set_headers == []
    assert not result.presented
    with pytest.raises(MissingCredentials):
        await auth.require({})


async def test_login_sets_cookie_and_cookie_authenticates(clock: FrozenClock) -> None:
    auth = _session_auth(clock)
    login = await auth.login(
        "u1", headers={"user-agent": "Browser/1"}, data={"name": "Alice"}, ip="10.0.0.1"
    )
    [(name, value)] = login.set_headers
    assert name == "set-cookie"
    assert "Max-Age=7200" in value
    assert _cookie_value(value) == login.token
    clock.advance(1)
    result = await auth.authenticate({"cookie": f"sid={login.token}"})
    assert result.identity is not None
    assert result.identity.via == "cookie"
    assert result.identity.name == "Alice"
    assert result.set_headers == []  # unchanged session: no cookie re-sent
    record = (await auth.strategy.manager.list_user("u1"))[0]  # type: ignore[attr-defined]
    assert (record.user_agent, record.ip) == ("Browser/1", "10.0.0.1")


async def test_bearer_authenticates_and_never_writes_cookies(clock: FrozenClock) -> None:
    auth = _session_auth(clock)
    login = await auth.login("u1", headers={})
    clock.advance(11 * 60)  # renewal due: a cookie would be rewritten, a bearer is not
    result = await auth.authenticate({"authorization": f"Bearer {login.token}"})
    assert result.identity is not None
    assert result.identity.via == "bearer"
    assert result.set_headers == []


async def test_renewal_rewrites_the_persistent_cookie(clock: FrozenClock) -> None:
    auth = _session_auth(clock)
    login = await auth.login("u1", headers={})
    clock.advance(11 * 60)
    result = await auth.authenticate({"cookie": f"sid={login.token}"})
    [(_, value)] = result.set_headers
    assert _cookie_value(value) == login.token
    assert "Max-Age=7200" in value


async def test_remember_me_off_gives_a_browser_session_cookie(clock: FrozenClock) -> None:
    auth = _session_auth(clock)
    login = await auth.login("u1", headers={}, persistent=False)
    [(_, value)] = login.set_headers
    assert "Max-Age" not in value
    assert "Expires" not in value
    clock.advance(11 * 60)
    result = await auth.authenticate({"cookie": f"sid={login.token}"})
    assert result.identity is not None
    assert not result.identity.persistent
    assert result.set_headers == []


@pytest.mark.parametrize(
    "headers",
    [
        {"cookie": "sid=forged"},
        {"cookie": "sid=deadbeef." + "A" * 43},
        {"authorization": "Bearer deadbeef." + "A" * 43},
        {"cookie": "sid=\x00\x01", "authorization": "Bearer \x00"},
    ],
)
async def test_invalid_credentials_make_a_guest(
    clock: FrozenClock, headers: dict[str, str]
) -> None:
    auth = _session_auth(clock)
    result = await auth.authenticate(headers)
    assert result.identity is None
    with pytest.raises((InvalidCredentials, MissingCredentials)):
        await auth.require(headers)


async def test_dead_cookie_is_cleared_and_require_says_invalid(clock: FrozenClock) -> None:
    auth = _session_auth(clock)
    result = await auth.authenticate({"cookie": "sid=deadbeef." + "A" * 43})
    assert result.presented
    [(_, value)] = result.set_headers
    assert value.startswith("sid=; Max-Age=0")
    with pytest.raises(InvalidCredentials):
        await auth.require({"cookie": "sid=deadbeef." + "A" * 43})


async def test_bad_cookie_falls_through_to_a_good_bearer(clock: FrozenClock) -> None:
    auth = _session_auth(clock)
    login = await auth.login("u1", headers={})
    headers = {"cookie": "sid=stale", "authorization": f"Bearer {login.token}"}
    result = await auth.authenticate(headers)
    assert result.identity is not None
    assert result.identity.via == "bearer"
    assert result.set_headers[0][1].startswith("sid=; Max-Age=0")


async def test_store_outage_propagates(clock: FrozenClock) -> None:
    auth = _session_auth(clock, DownStore())
    with pytest.raises(StoreUnavailable):
        await auth.authenticate({"cookie": "sid=deadbeef." + "A" * 43})
    # No credential, no store call: a guest page still renders during an outage.
    assert (await auth.authenticate({})).identity is None


async def test_login_makes_a_new_session_and_revokes_the_old(clock: FrozenClock) -> None:
    auth = _session_auth(clock)
    first = await auth.login("u1", headers={})
    second = await auth.login("u1", headers={"cookie": f"sid={first.token}"})
    assert second.token != first.token
    assert (await auth.authenticate({"cookie": f"sid={first.token}"})).identity is None
    assert (await auth.authenticate({"cookie": f"sid={second.token}"})).identity is not None
    third = await auth.login("u1", headers={"cookie": f"sid={second.token}"},
                             revoke_previous=False)
    assert (await auth.authenticate({"cookie": f"sid={second.token}"})).identity is not None
    assert third.identity.session_id != second.identity.session_id


async def test_logout_revokes_and_clears(clock: FrozenClock) -> None:
    auth = _session_auth(clock)
    login = await auth.login("u1", headers={})
    headers = {"authorization": f"Bearer {login.token}"}
    [(_, value)] = await auth.logout(headers)
    assert value.startswith("sid=; Max-Age=0")
    assert (await auth.authenticate(headers)).identity is None


async def test_jwt_mode_reissues_cookie_past_half_life(clock: FrozenClock) -> None:
    auth = _jwt_auth(clock)
    login = await auth.login("u1", headers={}, data={"name": "Alice"})
    clock.advance(31 * 60)
    by_cookie = await auth.authenticate({"cookie": f"tok={login.token}"})
    [(_, value)] = by_cookie.set_headers
    assert _cookie_value(value) != login.token
    assert "Max-Age=3600" in value
    by_bearer = await auth.authenticate({"authorization": f"Bearer {login.token}"})
    assert by_bearer.identity is not None
    assert by_bearer.set_headers == []


async def test_jwt_logout_clears_the_cookie_but_the_token_lives_on(clock: FrozenClock) -> None:
    auth = _jwt_auth(clock)
    login = await auth.login("u1", headers={})
    [(_, value)] = await auth.logout({"cookie": f"tok={login.token}"})
    assert value.startswith("tok=; Max-Age=0")
    # Stated limitation of jwt mode: the token itself stays valid until exp.
    assert (await auth.authenticate({"cookie": f"tok={login.token}"})).identity is not None


class _NoVia:
    """A third-party strategy whose verify takes the token only."""

    name = "plain"

    def __init__(self, inner: JWTStrategy) -> None:
        self.inner = inner
        self.calls: list[tuple[object, ...]] = []

    async def issue(self, user_id: str, **kwargs: object):  # type: ignore[no-untyped-def]
        return await self.inner.issue(user_id)

    async def verify(self, token: str):  # type: ignore[no-untyped-def]
        self.calls.append((token,))
        return await self.inner.verify(token)

    async def revoke(self, token: str) -> None:
        return None


async def test_the_identity_names_the_transport_with_or_without_a_via_keyword(
    clock: FrozenClock,
) -> None:
    strategy = JWTStrategy(JWTCodec(Key.generate("HS256"), clock=clock), clock=clock)
    token = (await strategy.issue("u1")).token
    bearer = {"authorization": f"Bearer {token}"}
    cookie = {"cookie": f"{CookieTransport().cookie_name}={token}"}
    ours = Authenticator(strategy)
    for headers, via in ((bearer, "bearer"), (cookie, "cookie"), (bearer, "bearer")):
        result = await ours.authenticate(headers)
        assert result.identity is not None
        assert result.identity.via == via
    # A strategy without the keyword is called with the token alone; the identity is
    # copied with the transport's name.
    plain = _NoVia(strategy)
    theirs = Authenticator(plain)  # type: ignore[arg-type]
    result = await theirs.authenticate(bearer)
    assert result.identity is not None
    assert result.identity.via == "bearer"
    assert plain.calls == [(token,)]


# -- the default name gained __Host- (issue 12, item 1): renamed, no one is logged out ----------


async def test_a_cookie_under_the_old_default_name_is_moved_over(clock: FrozenClock) -> None:
    manager = SessionManager(MemoryStore(), policy=POLICY, clock=clock)
    strategy = SessionStrategy(manager, clock=clock)
    # Before the upgrade: the default name was "session" (Secure, unprefixed).
    before = Authenticator(strategy, (CookieTransport("session", clock=clock),))
    old = await before.login("u1", headers={})
    clock.advance(60)
    # After it: CookieTransport() is __Host-session; told its old name, it moves logins.
    after = Authenticator(strategy, (CookieTransport(renamed_from="session", clock=clock),))
    clock.advance(1)
    result = await after.authenticate({"cookie": f"session={old.token}"})
    assert result.identity is not None
    assert result.identity.user_id == "u1"
    moved, expired = result.set_headers
    assert moved[1].startswith(f"__Host-session={old.token}; Max-Age=")
    assert expired[1].startswith("session=; Max-Age=0")
    # Moved, it is read under the new name, and the old name is ignored beside it.
    both = f"session=forged.value; __Host-session={old.token}"
    again = await after.authenticate({"cookie": both})
    assert again.identity is not None
    assert again.set_headers == []


async def test_a_login_after_the_upgrade_is_never_read_under_the_old_name(
    clock: FrozenClock,
) -> None:
    # The new code never writes the old name, so a credential there that is newer than
    # the upgrade was put there by someone else (a tossed cookie): refused and expired.
    manager = SessionManager(MemoryStore(), policy=POLICY, clock=clock)
    cookie = CookieTransport(renamed_from="session", clock=clock)
    after = Authenticator(SessionStrategy(manager, clock=clock), (cookie,))
    clock.advance(1)
    theirs = await after.login("attacker", headers={})
    result = await after.authenticate({"cookie": f"session={theirs.token}"})
    assert result.identity is None
    assert result.presented
    assert [value.split("=")[0] for _, value in result.set_headers] == ["session"]
    # Sent twice under the old name: ambiguous, not even read.
    assert (await after.authenticate({"cookie": "session=a; session=b"})).presented is False
