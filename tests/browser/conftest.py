"""Fixtures for the real-browser tests: Debian's chromium under Playwright, demo servers.

Chromium is never downloaded: it is ``/usr/bin/chromium`` from apt (``.ci/run`` and
``./dev test`` install it when missing). Without it these tests FAIL, never skip.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .._net import free_port

CHROMIUM = os.environ.get("COATCHECK_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "correct horse battery"
MODES = ("session", "jwt", "hybrid")

# Serves the demo over TLS: the CLI only speaks plain HTTP (it expects a TLS proxy).
_TLS_LAUNCHER = """
import sys, uvicorn
from coatcheck.demo import DemoConfig, create_app
mode, store, port, cert, key = sys.argv[1:6]
print("ready", flush=True)
uvicorn.run(create_app(DemoConfig(mode=mode, store_url=store, https=True)), host="127.0.0.1",
            port=int(port), ssl_certfile=cert, ssl_keyfile=key, log_level="warning")
"""


def _wait_for(port: int, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the demo exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the demo did not start listening in time")


class Demo:
    """One demo process on a loopback port, over HTTP or (with ``tls``) HTTPS."""

    def __init__(
        self,
        mode: str,
        folder: Path,
        tls: tuple[Path, Path] | None = None,
        *,
        register: bool = True,
    ) -> None:
        self.mode = mode
        self.port = free_port()
        self.scheme = "https" if tls else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        store = f"sqlite:///{folder / 'demo.db'}"
        if tls:
            command = [sys.executable, "-c", _TLS_LAUNCHER, mode, store, str(self.port),
                       str(tls[0]), str(tls[1])]  # fmt: skip
        else:
            command = [sys.executable, "-m", "coatcheck", "demo", "--mode", mode,
                       "--store", store, "--port", str(self.port)]  # fmt: skip
        log = folder / "server.log"
        self._log = log.open("a")
        self.process = subprocess.Popen(
            command, cwd=folder, stdout=subprocess.DEVNULL, stderr=self._log, text=True
        )
        _wait_for(self.port, self.process, log)
        if not register:  # a restart on the same files: the users are there already
            return
        with httpx.Client(base_url=self.url, verify=False, timeout=10) as client:  # noqa: S501
            for username, name in (("alice", "Alice Example"), ("bob", "Bob Example")):
                created = client.post(
                    "/api/register", json={"username": username, "password": PASSWORD, "name": name}
                )
                assert created.status_code == 201, created.text

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# Module scope, not session: while Playwright's sync API is running it holds an asyncio
# loop in this thread, and every later async test would fail ("loop already running").
@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium "
            "(never let Playwright download a browser)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module", params=MODES)
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    server = Demo(request.param, tmp_path_factory.mktemp(f"browser-{request.param}"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", params=MODES)
def tls_demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp(f"browser-tls-{request.param}")
    server = Demo(request.param, folder, tls=_self_signed(folder))
    try:
        yield server
    finally:
        server.stop()


class _AttackerPage(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        body = (
            "<!doctype html><title>win a prize</title>"
            f'<form id=evil method=post action="{self.target}/logout">'
            "<button id=go>Claim your prize</button></form>"
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def attacker(demo: Demo) -> Iterator[str]:
    """A page on a second loopback port (same site, another origin) posting to the demo."""
    handler = type("Handler", (_AttackerPage,), {"target": demo.url})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
