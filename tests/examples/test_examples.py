"""Each example runs for real: login -> me -> logout.

``fastapi_app`` through Starlette's TestClient, ``flask_app`` under the standard
library's WSGI server in a thread, ``native_api`` under uvicorn in a child process.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest

from .._net import free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ALICE = {"username": "alice", "password": "correct horse"}


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("COATCHECK_STORE", "memory://")
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wait_for(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("the example server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the example server did not start")


def test_fastapi_app(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _load("fastapi_app", monkeypatch)
    with TestClient(module.app) as client:
        assert client.get("/me").json()["error"] == "missing_credentials"
        wrong = client.post("/login", json={**ALICE, "password": "nope"})
        assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_credentials")
        login = client.post("/login", json={**ALICE, "remember": True})
        assert login.json() == {"hello": "Alice Example"}
        assert "HttpOnly" in login.headers["set-cookie"]
        assert client.get("/me").json() == {"user_id": "alice", "name": "Alice Example"}
        # The session cookie is ambient, so logging out needs the CSRF token.
        refused = client.post("/logout")
        assert (refused.status_code, refused.json()["error"]) == (403, "csrf_token_missing")
        forged = client.post("/logout", headers={"X-CSRF-Token": "forged"})
        assert forged.status_code == 403
        assert client.get("/me").status_code == 200  # still logged in
        token = client.get("/csrf").json()["csrf_token"]
        assert client.post("/logout", headers={"X-CSRF-Token": token}).json() == {"ok": True}
        assert client.get("/me").status_code == 401


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def flask_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    module = _load("flask_app", monkeypatch)
    server = make_server("127.0.0.1", 0, module.app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_flask_app(flask_server: str) -> None:
    with httpx.Client(base_url=flask_server, timeout=10) as client:
        assert client.get("/me").status_code == 401
        login = client.post("/login", json=ALICE)
        assert login.json() == {"hello": "Alice Example"}
        me = client.get("/me").json()
        assert (me["user_id"], me["name"]) == ("alice", "Alice Example")
        # The session cookie is ambient, so logging out needs the CSRF token.
        refused = client.post("/logout")
        assert (refused.status_code, refused.json()["error"]) == (403, "csrf_token_missing")
        assert client.post("/logout", headers={"X-CSRF-Token": me["csrf_token"]}).json() == {
            "ok": True}  # fmt: skip
        assert client.get("/me").status_code == 401


@pytest.fixture
def native_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "native_api:app", "--app-dir", str(EXAMPLES),
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    env = {**os.environ, "COATCHECK_STORE": "memory://"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env)
    try:
        _wait_for(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_native_api(native_server: str) -> None:
    with httpx.Client(base_url=native_server, timeout=10) as client:
        login = client.post("/login", json=ALICE)
        body = login.json()
        assert body["token_type"] == "Bearer"
        assert login.headers["cache-control"] == "no-store"
        assert "set-cookie" not in login.headers
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        assert client.get("/me", headers=bearer).json() == {
            "user_id": "alice", "name": "Alice Example"}  # fmt: skip
        assert client.post("/logout", headers=bearer).json() == {"ok": True}
        after = client.get("/me", headers=bearer)
        assert (after.status_code, after.json()["error"]) == (401, "invalid_credentials")
        spec = client.get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
