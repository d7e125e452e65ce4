"""coatcheck's events as Prometheus metrics (``pip install 'coatcheck[prometheus]'``).

::

    from coatcheck.observe.prometheus import PrometheusObserver, scrape

    observer = PrometheusObserver()          # metrics in prometheus_client's REGISTRY
    subscription = observer.subscribe()      # from now on every event is counted
    store = observe_store(open_store(url))   # store latency and errors too

    # in a /metrics route of your framework:
    body, content_type = scrape()

The series (``coatcheck_`` by default; labels in braces, each from a small fixed set or
the app's own configuration, never a token, id, user or address):

=============================================  ==========================================
``logins_total{outcome}``                      ``ok``, ``failed``, ``throttled``
``logouts_total``                              logouts that presented a credential
``sessions_created_total{kind}``               ``user`` (a login) or ``guest`` (data only)
``sessions_revoked_total``                     sessions ended (logout, devices page, reuse)
``refreshes_total{credential,outcome}``        ``refresh_token`` / ``device_key``;
                                               ``rotated``, ``reissued``, ``refused``
``refresh_reuse_detected_total``               a retired refresh token came back
``csrf_refusals_total{reason}``                ``csrf_cross_origin``, ``csrf_token_missing``,
                                               ``csrf_token_invalid``
``cookie_size_bytes{cookie}``                  histogram of ``name=value`` sizes by role
``store_operation_seconds{store,operation}``   histogram (an ``ObservedStore`` only)
``store_errors_total{store,operation,error}``  store calls that raised, by error code
``revocation_feed_up{channel}``                1 while the feed is connected
``revocation_feed_lag_seconds{channel}``       publish-to-delivery histogram
``revocations_published_total{channel,outcome}``  ``sent``, or ``queued`` (server down)
=============================================  ==========================================

**Several worker processes** (``uvicorn --workers N``, gunicorn): set the environment
variable ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the workers start
(prometheus_client's multiprocess mode); every worker then writes its metrics there and
:func:`scrape` sums them, whichever worker answers. Call :func:`mark_process_dead` when
a worker stops (the feed gauge is per live process: the lowest one is shown, so it is 0
while any worker's feed is down).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

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

__all__ = [
    "COOKIE_BUCKETS",
    "LAG_BUCKETS",
    "STORE_BUCKETS",
    "PrometheusObserver",
    "mark_process_dead",
    "multiprocess_dir",
    "new_registry",
    "scrape",
]

#: Store call latency buckets, seconds: a local read takes tens of microseconds, a
#: network one a fraction of a millisecond, a failing one up to its timeout.
STORE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
#: Revocation feed lag buckets, seconds (the feed's promise is well under a second).
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Cookie size buckets, bytes: 4096 is what every browser must keep (RFC 6265bis §5.6).
COOKIE_BUCKETS = (64, 128, 256, 512, 1024, 2048, 3072, 4096, 8192)

_ENV = "PROMETHEUS_MULTIPROC_DIR"
_CSRF_REASONS = ("csrf_cross_origin", "csrf_token_missing", "csrf_token_invalid")


def new_registry() -> CollectorRegistry:
    """An empty registry, for an observer whose metrics must stand alone (an app of its
    own in a process that may hold others, a test)."""
    return CollectorRegistry()


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess mode, when it is on."""
    return os.environ.get(_ENV) or os.environ.get(_ENV.lower()) or None


