"""OpenTelemetryObserver through the OpenTelemetry SDK's in-memory metric reader."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from coatcheck import events
from coatcheck.events import EVENT_TYPES
from coatcheck.observe.otel import OpenTelemetryObserver

from ._events import EVERY_EVENT


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "coatcheck"
            for metric in scope.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def _sum(points: list[Any], **attributes: str) -> float:
    return sum(p.value for p in points if dict(p.attributes) == attributes)


def test_every_event_type_has_an_instrument() -> None:
    observer = OpenTelemetryObserver(meter_provider=MeterProvider())
    assert set(observer.kinds) == set(EVENT_TYPES)


def test_each_event_is_recorded() -> None:
    reader = InMemoryMetricReader()
    observer = OpenTelemetryObserver(meter_provider=MeterProvider(metric_readers=[reader]))
    for event in EVERY_EVENT:
        observer(event)
    m = _points(reader)
    assert _sum(m["coatcheck.logins"], outcome="ok") == 2
    assert _sum(m["coatcheck.logins"], outcome="failed") == 1
    assert _sum(m["coatcheck.logins"], outcome="throttled") == 1
    assert _sum(m["coatcheck.logouts"]) == 1
    assert _sum(m["coatcheck.sessions.created"], kind="guest") == 1
    assert _sum(m["coatcheck.sessions.revoked"]) == 3
    assert _sum(m["coatcheck.refreshes"], credential="refresh_token", outcome="rotated") == 1
    assert _sum(m["coatcheck.refreshes"], credential="device_key", outcome="reissued") == 1
    assert _sum(m["coatcheck.refreshes"], credential="refresh_token", outcome="refused") == 1
    assert _sum(m["coatcheck.refresh.reuse_detected"]) == 1
    assert _sum(m["coatcheck.csrf.refusals"], reason="csrf_cross_origin") == 1
    [sizes] = [p for p in m["coatcheck.cookie.size"] if dict(p.attributes) == {"cookie": "session"}]
    assert (sizes.count, sizes.sum, sizes.max) == (1, 5000, 5000)
    assert sizes.explicit_bounds[-2:] == (4096, 8192)  # the advisory buckets are used
    [get] = [
        p for p in m["coatcheck.store.duration"]
        if dict(p.attributes) == {"store": "RedisStore", "operation": "get"}
    ]  # fmt: skip
    assert get.count == 1
    assert abs(get.sum - 0.0003) < 1e-9
    errors = {"store": "RedisStore", "operation": "create", "error.type": "store_unavailable"}
    assert _sum(m["coatcheck.store.errors"], **errors) == 1
    [up] = m["coatcheck.revocation_feed.up"]
    assert (dict(up.attributes), up.value) == ({"channel": "coatcheck:revoked"}, 1)
    [lag] = m["coatcheck.revocation_feed.lag"]
    assert lag.count == 1  # the unstamped message has no lag to record
    published = m["coatcheck.revocations.published"]
    assert _sum(published, channel="coatcheck:revoked", outcome="queued") == 1


def test_subscribed_it_records_what_the_process_emits() -> None:
    reader = InMemoryMetricReader()
    observer = OpenTelemetryObserver(meter_provider=MeterProvider(metric_readers=[reader]))
    with observer.subscribe():
        events.emit(EVERY_EVENT[0])
    events.emit(EVERY_EVENT[0])
    assert _sum(_points(reader)["coatcheck.logins"], outcome="ok") == 1
