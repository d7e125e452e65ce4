"""``coatcheck demo --metrics``: the scrape after a flow, and no secret in any label or event.

The no-leak test runs every flow the demo has (form and API logins, a DPoP-bound login,
refreshes, reuse, guest data, CSRF refusals, throttling, the devices page, logout) in
each mode, keeps every token, id and cookie the client saw, and looks for each of them
in every event field and in every label of the Prometheus scrape and of OpenTelemetry.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from coatcheck import events
from coatcheck.clock import FrozenClock
from coatcheck.dpop_client import DPoPAuth
from coatcheck.events import Concealed, Event
from coatcheck.observe.otel import OpenTelemetryObserver
from coatcheck.tokens import unverified_parts

from .conftest import ALICE, MakeClient

_TOKEN_RE = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]+)"')
PREFIX = f"ccm:{secrets.token_hex(4)}:"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples[(name, tuple(sorted(labels.items())))]  # type: ignore[no-any-return]


def test_metrics_are_off_unless_asked_for(make_client: MakeClient) -> None:
    client = make_client("session")
    assert client.get("/metrics").status_code == 404
    assert client.app.state.demo.metrics is None  # type: ignore[attr-defined]


def test_the_scrape_after_a_flow(make_client: MakeClient, clock: FrozenClock) -> None:
    client = make_client("session", metrics=True, clock=clock)
    client.post("/cart/add", data={"item": "hat"})  # a guest's data: a guest session
    client.post("/register", data=ALICE)
    wrong = {"username": "alice", "password": "wrong"}
    for _ in range(5):
        assert client.post("/login", data=wrong).status_code == 401
    throttled = client.post("/login", data={"username": "alice", "password": ALICE["password"]})
    assert throttled.status_code == 429
    clock.advance(int(throttled.headers["retry-after"]))
    login = client.post("/login", data={**ALICE, "remember": "on"}, follow_redirects=False)
    assert login.status_code == 303
    refused = client.post("/logout", headers={"sec-fetch-site": "cross-site"}, csrf=False)
    assert refused.status_code == 403
    assert client.post("/logout").status_code == 200  # redirected home
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    assert scrape.headers["cache-control"] == "no-store"
    s = _samples(scrape.text)
    assert _value(s, "coatcheck_logins_total", outcome="ok") == 1
    assert _value(s, "coatcheck_logins_total", outcome="failed") == 5
    assert _value(s, "coatcheck_logins_total", outcome="throttled") == 1
    assert _value(s, "coatcheck_logouts_total") == 1
    assert _value(s, "coatcheck_csrf_refusals_total", reason="csrf_cross_origin") == 1
    assert _value(s, "coatcheck_sessions_created_total", kind="user") == 1
    assert _value(s, "coatcheck_sessions_created_total", kind="guest") == 1
    assert _value(s, "coatcheck_sessions_revoked_total") == 1
    assert _value(s, "coatcheck_cookie_size_bytes_count", cookie="credential") >= 1
    assert _value(s, "coatcheck_cookie_size_bytes_count", cookie="session") >= 1
    assert _value(s, "coatcheck_cookie_size_bytes_count", cookie="csrf") >= 1
    store = {"store": "MemoryStore"}
    assert _value(s, "coatcheck_store_operation_seconds_count", operation="get", **store) > 0
    assert _value(s, "coatcheck_store_operation_seconds_count",
                  operation="reserve_attempt", **store) >= 6  # fmt: skip
    # The scraper needs no cookie, and the scrape sets none.
    assert "set-cookie" not in scrape.headers


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[str]:
    yield f"{redis_url}?prefix={PREFIX}"
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=PREFIX + "*", count=1000):
            client.delete(key)
    finally:
        client.close()


class _Seen:
    """Every token, id and cookie value a client was handed, to look for in the metrics."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: object) -> None:
        if isinstance(value, str) and len(value) >= 8:
            self.values.add(value)

    def response(self, response: Any) -> Any:
        for header in response.headers.get_list("set-cookie"):
            self.add(header.partition(";")[0].partition("=")[2])
        for token in _TOKEN_RE.findall(response.text):
            self.add(token)
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            for key in ("token", "refresh_token", "access_token", "user_id"):
                self.add(body.get(key) if isinstance(body, dict) else None)
        return response

    def token(self, token: str) -> None:
        """A JWT and the ids in its claims (sid, jti, sub), or a session token."""
        self.add(token)
        try:
            claims = unverified_parts(token)[1]
        except Exception:
            return
        for claim in ("sid", "jti", "sub"):
            self.add(claims.get(claim))