def scrape(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """``(body, content type)`` of the Prometheus text format for a ``/metrics`` route.

    In multiprocess mode (:func:`multiprocess_dir`) the metrics of every process are
    summed from that directory; otherwise ``registry`` (prometheus_client's default
    ``REGISTRY`` when ``None``) is read.
    """
    if multiprocess_dir() is not None:
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY if registry is None else registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int | None = None) -> None:
    """In multiprocess mode, forget the live gauges of process ``pid`` (this one by
    default) when it stops; otherwise nothing."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid)  # type: ignore[no-untyped-call]


class PrometheusObserver(Dispatching):
    """Counts :mod:`coatcheck.events` in Prometheus metrics (see the module docstring).

    ``registry``: where the metrics are registered (prometheus_client's ``REGISTRY``
    by default; a registry can hold one observer's metrics: give each its own).
    ``namespace`` prefixes every name. Call it with events yourself, or
    :meth:`subscribe` it to every event of the process.

    :raises ValueError: when the registry already holds metrics of these names.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        namespace: str = "coatcheck",
        store_buckets: Sequence[float] = STORE_BUCKETS,
        lag_buckets: Sequence[float] = LAG_BUCKETS,
        cookie_buckets: Sequence[float] = COOKIE_BUCKETS,
    ) -> None:
        where: dict[str, Any] = {
            "namespace": namespace, "registry": REGISTRY if registry is None else registry,
        }  # fmt: skip
        self.registry: CollectorRegistry = where["registry"]
        self.logins = Counter("logins", "Logins, by outcome.", ["outcome"], **where)
        self.logouts = Counter("logouts", "Logouts that presented a credential.", **where)
        self.sessions_created = Counter(
            "sessions_created", "Server-side sessions created: user (a login) or guest.",
            ["kind"], **where,
        )  # fmt: skip
        self.sessions_revoked = Counter(
            "sessions_revoked", "Live sessions ended and published as revoked.", **where
        )
        self.refreshes = Counter(
            "refreshes", "Access-token refreshes, by credential and outcome.",
            ["credential", "outcome"], **where,
        )  # fmt: skip
        self.reuse = Counter(
            "refresh_reuse_detected",
            "Retired refresh tokens presented again (the session was revoked).", **where,
        )  # fmt: skip
        self.csrf_refusals = Counter(
            "csrf_refusals", "Unsafe requests refused by the CSRF rules.", ["reason"], **where
        )
        self.cookie_size = Histogram(
            "cookie_size_bytes", "Size of the cookies written (name=value), by role.",
            ["cookie"], buckets=cookie_buckets, **where,
        )  # fmt: skip
        self.store_seconds = Histogram(
            "store_operation_seconds", "Store call latency, by store and operation.",
            ["store", "operation"], buckets=store_buckets, **where,
        )  # fmt: skip
        self.store_errors = Counter(
            "store_errors", "Store calls that raised, by store, operation and error code.",
            ["store", "operation", "error"], **where,
        )  # fmt: skip
        self.feed_up = Gauge(
            "revocation_feed_up", "1 while the revocation feed is connected, else 0.",
            ["channel"], multiprocess_mode="livemin", **where,
        )  # fmt: skip
        self.feed_lag = Histogram(
            "revocation_feed_lag_seconds", "Revocation feed lag, publish to delivery.",
            ["channel"], buckets=lag_buckets, **where,
        )  # fmt: skip
        self.published = Counter(
            "revocations_published", "Revocation messages published: sent or queued.",
            ["channel", "outcome"], **where,
        )  # fmt: skip
        # Zeros from the start, so dashboards and alerts see every series before it moves.
        for outcome in ("ok", "failed", "throttled"):
            self.logins.labels(outcome)
        for kind in ("user", "guest"):
            self.sessions_created.labels(kind)
        for credential in ("refresh_token", "device_key"):
            for outcome in ("rotated", "reissued", "refused"):
                self.refreshes.labels(credential, outcome)
        for reason in _CSRF_REASONS:
            self.csrf_refusals.labels(reason)
        # Labelled children by their labels: .labels() costs a microsecond a call.
        self._store: dict[tuple[str, str], Any] = {}
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            LoginSucceeded: lambda e: self.logins.labels("ok").inc(),
            LoginFailed: lambda e: self.logins.labels("failed").inc(),
            LoginThrottled: lambda e: self.logins.labels("throttled").inc(),
            LoggedOut: lambda e: self.logouts.inc(),
            SessionCreated: self._created,
            SessionsRevoked: lambda e: self.sessions_revoked.inc(e.count),
            Refreshed: self._refreshed,
            RefreshRefused: lambda e: self.refreshes.labels(e.credential, "refused").inc(),
            RefreshReuseDetected: lambda e: self.reuse.inc(),
            CsrfRefused: lambda e: self.csrf_refusals.labels(e.reason).inc(),
            CookieIssued: lambda e: self.cookie_size.labels(e.cookie).observe(e.size),
            StoreCalled: self._store_called,
            FeedStateChanged: lambda e: self.feed_up.labels(e.channel).set(1 if e.up else 0),
            RevocationsPublished: self._published,
            RevocationsReceived: self._received,
        }

    def _created(self, event: SessionCreated) -> None:
        self.sessions_created.labels("guest" if event.guest else "user").inc()

    def _refreshed(self, event: Refreshed) -> None:
        outcome = "rotated" if event.rotated else "reissued"
        self.refreshes.labels(event.credential, outcome).inc()

    def _store_called(self, event: StoreCalled) -> None:
        key = (event.store, event.operation)
        child = self._store.get(key)
        if child is None:
            child = self._store[key] = self.store_seconds.labels(*key)
        child.observe(event.seconds)
        if event.error is not None:
            self.store_errors.labels(event.store, event.operation, event.error).inc()

    def _published(self, event: RevocationsPublished) -> None:
        outcome = "sent" if event.delivered else "queued"
        self.published.labels(event.channel, outcome).inc()

    def _received(self, event: RevocationsReceived) -> None:
        if event.lag is not None:
            self.feed_lag.labels(event.channel).observe(event.lag)

    def __repr__(self) -> str:
        return f"PrometheusObserver(registry={self.registry!r})"
