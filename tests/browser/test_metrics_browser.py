"""``coatcheck demo --metrics`` as a real server: a flow, the scrape, and its picture.

The demo runs in hybrid mode on Redis (so the revocation feed is there too); a client
registers, logs in through the form and the API, mistypes a password until throttled,
refreshes, replays a retired refresh token, gets refused by CSRF, keeps a guest cart and
logs out. The scrape must show each of those; Debian's chromium renders it for the docs
(with ``COATCHECK_UPDATE_SCREENSHOTS=1`` the sample and the picture in ``docs/`` are
rewritten from this run).
"""

from __future__ import annotations

import html
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from .._net import free_port
from ..e2e._csrf import CsrfClient
from .conftest import ARTIFACTS, PASSWORD, ROOT, SCREENSHOTS, _wait_for

pytestmark = [pytest.mark.slow, pytest.mark.redis]

SAMPLE = ROOT / "docs" / "metrics-sample.txt"


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[str]:
    prefix = f"ccmb{secrets.token_hex(3)}:"
    port = free_port()
    command = [
        sys.executable, "-m", "coatcheck", "demo", "--mode", "hybrid", "--metrics",
        "--alg", "ES256", "--port", str(port), "--store", f"{redis_url}?prefix={prefix}",
    ]  # fmt: skip
    log = tmp_path / "server.log"
    with log.open("a") as errors:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        _wait_for(port, process, log)  # type: ignore[arg-type]
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
        client.close()


def _flow(url: str) -> None:
    with CsrfClient(base_url=url, timeout=10) as browser:
        browser.post("/cart/add", data={"item": "hat"})  # a guest's session data
        for name in ("alice", "bob"):
            created = browser.post(
                "/api/register", json={"username": name, "password": PASSWORD, "name": name}
            )
            assert created.status_code == 201, created.text
        for _ in range(5):
            browser.post("/login", data={"username": "bob", "password": "not bob's"})
        throttled = browser.post("/login", data={"username": "bob", "password": PASSWORD})
        assert throttled.status_code == 429
        login = browser.post("/login", data={"username": "alice", "password": PASSWORD,
                                              "remember": "on"})  # fmt: skip
        assert login.status_code == 303, login.text  # to the home page
        refused = browser.request(
            "POST", "/logout", headers={"sec-fetch-site": "cross-site"}, csrf=False
        )
        assert refused.status_code == 403
        browser.post("/logout")
    with httpx.Client(base_url=url, timeout=10) as api:
        pair = api.post("/api/login", json={"username": "alice", "password": PASSWORD}).json()
        renewed = api.post("/api/refresh", json={"refresh_token": pair["refresh_token"]}).json()
        api.post("/api/refresh", json={"refresh_token": renewed["refresh_token"]})
        reuse = api.post("/api/refresh", json={"refresh_token": pair["refresh_token"]})
        assert reuse.status_code == 401  # a retired refresh token: the session is revoked


def _values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _page(scrape: str) -> str:
    """The scrape as a page: every line but the histogram buckets and creation times."""
    rows = []
    for line in scrape.splitlines():
        words = line.split()
        sample = (words[2] if line.startswith("#") and len(words) > 2 else line).partition("{")[0]
        if sample.partition(" ")[0].endswith(("_bucket", "_created")):
            continue
        if line.startswith("#"):
            rows.append(f'<span class="c">{html.escape(line)}</span>')
        else:
            name, _, value = line.rpartition(" ")
            rows.append(f"<b>{html.escape(name)}</b> <i>{html.escape(value)}</i>")
    return (
        "<!doctype html><meta charset=utf-8><title>coatcheck /metrics</title><style>"
        "body{margin:0;background:#0f1419;color:#d6dde4;font:13px/1.45 'DejaVu Sans Mono',"
        "monospace}header{padding:14px 20px;background:#1b2129;color:#fff;font:600 15px "
        "'DejaVu Sans',sans-serif}header small{color:#9aa7b4;font-weight:400;margin-left:10px}"
        "pre{margin:0;padding:14px 20px}.c{color:#6f7e8c}b{color:#7fd1ff;font-weight:400}"
        "i{color:#ffd479;font-style:normal}</style>"
        "<header>GET /metrics<small>coatcheck demo --mode hybrid --metrics --store redis://"
        " &middot; after a short flow &middot; histogram buckets and *_created left out"
        "</small></header><pre>" + "\n".join(rows) + "</pre>"
    )


def test_the_scrape_of_a_real_demo_after_a_flow(server: str, browser: Any) -> None:
    _flow(server)
    answer = httpx.get(server + "/metrics", timeout=10)
    assert answer.status_code == 200
    scrape = answer.text
    v = _values(scrape)
    assert v[("coatcheck_logins_total", (("outcome", "ok"),))] == 2
    assert v[("coatcheck_logins_total", (("outcome", "failed"),))] == 5
    assert v[("coatcheck_logins_total", (("outcome", "throttled"),))] == 1
    assert v[("coatcheck_logouts_total", ())] == 1
    assert v[("coatcheck_csrf_refusals_total", (("reason", "csrf_cross_origin"),))] == 1
    assert v[("coatcheck_refreshes_total",
              (("credential", "refresh_token"), ("outcome", "rotated")))] == 2  # fmt: skip
    assert v[("coatcheck_refresh_reuse_detected_total", ())] == 1
    assert v[("coatcheck_sessions_created_total", (("kind", "guest"),))] >= 1
    assert v[("coatcheck_sessions_revoked_total", ())] == 2  # the logout and the reuse
    assert v[("coatcheck_revocation_feed_up", (("channel", "coatcheck:revoked"),))] == 1
    sent = (("channel", "coatcheck:revoked"), ("outcome", "sent"))
    assert v[("coatcheck_revocations_published_total", sent)] == 2
    assert v[("coatcheck_cookie_size_bytes_count", (("cookie", "refresh"),))] >= 1
    assert v[("coatcheck_store_operation_seconds_count",
              (("operation", "create"), ("store", "RedisStore")))] >= 3  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "metrics-sample.txt").write_text(scrape)
    page = browser.new_page(viewport={"width": 1180, "height": 900})
    page.set_content(_page(scrape))
    assert page.locator("b", has_text='coatcheck_logins_total{outcome="ok"}').count() == 1
    assert page.locator("b", has_text='coatcheck_sessions_created_total{kind="user"}').count() == 1
    assert page.locator("b", has_text="_bucket").count() == 0
    assert page.locator("span", has_text="coatcheck_logins_created").count() == 0
    page.screenshot(path=str(ARTIFACTS / "metrics.png"), full_page=True)
    if os.environ.get("COATCHECK_UPDATE_SCREENSHOTS"):
        SAMPLE.write_text(scrape)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "metrics.png"), full_page=True)
    page.close()
