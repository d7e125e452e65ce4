"""Device Bound Session Credentials end to end: the protocol client from the draft
(tests/dbsc_client.py) against real Starlette and WSGI apps, session and hybrid mode.

The clock is frozen and advanced: a copied cookie stops working once the bound cookie's
lifetime is over, while the client that holds the key refreshes and never notices.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from starlette.testclient import TestClient

from coatcheck.auth.dbsc import DeviceBinding
from coatcheck.errors import ConfigurationError, DeviceBindingRequired
from coatcheck.sessions.dbsc import BINDING_KEY, DbscPolicy

from ..dbsc_apps import BASE, SECRET, Parts, build, flask_app, starlette_app, wsgi_app
from ..dbsc_client import DbscBrowser, DeviceKey, Thief

MODES = ("session", "hybrid")


def _bound_ttl(parts: Parts) -> float:
    if parts.mode == "hybrid":
        return 300.0  # the access token is the bound cookie
    assert parts.binding is not None
    return parts.binding.policy.bound_ttl.total_seconds()


def _past_expiry(parts: Parts) -> float:
    assert parts.binding is not None
    # Past the bound cookie's expiry, its leeway, and (hybrid) the JWT leeway.
    return _bound_ttl(parts) + parts.binding.policy.leeway.total_seconds() + 11


@pytest.fixture(params=MODES)
def parts(request: pytest.FixtureRequest) -> Parts:
    return build(request.param)


@pytest.fixture(params=("asgi", "wsgi", "flask"))
def http(request: pytest.FixtureRequest, parts: Parts) -> Iterator[httpx.Client]:
    if request.param == "asgi":
        with TestClient(starlette_app(parts), base_url=BASE) as client:
            yield client
        return
    app = wsgi_app(parts) if request.param == "wsgi" else flask_app(parts)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url=BASE) as client:
        yield client


def _login(browser: DbscBrowser) -> None:
    response = browser.post("/login")
    assert response.status_code == 200
    assert "secure-session-registration" in response.headers


def test_registration_binds_the_session(parts: Parts, http: httpx.Client) -> None:
    browser = DbscBrowser(http, clock=parts.clock.now)
    _login(browser)
    assert browser.events == [("register", 200)]
    (session,) = browser.sessions.values()
    assert session.refresh_url == parts.binding.refresh_path  # type: ignore[union-attr]
    assert browser.get("/me").json() == {"user": "alice", "via": "cookie"}
    (record,) = parts.store.records()
    assert record.data[BINDING_KEY]["jkt"]


def test_the_key_holder_never_notices_and_a_copy_dies(parts: Parts, http: httpx.Client) -> None:
    browser = DbscBrowser(http, clock=parts.clock.now)
    _login(browser)
    thief = Thief(http, browser.cookie_header())
    # Right after the copy the thief is in: the bound cookie has not run out yet.
    assert thief.get("/me").status_code == 200
    parts.clock.advance(_past_expiry(parts))
    refused = thief.get("/me")
    assert refused.status_code == 401
    for _ in range(3):
        assert browser.get("/me").json()["user"] == "alice"
        parts.clock.advance(_past_expiry(parts))
    assert browser.events.count(("refresh", 200)) == 3
    # Still refused, and the thief cannot refresh: it has the cookies but not the key.
    assert thief.get("/me").status_code == 401
    assert browser.get("/me").status_code == 200


def test_thief_cannot_refresh_without_the_key(parts: Parts, http: httpx.Client) -> None:
    browser = DbscBrowser(http, clock=parts.clock.now)
    _login(browser)
    (session,) = browser.sessions.values()
    thief = Thief(http, browser.cookie_header())
    ask = thief.post(session.refresh_url, {"sec-secure-session-id": session.id})
    assert ask.status_code == 403
    challenge = ask.headers["secure-session-challenge"].split('"')[1]
    forged = DeviceKey("ES256").proof(challenge, with_jwk=False)
    answer = thief.post(session.refresh_url, {
        "sec-secure-session-id": session.id, "secure-session-response": forged})  # fmt: skip
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_dbsc_proof"
    assert "set-cookie" not in answer.headers


def test_long_lived_cookie_alone_is_refused_for_a_bound_session(parts: Parts,
                                                                http: httpx.Client) -> None:
    browser = DbscBrowser(http, clock=parts.clock.now)
    _login(browser)
    assert parts.binding is not None
    bound = parts.binding.bound_cookie_name
    stolen = "; ".join(p for p in browser.cookie_header().split("; ")
                       if not p.startswith(bound + "="))  # fmt: skip
    parts.clock.advance(parts.binding.policy.pending.total_seconds() + 1)
    assert Thief(http, stolen).get("/me").status_code == 401
    if parts.mode == "session":
        # Sent as a bearer token it is still the bound session: refused the same way.
        token = stolen.split("__Host-session=")[1].split(";")[0]
        bearer = http.get("/me", headers={"authorization": f"Bearer {token}"})
        assert bearer.status_code == 401


def test_a_browser_without_dbsc_keeps_todays_behaviour(parts: Parts, http: httpx.Client) -> None:
    browser = DbscBrowser(http, clock=parts.clock.now, dbsc=False)
    browser.post("/login")
    assert browser.events == []
    thief = Thief(http, browser.cookie_header())
    parts.clock.advance(_past_expiry(parts))
    if parts.mode == "session":
        # Unbound: the copied session cookie keeps working, as it always did.
        assert thief.get("/me").status_code == 200
    if parts.mode == "session" or isinstance(http, TestClient):
        # Hybrid mode renews through the middleware's 307 refresh (ASGI only, as before).
        assert browser.get("/me").status_code == 200


def test_logout_ends_the_device_session(parts: Parts, http: httpx.Client) -> None:
    browser = DbscBrowser(http, clock=parts.clock.now)
    _login(browser)
    browser.post("/logout")
    parts.clock.advance(_past_expiry(parts))
    assert browser.get("/me").status_code == 401
    assert browser.sessions == {}
    assert ("refresh", 200) in browser.events  # answered {"continue": false}


def test_sf_string_form_is_read_too(parts: Parts, http: httpx.Client) -> None:
    browser = DbscBrowser(http, clock=parts.clock.now, quoted=True)
    _login(browser)
    parts.clock.advance(_past_expiry(parts))
    assert browser.get("/me").status_code == 200
    assert ("refresh", 200) in browser.events


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_both_algorithms(parts: Parts, http: httpx.Client, alg: str) -> None:
    browser = DbscBrowser(http, clock=parts.clock.now, algorithms=(alg,))
    _login(browser)
    (session,) = browser.sessions.values()
    assert session.key.alg == alg
    parts.clock.advance(_past_expiry(parts))
    assert browser.get("/me").status_code == 200


def test_excluded_paths_are_not_held_back(parts: Parts, http: httpx.Client) -> None:
    browser = DbscBrowser(http, clock=parts.clock.now)
    _login(browser)
    parts.clock.advance(_past_expiry(parts))
    assert browser.get("/static/app.css").status_code == 200
    assert ("refresh", 200) not in browser.events


def test_unbound_policy_limits_browsers_without_dbsc() -> None:
    parts = build("session", policy=DbscPolicy(unbound=timedelta(minutes=1)))
    with TestClient(starlette_app(parts), base_url=BASE) as http:
        plain = DbscBrowser(http, clock=parts.clock.now, dbsc=False)
        plain.post("/login")
        bound = DbscBrowser(http, clock=parts.clock.now)
        _login(bound)
        assert plain.get("/me").status_code == 200
        parts.clock.advance(61)
        assert plain.get("/me").status_code == 401
        assert bound.get("/me").status_code == 200


@pytest.mark.anyio
async def test_require_says_why() -> None:
    parts = build("session")
    assert parts.binding is not None
    result = await parts.authenticator.login("alice", headers={})
    token = result.token
    record = await parts.store.get(result.issued.session_id or "", parts.clock.now())
    assert record is not None
    data = dict(record.data)
    data[BINDING_KEY] = {"jwk": {}, "alg": "ES256", "jkt": "x", "at": 0.0, "ch": 0}
    await parts.store.update(record.with_data(data))
    with pytest.raises(DeviceBindingRequired):
        await parts.authenticator.require({"cookie": f"__Host-session={token}"})


def test_configuration_is_checked_at_start_up() -> None:
    parts = build("session")
    hybrid = build("hybrid")
    with pytest.raises(ConfigurationError):
        DeviceBinding(parts.authenticator.strategy, hybrid.cookie, SECRET)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        DeviceBinding(hybrid.authenticator.strategy, parts.cookie, SECRET)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        DeviceBinding(hybrid.authenticator.strategy, hybrid.cookie, SECRET,  # type: ignore[arg-type]
                      policy=DbscPolicy(refresh_path="/elsewhere"))  # fmt: skip
    with pytest.raises(ConfigurationError):
        DeviceBinding(parts.authenticator.strategy, parts.cookie, "short")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        DbscPolicy(algorithms=("none",))
    with pytest.raises(ConfigurationError):
        DbscPolicy(registration_path='/a"b')


@pytest.mark.parametrize("mode", MODES)
def test_no_store_read_added_between_refreshes(mode: str) -> None:
    """Issue 16's speed promise, counted: a bound browser session costs the store exactly
    what an unbound one does between refreshes (session mode: its one read; hybrid: none)."""
    requests = 50
    reads: dict[bool, int] = {}
    for dbsc in (True, False):
        parts = build(mode, dbsc=dbsc)
        with TestClient(starlette_app(parts), base_url=BASE) as http:
            browser = DbscBrowser(http, clock=parts.clock.now, dbsc=dbsc)
            browser.post("/login")
            assert bool(browser.sessions) is dbsc
            before = (parts.store.reads, parts.store.writes)
            for _ in range(requests):
                assert browser.get("/me").status_code == 200
            reads[dbsc] = parts.store.reads - before[0]
            assert parts.store.writes == before[1]  # and no write either
            if dbsc:
                # What a refresh costs: one read of the session, one compare-and-set.
                parts.clock.advance(_past_expiry(parts))
                before = (parts.store.reads, parts.store.writes)
                assert browser.get("/me").status_code == 200
                refresh_reads = parts.store.reads - before[0]
                assert browser.events[-1] == ("refresh", 200)
    assert reads[True] == reads[False] == (requests if mode == "session" else 0)
    # The refresh reads the session once (and signs the challenge sent ahead of time, so
    # one round trip); in session mode the /me it held back then reads it as usual.
    assert refresh_reads == (2 if mode == "session" else 1)
    assert browser.events.count(("refresh", 403)) == 0


@pytest.fixture(params=["redis", "postgres"])
def real_store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        import secrets

        url: str = request.getfixturevalue("redis_url")
        return f"{url}?prefix=ccdbsc{secrets.token_hex(4)}:"
    postgres: str = request.getfixturevalue("postgres_store_url")
    return postgres


@pytest.mark.parametrize("mode", MODES)
def test_on_the_real_stores(mode: str, real_store_url: str) -> None:
    """Registration, refresh (a compare-and-set on the session's data), replay and theft
    on real Redis and PostgreSQL: the binding lives in the session record they keep."""
    from coatcheck.stores import open_store

    parts = build(mode, store=open_store(real_store_url))
    with TestClient(starlette_app(parts), base_url=BASE) as http:
        browser = DbscBrowser(http, clock=parts.clock.now)
        _login(browser)
        thief = Thief(http, browser.cookie_header())
        for _ in range(3):
            parts.clock.advance(_past_expiry(parts))
            assert browser.get("/me").status_code == 200
            assert thief.get("/me").status_code == 401
        assert browser.events.count(("refresh", 200)) == 3
        (session,) = browser.sessions.values()
        asked = thief.post(session.refresh_url, {"sec-secure-session-id": session.id})
        assert asked.status_code == 403  # a challenge, which the thief cannot sign
        # The browser's cached challenge, signed once and sent twice: the compare-and-set
        # on the session's data keeps its time, so the second is refused.
        assert session.challenge is not None
        proof = session.key.proof(session.challenge, with_jwk=False)
        copy = Thief(http, browser.cookie_header())
        headers = {"sec-secure-session-id": session.id, "secure-session-response": proof}
        assert copy.post(session.refresh_url, headers).status_code == 200
        assert copy.post(session.refresh_url, headers).status_code == 403
        # Its connections belong to the TestClient's event loop: close them there.
        http.portal.call(parts.store.close)
