"""One of every event, and the series each should move (shared by the observer tests)."""

from __future__ import annotations

from coatcheck.events import (
    Concealed,
    CookieIssued,
    CsrfRefused,
    Event,
    FeedStateChanged,
    LoggedOut,
    LoginFailed,
    LoginSucceeded,
    LoginThrottled,
    Refreshed,
    RefreshRefused,
    RefreshReuseDetected,
    RevocationsPublished,
    RevocationsReceived,
    SessionCreated,
    SessionsRevoked,
    StoreCalled,
)

__all__ = ["EVERY_EVENT"]

_USER, _IP = Concealed("u_0f1e2d3c4b5a6978"), Concealed("203.0.113.50")

EVERY_EVENT: list[Event] = [
    LoginSucceeded(mode="session", bound="", persistent=True, user=_USER, ip=_IP),
    LoginSucceeded(mode="session", bound="dpop", persistent=False, user=_USER, ip=_IP),
    LoginFailed(limiter="login", username=Concealed("alice"), ip=_IP),
    LoginThrottled(
        limiter="login", limit="account", retry_after=2.0, username=Concealed("alice"), ip=_IP
    ),
    LoggedOut(mode="session", user=_USER),
    SessionCreated(guest=False),
    SessionCreated(guest=True),
    SessionsRevoked(count=3),
    Refreshed(mode="hybrid", credential="refresh_token", rotated=True, user=_USER),
    Refreshed(mode="hybrid", credential="refresh_token", rotated=False, user=_USER),
    Refreshed(mode="hybrid", credential="device_key", rotated=False, user=_USER),
    RefreshRefused(credential="refresh_token", reason="invalid_credentials"),
    RefreshReuseDetected(mode="hybrid", user=_USER),
    CsrfRefused(reason="csrf_cross_origin"),
    CookieIssued(cookie="credential", size=300),
    CookieIssued(cookie="session", size=5000),
    StoreCalled(store="RedisStore", operation="get", seconds=0.0003, error=None),
    StoreCalled(store="RedisStore", operation="create", seconds=2.0, error="store_unavailable"),
    FeedStateChanged(channel="coatcheck:revoked", up=True),
    RevocationsPublished(channel="coatcheck:revoked", count=2, delivered=True),
    RevocationsPublished(channel="coatcheck:revoked", count=1, delivered=False),
    RevocationsReceived(channel="coatcheck:revoked", count=2, lag=0.004),
    RevocationsReceived(channel="coatcheck:revoked", count=1, lag=None),
]
