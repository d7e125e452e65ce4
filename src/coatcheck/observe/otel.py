"""coatcheck's events as OpenTelemetry metrics (``pip install 'coatcheck[otel]'``).

Only the OpenTelemetry *API* is needed here; the app installs the SDK and the exporter
it wants (OTLP, Prometheus ...) and sets its meter provider, as for any instrumented
library::

    from coatcheck.observe.otel import OpenTelemetryObserver

    OpenTelemetryObserver().subscribe()       # the global meter provider
    store = observe_store(open_store(url))    # store latency and errors too

Without an SDK the API's no-op provider makes every instrument free. The instruments
(attributes in braces, each from a small fixed set or the app's configuration, never
a token, id, user or address):

======================================  =============================================
``coatcheck.logins``                    counter ``{outcome}``: ok, failed, throttled
``coatcheck.logouts``                   counter
``coatcheck.sessions.created``          counter ``{kind}``: user, guest
``coatcheck.sessions.revoked``          counter
``coatcheck.refreshes``                 counter ``{credential, outcome}``
``coatcheck.refresh.reuse_detected``    counter
``coatcheck.csrf.refusals``             counter ``{reason}``
``coatcheck.cookie.size``               histogram, By ``{cookie}``
``coatcheck.store.duration``            histogram, s ``{store, operation}``
``coatcheck.store.errors``              counter ``{store, operation, error.type}``
``coatcheck.revocation_feed.up``        gauge ``{channel}``: 1 connected, 0 not
``coatcheck.revocation_feed.lag``       histogram, s ``{channel}``
``coatcheck.revocations.published``     counter ``{channel, outcome}``: sent, queued
======================================  =============================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import metrics

from ..events import (
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
from ._dispatch import Dispatching

__all__ = ["OpenTelemetryObserver"]

_STORE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_COOKIE_BUCKETS = (64, 128, 256, 512, 1024, 2048, 3072, 4096, 8192)


class OpenTelemetryObserver(Dispatching):
    """Records :mod:`coatcheck.events` with OpenTelemetry instruments (see the module).

    ``meter_provider``: the provider to get the ``coatcheck`` meter from (the global
    one by default). Call it with events yourself, or :meth:`subscribe` it to every
    event of the process.
    """

    def __init__(self, *, meter_provider: metrics.MeterProvider | None = None) -> None:
        meter = metrics.get_meter("coatcheck", meter_provider=meter_provider)
        self._logins = meter.create_counter("coatcheck.logins", "{login}", "Logins, by outcome.")
        self._logouts = meter.create_counter(
            "coatcheck.logouts", "{logout}", "Logouts that presented a credential."
        )
        self._created = meter.create_counter(
            "coatcheck.sessions.created", "{session}", "Server-side sessions created."
        )
        self._revoked = meter.create_counter(
            "coatcheck.sessions.revoked", "{session}", "Live sessions ended and published."
        )
        self._refreshes = meter.create_counter(
            "coatcheck.refreshes", "{refresh}", "Access-token refreshes."
        )
        self._reuse = meter.create_counter(
            "coatcheck.refresh.reuse_detected", "{refresh}",
            "Retired refresh tokens presented again (the session was revoked).",
        )  # fmt: skip
        self._csrf = meter.create_counter(
            "coatcheck.csrf.refusals", "{request}", "Unsafe requests refused by the CSRF rules."
        )
        self._cookie_size = meter.create_histogram(
            "coatcheck.cookie.size", "By", "Size of the cookies written (name=value), by role.",
            explicit_bucket_boundaries_advisory=_COOKIE_BUCKETS,
        )  # fmt: skip
        self._store_duration = meter.create_histogram(
            "coatcheck.store.duration", "s", "Store call latency, by store and operation.",
            explicit_bucket_boundaries_advisory=_STORE_BUCKETS,
        )  # fmt: skip
        self._store_errors = meter.create_counter(
            "coatcheck.store.errors", "{call}", "Store calls that raised."
        )
        self._feed_up = meter.create_gauge(
            "coatcheck.revocation_feed.up", "1", "1 while the revocation feed is connected."
        )
        self._feed_lag = meter.create_histogram(
            "coatcheck.revocation_feed.lag", "s", "Revocation feed lag, publish to delivery.",
            explicit_bucket_boundaries_advisory=_LAG_BUCKETS,
        )  # fmt: skip
        self._published = meter.create_counter(
            "coatcheck.revocations.published", "{message}", "Revocation messages published."
        )
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            LoginSucceeded: lambda e: self._logins.add(1, {"outcome": "ok"}),
            LoginFailed: lambda e: self._logins.add(1, {"outcome": "failed"}),
            LoginThrottled: lambda e: self._logins.add(1, {"outcome": "throttled"}),
            LoggedOut: lambda e: self._logouts.add(1),
            SessionCreated: lambda e: self._created.add(
                1, {"kind": "guest" if e.guest else "user"}
            ),
            SessionsRevoked: lambda e: self._revoked.add(e.count),
            Refreshed: lambda e: self._refreshes.add(
                1,
                {"credential": e.credential, "outcome": "rotated" if e.rotated else "reissued"},
            ),
            RefreshRefused: lambda e: self._refreshes.add(
                1, {"credential": e.credential, "outcome": "refused"}
            ),
            RefreshReuseDetected: lambda e: self._reuse.add(1),
            CsrfRefused: lambda e: self._csrf.add(1, {"reason": e.reason}),
            CookieIssued: lambda e: self._cookie_size.record(e.size, {"cookie": e.cookie}),
            StoreCalled: self._store_called,
            FeedStateChanged: lambda e: self._feed_up.set(1 if e.up else 0, {"channel": e.channel}),
            RevocationsPublished: lambda e: self._published.add(
                1, {"channel": e.channel, "outcome": "sent" if e.delivered else "queued"}
            ),
            RevocationsReceived: self._received,
        }

    def _store_called(self, event: StoreCalled) -> None:
        attributes = {"store": event.store, "operation": event.operation}
        self._store_duration.record(event.seconds, attributes)
        if event.error is not None:
            self._store_errors.add(1, {**attributes, "error.type": event.error})

    def _received(self, event: RevocationsReceived) -> None:
        if event.lag is not None:
            self._feed_lag.record(event.lag, {"channel": event.channel})

    def __repr__(self) -> str:
        return "OpenTelemetryObserver()"
