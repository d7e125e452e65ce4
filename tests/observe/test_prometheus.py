"""PrometheusObserver: each event moves its series; the scrape, alone and multiprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from coatcheck import events
from coatcheck.events import EVENT_TYPES, FeedStateChanged, LoginSucceeded
from coatcheck.observe.prometheus import PrometheusObserver, new_registry, scrape

from ._events import EVERY_EVENT


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples[(name, tuple(sorted(labels.items())))]  # type: ignore[no-any-return]


def test_every_event_type_has_a_series() -> None:
    assert set(PrometheusObserver(registry=new_registry()).kinds) == set(EVENT_TYPES)


def test_each_event_moves_its_series() -> None:
    observer = PrometheusObserver(registry=new_registry())
    for event in EVERY_EVENT:
        observer(event)
    body, content_type = scrape(observer.registry)
    assert content_type.startswith("text/plain")
    s = _samples(body)
    assert _value(s, "coatcheck_logins_total", outcome="ok") == 2
    assert _value(s, "coatcheck_logins_total", outcome="failed") == 1
    assert _value(s, "coatcheck_logins_total", outcome="throttled") == 1
    assert _value(s, "coatcheck_logouts_total") == 1
    assert _value(s, "coatcheck_sessions_created_total", kind="user") == 1
    assert _value(s, "coatcheck_sessions_created_total", kind="guest") == 1
    assert _value(s, "coatcheck_sessions_revoked_total") == 3
    refreshes = "coatcheck_refreshes_total"
    assert _value(s, refreshes, credential="refresh_token", outcome="rotated") == 1
    assert _value(s, refreshes, credential="refresh_token", outcome="reissued") == 1
    assert _value(s, refreshes, credential="refresh_token", outcome="refused") == 1
    assert _value(s, refreshes, credential="device_key", outcome="reissued") == 1
    assert _value(s, refreshes, credential="device_key", outcome="refused") == 0
    assert _value(s, "coatcheck_refresh_reuse_detected_total") == 1
    assert _value(s, "coatcheck_csrf_refusals_total", reason="csrf_cross_origin") == 1
    assert _value(s, "coatcheck_csrf_refusals_total", reason="csrf_token_invalid") == 0
    sizes = "coatcheck_cookie_size_bytes_bucket"
    assert _value(s, sizes, cookie="credential", le="512.0") == 1
    assert _value(s, sizes, cookie="session", le="4096.0") == 0  # over the browsers' limit
    assert _value(s, sizes, cookie="session", le="8192.0") == 1
    store = {"store": "RedisStore"}
    assert _value(s, "coatcheck_store_operation_seconds_count", operation="get", **store) == 1
    assert (
        _value(s, "coatcheck_store_operation_seconds_bucket", operation="get", le="0.0005", **store)
        == 1
    )
    assert (
        _value(
            s,
            "coatcheck_store_errors_total",
            operation="create",
            error="store_unavailable",
            **store,
        )
        == 1
    )
    channel = {"channel": "coatcheck:revoked"}
    assert _value(s, "coatcheck_revocation_feed_up", **channel) == 1
    assert _value(s, "coatcheck_revocations_published_total", outcome="sent", **channel) == 1
    assert _value(s, "coatcheck_revocations_published_total", outcome="queued", **channel) == 1
    assert _value(s, "coatcheck_revocation_feed_lag_seconds_count", **channel) == 1  # one stamped
    assert _value(s, "coatcheck_revocation_feed_lag_seconds_bucket", le="0.005", **channel) == 1
    observer(FeedStateChanged(channel="coatcheck:revoked", up=False))
    assert _value(_samples(scrape(observer.registry)[0]), "coatcheck_revocation_feed_up",
                  **channel) == 0  # fmt: skip


def test_subscribed_it_counts_what_the_process_emits() -> None:
    observer = PrometheusObserver(registry=new_registry())
    with observer.subscribe():
        events.emit(EVERY_EVENT[0])
    events.emit(EVERY_EVENT[0])  # closed: not counted
    s = _samples(scrape(observer.registry)[0])
    assert _value(s, "coatcheck_logins_total", outcome="ok") == 1


def test_one_registry_holds_one_observer() -> None:
    registry = new_registry()
    PrometheusObserver(registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        PrometheusObserver(registry=registry)
    assert "coatcheck_logins_total" in scrape(registry)[0].decode()
    other = PrometheusObserver(registry=new_registry(), namespace="app_auth")
    other(LoginSucceeded(**vars_of(EVERY_EVENT[0])))
    assert "app_auth_logins_total" in scrape(other.registry)[0].decode()


def vars_of(event: object) -> dict[str, object]:
    return {name: getattr(event, name) for name in event.__dataclass_fields__}  # type: ignore[attr-defined]


_WORKER = textwrap.dedent(
    """
    import sys
    from coatcheck import events
    from coatcheck.events import Concealed, FeedStateChanged, LoginSucceeded
    from coatcheck.observe.prometheus import PrometheusObserver, mark_process_dead, new_registry

    observer = PrometheusObserver(registry=new_registry())
    with observer.subscribe():
        for _ in range(int(sys.argv[1])):
            events.emit(LoginSucceeded(mode="session", bound="", persistent=True,
                                       user=Concealed("u"), ip=Concealed("")))
        events.emit(FeedStateChanged(channel="c", up=sys.argv[2] == "up"))
    if sys.argv[3] == "dead":
        mark_process_dead()
    """
)


def test_multiprocess_mode_sums_every_worker(tmp_path: Path) -> None:
    # prometheus_client reads PROMETHEUS_MULTIPROC_DIR when it is imported: real processes.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for logins, feed, end in ((2, "up", "alive"), (3, "up", "alive"), (4, "down", "dead")):
        subprocess.run([sys.executable, "-c", _WORKER, str(logins), feed, end], env=env, check=True)
    scraper = (
        "import sys\nfrom coatcheck.observe.prometheus import scrape\n"
        "sys.stdout.buffer.write(scrape()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", scraper], env=env, check=True, capture_output=True
    ).stdout
    s = _samples(out)
    assert _value(s, "coatcheck_logins_total", outcome="ok") == 9  # 2 + 3 + 4
    # The feed gauge counts live processes only: the dead one's "down" is forgotten.
    assert _value(s, "coatcheck_revocation_feed_up", channel="c") == 1


def test_the_sample_scrape_in_the_docs_is_a_scrape_of_every_series() -> None:
    # docs/metrics-sample.txt is written by tests/browser/test_metrics_browser.py from a
    # real demo (COATCHECK_UPDATE_SCREENSHOTS=1): it must still name every series we make.
    sample = Path(__file__).resolve().parents[2] / "docs" / "metrics-sample.txt"
    documented = {f.name for f in text_string_to_metric_families(sample.read_text())}
    ours = {f.name for f in PrometheusObserver(registry=new_registry()).registry.collect()}
    assert ours <= documented, ours - documented
    s = _samples(sample.read_bytes())
    assert _value(s, "coatcheck_logins_total", outcome="ok") > 0
