"""``coatcheck demo --workers 2 --metrics``: whichever worker answers /metrics counts all.

prometheus_client's multiprocess mode: each worker writes its metrics to files in one
directory, and a scrape sums them. Requests go out on fresh connections, so the kernel
hands them to either worker; the scrape is read from each worker in turn.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .test_workers import PASSWORD, WorkersDemo

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def _values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def demo(tmp_path: Path, redis_url: str) -> Iterator[WorkersDemo]:
    started = WorkersDemo(tmp_path, "hybrid", f"{redis_url}?prefix=ccmw{secrets.token_hex(3)}:")
    started.command.append("--metrics")
    started.start()
    yield started
    folders = {
        path.parent
        for pid in started.workers
        for path in Path(tempfile.gettempdir()).glob(f"coatcheck-metrics-*/counter_{pid}.db")
    }
    started.stop()
    # The multiprocess files lived in a folder of the demo's own, removed at exit.
    assert len(folders) == 1
    assert not any(folder.exists() for folder in folders)


def test_every_worker_scrape_counts_every_workers_events(demo: WorkersDemo) -> None:
    logins = 6
    for i in range(logins):
        name = f"user{i}"
        httpx.post(demo.url + "/api/register",
                   json={"username": name, "password": PASSWORD, "name": name})  # fmt: skip
        answer = httpx.post(demo.url + "/api/login", json={"username": name, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
    failed = httpx.post(demo.url + "/api/login", json={"username": "user0", "password": "nope!"})
    assert failed.status_code == 401
    served: dict[int, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}

    def scrape(url: str) -> httpx.Response:
        answer = httpx.get(url + "/metrics", timeout=5)
        served[int(answer.headers["x-coatcheck-worker"])] = _values(answer.text)
        return answer

    assert set(demo.on_every_worker(scrape).values()) == {200}
    assert len(served) == 2
    for values in served.values():
        assert values[("coatcheck_logins_total", (("outcome", "ok"),))] == logins
        assert values[("coatcheck_logins_total", (("outcome", "failed"),))] == 1
        assert values[("coatcheck_sessions_created_total", (("kind", "user"),))] == logins
        # Every worker's feed is connected: the lowest of the live workers' gauges is 1.
        assert values[("coatcheck_revocation_feed_up", (("channel", "coatcheck:revoked"),))] == 1
        reads = [v for (name, labels), v in values.items()
                 if name == "coatcheck_store_operation_seconds_count"
                 and dict(labels)["operation"] == "create"]  # fmt: skip
        assert reads == [logins]

