"""coatcheck.events: the dispatcher, Concealed, and the events each part of the core emits."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import pytest

from coatcheck import events
from coatcheck.auth import (
    Authenticator,
    BearerTransport,
    CookieTransport,
    HybridCookieTransport,
    HybridStrategy,
    JWTStrategy,
    SessionStrategy,
)
from coatcheck.clock import FrozenClock
from coatcheck.csrf import CsrfProtector
from coatcheck.csrf.rules import CsrfRules
from coatcheck.errors import CsrfError, RateLimited, RefreshReuse
from coatcheck.events import (
    EVENT_TYPES,
    Concealed,
    CookieIssued,
    CsrfRefused,
    Event,
    LoggedOut,
    LoginFailed,
    LoginSucceeded,
    LoginThrottled,
    Refreshed,
    RefreshRefused,
    RefreshReuseDetected,
    SessionCreated,
    SessionsRevoked,
)
from coatcheck.policies import CookiePolicy
from coatcheck.ratelimit import Limit, LoginLimiter
from coatcheck.sessions import SessionManager, StoreSessions
from coatcheck.sessions.data import GUEST
from coatcheck.stores import MemoryStore
from coatcheck.tokens import JWTCodec, Key

SECRET = "s" * 32


class Recorder:
    """Every event heard, in order."""

    def __init__(self) -> None:
        self.heard: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.heard.append(event)

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.heard if isinstance(e, kind)]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    record = Recorder()
    with events.subscribe(record):
        yield record


# -- the dispatcher -------------------------------------------------------------------------


def test_nobody_listening_means_no_event_is_wanted() -> None:
    assert not any(events.observed(kind) for kind in EVENT_TYPES)


def test_subscribe_by_kind_base_class_or_all() -> None:
    everything, logins, some = Recorder(), Recorder(), Recorder()
    login = LoginSucceeded(
        mode="session", bound="", persistent=True, user=Concealed("u"), ip=Concealed("")
    )
    csrf = CsrfRefused(reason="csrf_token_missing")
    with (
        events.subscribe(everything),
        events.subscribe(logins, LoginSucceeded),
        events.subscribe(some, Event),
    ):
        assert events.observed(LoginSucceeded)
        assert events.observed(CsrfRefused)
        events.emit(login)
        events.emit(csrf)
    assert everything.heard == [login, csrf]
    assert some.heard == [login, csrf]
    assert logins.heard == [login]
    # Closed: nobody hears anything any more.
    assert not events.observed(LoginSucceeded)
    events.emit(login)
    assert len(everything.heard) == 2


def test_a_failing_observer_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("the audit database is down")

    after = Recorder()
    event = SessionsRevoked(count=1)
    with events.subscribe(broken), events.subscribe(after), caplog.at_level(logging.ERROR):
        events.emit(event)  # never raises
    assert after.heard == [event]
    assert "an event observer failed on SessionsRevoked" in caplog.text


def test_subscriptions_close_once_and_say_whether_they_are_active() -> None:
    subscription = events.subscribe(Recorder(), SessionCreated)
    assert subscription.active
    assert "SessionCreated" in repr(subscription)
    subscription.close()
    subscription.close()
    assert not subscription.active
    assert not events.observed(SessionCreated)


def test_only_callables_and_event_types_subscribe() -> None:
    with pytest.raises(TypeError):
        events.subscribe("not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        events.subscribe(Recorder(), int)  # type: ignore[arg-type]


def test_concealed_never_shows_its_value() -> None:
    user = Concealed("u_0123456789abcdef")
    assert "0123456789abcdef" not in repr(user)
    assert "0123456789abcdef" not in str(user)
    assert "0123456789abcdef" not in f"{user}"
    assert user.reveal() == "u_0123456789abcdef"
    assert user == Concealed("u_0123456789abcdef")
    assert user != Concealed("u_other")
    assert len({user, Concealed("u_0123456789abcdef")}) == 1
    event = LoginSucceeded(
        mode="session", bound="", persistent=False, user=user, ip=Concealed("203.0.113.9")
    )
    # A log line or an error report of the whole event shows neither the user nor the IP.
    assert "0123456789abcdef" not in repr(event)
    assert "203.0.113.9" not in repr(event)
    assert "0123456789abcdef" not in repr(dataclasses.asdict(event))


def test_events_are_frozen() -> None:
    event = SessionCreated(guest=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.guest = False  # type: ignore[misc]


# -- what the core emits ---------------------------------------------------------------------


def _session_auth(clock: FrozenClock) -> Authenticator:
    manager = SessionManager(MemoryStore(), clock=clock)
    cookie = CookieTransport("sid", CookiePolicy(secure=False), clock=clock)
    return Authenticator(SessionStrategy(manager, clock=clock), (cookie, BearerTransport()))


def _hybrid_auth(clock: FrozenClock) -> Authenticator:
    codec = JWTCodec([Key.from_secret("k" * 32, kid="k1")], clock=clock)
    manager = SessionManager(MemoryStore(), clock=clock)
    strategy = HybridStrategy(manager, codec, SECRET, clock=clock)
    cookie = HybridCookieTransport("access", CookiePolicy(secure=False), clock=clock)
    return Authenticator(strategy, (cookie, BearerTransport()))


def _cookies(set_headers: list[tuple[str, str]]) -> str:
    return "; ".join(v.partition(";")[0] for k, v in set_headers if k == "set-cookie")


@pytest.mark.anyio
async def test_login_and_logout(recorder: Recorder, clock: FrozenClock) -> None:
    auth = _session_auth(clock)
    result = await auth.login("u_alice", headers={}, ip="198.51.100.7", persistent=False)
    [created] = recorder.of(SessionCreated)
    assert created == SessionCreated(guest=False)
    [login] = recorder.of(LoginSucceeded)
    assert login == LoginSucceeded(
        mode="session", bound="", persistent=False, user=Concealed("u_alice"),
        ip=Concealed("198.51.100.7"),
    )  # fmt: skip
    [cookie] = recorder.of(CookieIssued)
    assert cookie == CookieIssued(cookie="credential", size=len(_cookies(result.set_headers)))
    await auth.logout({"cookie": _cookies(result.set_headers)})
    assert recorder.of(LoggedOut) == [LoggedOut(mode="session", user=Concealed("u_alice"))]
    assert recorder.of(SessionsRevoked) == [SessionsRevoked(count=1)]
    # A logout without any credential is no logout; a dead one ends nothing.
    await auth.logout({})
    await auth.logout({"cookie": _cookies(result.set_headers)})
    assert recorder.of(LoggedOut)[1:] == [LoggedOut(mode="session", user=None)]
    assert len(recorder.of(SessionsRevoked)) == 1


@pytest.mark.anyio
async def test_a_login_replacing_the_previous_credential_revokes_it(
    recorder: Recorder, clock: FrozenClock
) -> None:
    auth = _session_auth(clock)
    first = await auth.login("u_alice", headers={})
    await auth.login("u_alice", headers={"cookie": _cookies(first.set_headers)})
    assert len(recorder.of(LoginSucceeded)) == 2
    assert recorder.of(SessionsRevoked) == [SessionsRevoked(count=1)]


@pytest.mark.anyio
async def test_jwt_mode_logs_in_without_a_session(recorder: Recorder, clock: FrozenClock) -> None:
    strategy = JWTStrategy(JWTCodec(Key.generate("HS256"), clock=clock), clock=clock)
    auth = Authenticator(strategy, (CookieTransport("tok", CookiePolicy(secure=False)),))
    result = await auth.login("u_bob", headers={})
    assert [type(e) for e in recorder.heard] == [CookieIssued, LoginSucceeded]
    await auth.logout({"cookie": _cookies(result.set_headers)})
    assert recorder.of(LoggedOut) == [LoggedOut(mode="jwt", user=Concealed("u_bob"))]
    assert recorder.of(SessionsRevoked) == []  # nothing to end: a JWT lives until exp


@pytest.mark.anyio
async def test_hybrid_refresh_rotation_replay_refusal_and_reuse(
    recorder: Recorder, clock: FrozenClock
) -> None:
    auth = _hybrid_auth(clock)
    login = await auth.login("u_carol", headers={})
    assert [e.cookie for e in recorder.of(CookieIssued)] == ["credential", "refresh"]  # type: ignore[attr-defined]
    assert login.refresh_token is not None
    first = await auth.refresh_bearer(login.refresh_token, headers={})
    again = await auth.refresh_bearer(login.refresh_token, headers={})  # a racing tab
    assert again.refresh_token == first.refresh_token
    assert recorder.of(Refreshed) == [
        Refreshed(mode="hybrid", credential="refresh_token", rotated=True,
                  user=Concealed("u_carol")),
        Refreshed(mode="hybrid", credential="refresh_token", rotated=False,
                  user=Concealed("u_carol")),
    ]  # fmt: skip
    with pytest.raises(Exception, match="malformed"):
        await auth.refresh_bearer("not-a-refresh-token", headers={})
    assert recorder.of(RefreshRefused) == [
        RefreshRefused(credential="refresh_token", reason="invalid_credentials")
    ]
    assert first.refresh_token is not None
    await auth.refresh_bearer(first.refresh_token, headers={})  # the successor is used
    with pytest.raises(RefreshReuse):
        await auth.refresh_bearer(login.refresh_token, headers={})  # the retired one: theft
    assert recorder.of(RefreshReuseDetected) == [
        RefreshReuseDetected(mode="hybrid", user=Concealed("u_carol"))
    ]
    assert len(recorder.of(RefreshRefused)) == 1  # reuse is its own event
    assert recorder.of(SessionsRevoked) == [SessionsRevoked(count=1)]


@pytest.mark.anyio
async def test_a_browser_refresh_without_its_access_cookie_is_refused(
    recorder: Recorder, clock: FrozenClock
) -> None:
    auth = _hybrid_auth(clock)
    login = await auth.login("u_dave", headers={})
    refresh_cookie = [v for v in _cookies(login.set_headers).split("; ") if "refresh" in v]
    issued, _ = await auth.refresh({"cookie": refresh_cookie[0]})
    assert issued is None
    issued, _ = await auth.refresh({})
    assert issued is None
    assert recorder.of(RefreshRefused) == [
        RefreshRefused(credential="refresh_token", reason="invalid_credentials"),
        RefreshRefused(credential="refresh_token", reason="missing_credentials"),
    ]
    issued, _ = await auth.refresh({"cookie": _cookies(login.set_headers)})
    assert issued is not None
    assert [e.rotated for e in recorder.of(Refreshed)] == [True]  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_guest_sessions_and_their_cookie(recorder: Recorder, clock: FrozenClock) -> None:
    sessions = StoreSessions(
        SessionManager(MemoryStore(), clock=clock), cookie_policy=CookiePolicy(secure=False)
    )
    session = await sessions.open({}, GUEST)
    session["cart"] = ["apple"]
    [(_, set_cookie)] = await sessions.save(session)
    assert recorder.of(SessionCreated) == [SessionCreated(guest=True)]
    assert recorder.of(CookieIssued) == [
        CookieIssued(cookie="session", size=len(set_cookie.partition(";")[0]))
    ]


@pytest.mark.anyio
async def test_failed_and_throttled_logins(recorder: Recorder, clock: FrozenClock) -> None:
    limiter = LoginLimiter(MemoryStore(), per_account=Limit(failures=2), clock=clock)
    for _ in range(2):
        async with limiter.attempt("Alice", "192.0.2.1"):
            pass  # the password was wrong
    with pytest.raises(RateLimited):
        async with limiter.attempt("Alice", "192.0.2.1"):
            pass
    async with limiter.attempt(None, "192.0.2.1"):
        pass  # a registration's password work: not a login
    failed = recorder.of(LoginFailed)
    assert (
        failed
        == [LoginFailed(limiter="login", username=Concealed("Alice"), ip=Concealed("192.0.2.1"))]
        * 2
    )
    [throttled] = recorder.of(LoginThrottled)
    assert throttled == LoginThrottled(
        limiter="login", limit="account", retry_after=1.0, username=Concealed("Alice"),
        ip=Concealed("192.0.2.1"),
    )  # fmt: skip
    # A good password, or one never checked, is no failure.
    other = LoginLimiter(MemoryStore(), clock=clock, namespace="reset")
    async with other.attempt("bob", "192.0.2.2") as attempt:
        await attempt.succeeded()
    with pytest.raises(KeyError):
        async with other.attempt("bob", "192.0.2.2"):
            raise KeyError("the hashing queue was full")
    attempt = await other.reserve("bob", "192.0.2.2")
    attempt.failed()
    attempt.failed()
    assert recorder.of(LoginFailed)[2:] == [
        LoginFailed(limiter="reset", username=Concealed("bob"), ip=Concealed("192.0.2.2"))
    ]


@pytest.mark.anyio
async def test_the_ip_limit_is_named_when_it_throttles(
    recorder: Recorder, clock: FrozenClock
) -> None:
    limiter = LoginLimiter(
        MemoryStore(), per_account=Limit(failures=50), per_ip=Limit(failures=1), clock=clock
    )
    async with limiter.attempt("one", "192.0.2.3"):
        pass
    with pytest.raises(RateLimited):
        async with limiter.attempt("two", "192.0.2.3"):
            pass
    assert [e.limit for e in recorder.of(LoginThrottled)] == ["ip"]  # type: ignore[attr-defined]


def test_csrf_refusals_by_code(recorder: Recorder) -> None:
    rules = CsrfRules(CsrfProtector(SECRET), credential_cookies=("sid",))
    headers = {"host": "app.example", "sec-fetch-site": "cross-site", "origin": "https://evil"}
    with pytest.raises(CsrfError):
        rules.decide("POST", headers, {}, None)
    form = {"host": "app.example", "content-type": "application/x-www-form-urlencoded"}
    check = rules.decide("POST", form, {"sid": "x"}, None)
    assert check is not None
    with pytest.raises(CsrfError):
        rules.verify(check, b"other=1")
    with pytest.raises(CsrfError):
        rules.verify(check, b"csrf_token=" + b"A" * 64)
    assert [e.reason for e in recorder.of(CsrfRefused)] == [  # type: ignore[attr-defined]
        "csrf_cross_origin", "csrf_token_missing", "csrf_token_invalid",
    ]  # fmt: skip
    token, set_cookie = rules.page_token(None, {})
    assert set_cookie is not None
    assert recorder.of(CookieIssued) == [
        CookieIssued(cookie="csrf", size=len(set_cookie.partition(";")[0]))
    ]
    assert token


@pytest.mark.anyio
async def test_a_revoke_of_many_sessions_is_one_event(
    recorder: Recorder, clock: FrozenClock
) -> None:
    manager = SessionManager(MemoryStore(), clock=clock)
    for _ in range(3):
        await manager.create("u_erin")
    _, kept = await manager.create("u_erin")
    assert len(await manager.revoke_user("u_erin", keep=kept.id)) == 3
    assert await manager.revoke_user("u_nobody") == []
    assert recorder.of(SessionsRevoked) == [SessionsRevoked(count=3)]
    assert await manager.revoke_id(kept.id) is not None
    assert recorder.of(SessionsRevoked)[-1] == SessionsRevoked(count=1)
