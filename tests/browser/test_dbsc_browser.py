"""Device Bound Session Credentials in a real browser: Debian's Chromium 156.

Chromium does DBSC on Linux only with software keys and the standard implementation
turned on, which chrome://flags calls "enable-standard-device-bound-session-credentials"
(Enabled - For developers) and "enable-bound-session-credentials-software-keys-for-manual-
testing"; on the command line (read from chrome://version after setting both):

    --enable-features=DeviceBoundSessions:RequireOriginTrialTokens/false/RefreshQuota/false,
                      EnableBoundSessionCredentialsSoftwareKeysForManualTesting

It registers only over HTTPS without a certificate error (neither plain http://localhost
nor --ignore-certificate-errors will do), so the demo runs with a self-signed certificate
that ``--ignore-certificate-errors-spki-list`` makes trusted. The evidence of what the
browser did is kept in test-artifacts/browser: Chromium's own NetLog (its DBSC events)
and the DevTools DBSC events.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .._net import free_port
from .conftest import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, _self_signed, _wait_for

pytestmark = pytest.mark.slow

DBSC_FEATURES = (
    "DeviceBoundSessions:RequireOriginTrialTokens/false/RefreshQuota/false,"
    "EnableBoundSessionCredentialsSoftwareKeysForManualTesting,DeviceBoundSessionsDevTools"
)
BOUND_TTL = 6  # session mode's bound cookie, seconds
ACCESS_TTL = 12  # hybrid mode's access token (the bound cookie there), seconds
SERVER_LEEWAY = 5  # DbscPolicy.leeway: the bound cookie is taken this long after expiry
JWT_LEEWAY = 10  # ClaimsPolicy.leeway: hybrid's access token likewise
PENDING = 5  # DbscPolicy.pending

_LAUNCHER = """
import sys, uvicorn
from datetime import timedelta
from coatcheck.demo import DemoConfig, create_app
mode, store, port, cert, key, bound, access = sys.argv[1:8]
config = DemoConfig(mode=mode, store_url=store, https=True,
                    bound_ttl=timedelta(seconds=int(bound)),
                    access_ttl=timedelta(seconds=int(access)))
print("ready", flush=True)
uvicorn.run(create_app(config), host="127.0.0.1", port=int(port), ssl_certfile=cert,
            ssl_keyfile=key, log_level="warning")
"""


class TlsDemo:
    """The demo over HTTPS with short DBSC lifetimes, in its own process."""

    def __init__(self, mode: str, folder: Path, tls: tuple[Path, Path]) -> None:
        self.mode = mode
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        log = folder / "server.log"
        self._log = log.open("a")
        store = f"sqlite:///{folder / 'demo.db'}"
        command = [sys.executable, "-c", _LAUNCHER, mode, store, str(self.port),
                   str(tls[0]), str(tls[1]), str(BOUND_TTL), str(ACCESS_TTL)]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=folder, stdout=subprocess.DEVNULL, stderr=self._log, text=True
        )
        _wait_for(self.port, self.process, log)
        with httpx.Client(base_url=self.url, verify=False, timeout=10) as client:  # noqa: S501
            created = client.post("/api/register", json={
                "username": "alice", "password": PASSWORD, "name": "Alice Example"})  # fmt: skip
            assert created.status_code == 201, created.text

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def _spki_hash(cert: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): what --ignore-certificate-errors-spki-list takes."""
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    spki = loaded.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _self_signed(tmp_path_factory.mktemp("dbsc-tls"))


@pytest.fixture(scope="module", params=("session", "hybrid"))
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    tls: tuple[Path, Path],
) -> Iterator[TlsDemo]:  # fmt: skip
    server = TlsDemo(request.param, tmp_path_factory.mktemp(f"dbsc-{request.param}"), tls)
    try:
        yield server
    finally:
        server.stop()


def _launch(playwright: Any, tls: tuple[Path, Path], *, dbsc: bool, netlog: Path | None) -> Any:
    args = [*ARGS, f"--ignore-certificate-errors-spki-list={_spki_hash(tls[0])}"]
    if dbsc:
        args.append(f"--enable-features={DBSC_FEATURES}")
    if netlog is not None:
        args += [f"--log-net-log={netlog}", "--net-log-capture-mode=Default"]
    return playwright.chromium.launch(executable_path=CHROMIUM, args=args)


def _login(page: Any, demo: TlsDemo) -> None:
    page.goto(demo.url + "/")
    form = page.locator('form[action="/login"]')
    form.locator("input[name=username]").fill("alice")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button").click()
    page.wait_for_load_state()
    assert page.locator("h1").first.inner_text() == "Hello, Alice Example"