def _flow(client: TestClient, seen: _Seen, mode: str) -> None:
    demo = client.app.state.demo  # type: ignore[attr-defined]
    see = seen.response
    see(client.post("/name", data={"name": "Zoë"}))  # a guest's session data
    see(client.post("/cart/add", data={"item": "hat"}))
    see(client.post("/register", data=ALICE, follow_redirects=False))
    for _ in range(2):
        see(client.post("/login", data={"username": "alice", "password": "nope"}))
    see(client.post("/logout", headers={"sec-fetch-site": "cross-site"}, csrf=False))
    see(client.post("/login", data={**ALICE, "remember": "on"}, follow_redirects=False))
    for cookie in client.cookies.jar:
        seen.token(cookie.value or "")
    see(client.get("/sessions"))
    # Native apps: a bearer login and a DPoP-bound one.
    api = see(client.post("/api/login", json={"username": "alice", "password": ALICE["password"]}))
    seen.token(api.json()["token"])
    auth = DPoPAuth()
    seen.add(auth.thumbprint)
    bound = see(client.post("/api/login", json={"username": "alice",
                                                "password": ALICE["password"]},
                            auth=auth.for_token_requests()))  # fmt: skip
    assert bound.json()["token_type"] == "DPoP", bound.text
    seen.token(bound.json()["token"])
    auth.access_token = bound.json()["token"]
    see(client.get("/api/me", auth=auth))
    user_id = demo.users.check("alice", ALICE["password"]).user_id
    seen.add(user_id)
    if mode == "hybrid":
        refresh = api.json()["refresh_token"]
        seen.add(refresh)
        first = see(client.post("/api/refresh", json={"refresh_token": refresh}))
        seen.token(first.json()["token"])
        newer = see(
            client.post("/api/refresh", json={"refresh_token": first.json()["refresh_token"]})
        )
        seen.token(newer.json()["token"])
        reuse = see(client.post("/api/refresh", json={"refresh_token": refresh}))
        assert reuse.status_code == 401  # the retired token: the session is revoked
    portal = client.portal  # type: ignore[attr-defined]  # the app's own event loop
    records = portal.call(demo.store.list_user, user_id, demo.config.clock.now())
    assert records or mode == "jwt", "the user has live sessions (jwt mode has none)"
    for record in records:
        seen.add(record.id)
    see(client.post("/sessions/revoke-all"))
    see(client.post("/login", data=ALICE, follow_redirects=False))
    for cookie in client.cookies.jar:
        seen.token(cookie.value or "")
    see(client.post("/logout"))
    see(client.get("/"))


@pytest.mark.parametrize("mode", ["session", "jwt", "hybrid"])
def test_no_token_id_or_secret_in_any_label_or_event(
    make_client: MakeClient, redis_store: str, mode: str
) -> None:
    heard: list[Event] = []
    reader = InMemoryMetricReader()
    otel = OpenTelemetryObserver(meter_provider=MeterProvider(metric_readers=[reader]))
    seen = _Seen()
    with events.subscribe(heard.append), otel.subscribe():
        client = make_client(mode, store=redis_store, metrics=True)
        _flow(client, seen, mode)
        scrape = client.get("/metrics").text
    secrets_seen = seen.values
    # The flow really handed out what is looked for: cookies, tokens, ids, a thumbprint.
    assert len(secrets_seen) >= 10, secrets_seen
    kinds = {type(e).__name__ for e in heard}
    assert {"LoginSucceeded", "LoginFailed", "LoggedOut", "CsrfRefused", "CookieIssued",
            "StoreCalled", "SessionCreated"} <= kinds, kinds  # fmt: skip
    assert ("SessionsRevoked" in kinds) is (mode != "jwt")  # a JWT has no session to end
    if mode == "hybrid":
        assert {"Refreshed", "RefreshReuseDetected", "FeedStateChanged",
                "RevocationsPublished"} <= kinds, kinds  # fmt: skip

    def leaks(text: str) -> list[str]:
        return [value for value in secrets_seen if value in text]

    # Events: every plain field, and the repr of every concealed one.
    revealed = []
    for event in heard:
        assert not leaks(repr(event)), (event, leaks(repr(event)))
        for field in dataclasses.fields(event):
            value = getattr(event, field.name)
            if isinstance(value, Concealed):
                revealed.append(value.reveal())
                assert not leaks(str(value))
                assert not leaks(repr(value))
            else:
                assert not leaks(str(value)), (event, field.name)
    # The check can fail: the user id is there, behind reveal(), and is caught when shown.
    assert leaks(" ".join(revealed)), "the scan would not notice a leak"
    # Prometheus: every label value of every sample.
    labels = [v for (_, pairs) in _samples(scrape) for _, v in pairs]
    assert labels
    assert not [v for v in labels if leaks(v)]
    assert not leaks(scrape)
    # OpenTelemetry: every attribute value of every data point.
    data = reader.get_metrics_data()
    assert data is not None
    attributes = [
        str(value)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        for value in point.attributes.values()
    ]
    assert attributes
    assert not [v for v in attributes if leaks(v)]