def _bound(page: Any, demo: TlsDemo, *, expect: bool, within: float = 15.0) -> str:
    """The /theft/dbsc page's verdict, waiting for registration to finish."""
    deadline = time.monotonic() + within
    while True:
        page.goto(demo.url + "/theft/dbsc")
        text = str(page.locator(".box").first.inner_text())
        if text.startswith("Bound:") == expect or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def _thief(demo: TlsDemo, cookies: list[dict[str, Any]]) -> httpx.Response:
    """Another machine with every cookie of the browser (it follows redirects, no key)."""
    jar = httpx.Cookies()
    for cookie in cookies:
        jar.set(cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"])
    with httpx.Client(base_url=demo.url, verify=False, cookies=jar,  # noqa: S501
                      follow_redirects=True, timeout=10) as client:  # fmt: skip
        return client.get("/api/me")


def _theft_rows(page: Any) -> dict[str, str]:
    cells = page.locator("table tr td").all_inner_texts()
    return dict(zip(cells[::2], cells[1::2], strict=True))


def _lifetime(demo: TlsDemo) -> float:
    if demo.mode == "hybrid":
        return ACCESS_TTL + JWT_LEEWAY
    return BOUND_TTL + SERVER_LEEWAY


def _netlog_events(path: Path) -> dict[str, int]:
    log = json.loads(path.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    counts: dict[str, int] = {}
    for event in log["events"]:
        name = names.get(event["type"], "")
        if name.startswith("DBSC_"):
            counts[name] = counts.get(name, 0) + 1
    return counts


def test_chromium_binds_refreshes_and_a_copied_cookie_dies(
    playwright: Any, demo: TlsDemo, tls: tuple[Path, Path]
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    netlog = ARTIFACTS / f"dbsc-{demo.mode}-netlog.json"
    browser = _launch(playwright, tls, dbsc=True, netlog=netlog)
    try:
        context = browser.new_context()
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        events: list[dict[str, Any]] = []
        cdp.on("Network.deviceBoundSessionsAdded", lambda event: events.append(event))
        cdp.on("Network.deviceBoundSessionEventOccurred", lambda event: events.append(event))
        cdp.send("Network.enable")
        cdp.send("Network.enableDeviceBoundSessions", {"enable": True})
        _login(page, demo)
        verdict = _bound(page, demo, expect=True)
        assert verdict.startswith("Bound:"), verdict
        # Past DbscPolicy.pending, in which a request sent before registration finished
        # still passes without the bound cookie.
        time.sleep(PENDING)
        stolen = context.cookies()
        # At once the copy works: the bound cookie is still fresh.
        assert _thief(demo, stolen).status_code == 200
        # The demo's own theft section: the server replays what this browser sent.
        page.locator('form[action="/theft/dbsc/steal"] button').click()
        page.wait_for_load_state()
        rows = _theft_rows(page)
        assert rows["every cookie sent here"].startswith("200: in as Alice")
        # Without the bound cookie the long-lived one is worth nothing (hybrid: a bound
        # session no longer renews by its refresh token).
        assert rows["the long-lived cookie alone"].startswith("401")
        time.sleep(_lifetime(demo) + 2)
        refused = _thief(demo, stolen)
        assert refused.status_code == 401, refused.text
        page.locator('form[action="/theft/dbsc/replay"] button').click()
        page.wait_for_load_state()
        assert _theft_rows(page)["every cookie sent here"].startswith("401")
        page.screenshot(path=str(ARTIFACTS / f"dbsc-{demo.mode}-theft.png"), full_page=True)
        # The browser never notices: it refreshed with its key (proactively or on demand).
        for _ in range(2):
            page.goto(demo.url + "/api/me")
            assert json.loads(page.locator("body").inner_text())["name"] == "Alice Example"
            time.sleep(1)
        (ARTIFACTS / f"dbsc-{demo.mode}-devtools.json").write_text(json.dumps(events, indent=1))
        context.close()
    finally:
        browser.close()
    counts = _netlog_events(netlog)
    # Chromium's own record: it registered and it refreshed.
    assert counts.get("DBSC_REGISTRATION_REQUEST", 0) >= 1, counts
    assert counts.get("DBSC_REFRESH_REQUEST", 0) >= 1, counts


def test_chromium_without_dbsc_keeps_todays_behaviour(
    playwright: Any, demo: TlsDemo, tls: tuple[Path, Path]
) -> None:
    browser = _launch(playwright, tls, dbsc=False, netlog=None)
    try:
        context = browser.new_context()
        page = context.new_page()
        _login(page, demo)
        verdict = _bound(page, demo, expect=False, within=0)
        assert verdict.startswith("Not bound:"), verdict
        stolen = context.cookies()
        assert _thief(demo, stolen).status_code == 200
        page.goto(demo.url + "/api/me")
        assert json.loads(page.locator("body").inner_text())["name"] == "Alice Example"
        if demo.mode == "session":
            # Unbound, the copy outlives any bound cookie: the theft succeeds as today.
            time.sleep(_lifetime(demo) + 2)
            assert _thief(demo, stolen).status_code == 200
        context.close()
    finally:
        browser.close()
