"""Each example runs for real: login -> me -> logout.

``fastapi_app`` through Starlette's TestClient, ``flask_app`` under the standard
library's WSGI server in a thread, ``native_api`` under uvicorn in a child process.
Then what they must show the right way (issue 12 items 4 and 5): a password with
non-ASCII characters is checked, not a 500 (``hmac.compare_digest`` on ``str`` raised
for a known user, so the 500/401 pair told which usernames exist), and no body,
however hostile, gets a 5xx.
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
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from .._hostile import json_bodies
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
    # Registered, as an import would: pydantic resolves the models' annotations there.
    monkeypatch.setitem(sys.modules, spec.name, module)
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


# -- the password check and hostile bodies (issue 12 items 4 and 5) -------------------------

#: path -> the fields the example's /login reads, each with a plausible value.
LOGIN_FIELDS = {"username": "alice", "password": "correct horse", "remember": "yes"}


class _FlaskClient:
    """Flask's own test client with httpx's ``post(content=..., headers=...)`` shape."""

    def __init__(self, app: Any) -> None:
        self._client = app.test_client()

    def post(self, path: str, *, content: bytes = b"", json: Any = None,
             headers: dict[str, str] | None = None) -> Any:  # fmt: skip
        if json is not None:
            response = self._client.post(path, json=json, headers=headers or {})
        else:
            response = self._client.post(path, data=content, headers=headers or {})
        return _Answer(response.status_code, response.get_json(silent=True), response.text)


class _Answer:
    def __init__(self, status_code: int, body: Any, text: str) -> None:
        self.status_code = status_code
        self._body = body
        self.text = text

    def json(self) -> Any:
        return self._body


@pytest.fixture(params=["fastapi_app", "native_api", "flask_app"])
def example(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    module = _load(request.param, monkeypatch)
    if request.param == "flask_app":
        yield _FlaskClient(module.app)
        return
    with TestClient(module.app) as client:
        yield client


@pytest.mark.parametrize("password", ["é", "pässwörd", "\u00e9" * 40, "🔑", "correct horse\u0301"])
def test_non_ascii_password_is_checked_not_a_500(example: Any, password: str) -> None:
    # Before: 500 for the known user (compare_digest raised), 401 for an unknown one.
    known = example.post("/login", json={"username": "alice", "password": password})
    unknown = example.post("/login", json={"username": "nobody", "password": password})
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert (known.status_code, known.json()["error"]) == (401, "invalid_credentials")


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "\\ud800", "password": "x"}',
        b'{"username": "alice", "password": "\\ud800"}',
        b'{"username": "alice", "password": "correct horse\\u0000"}',
        b'{"username": "alice", "password": "\xed\xa0\x80"}',
    ],
)
def test_text_that_is_not_unicode_is_400(example: Any, body: bytes) -> None:
    answer = example.post("/login", content=body, headers={"content-type": "application/json"})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_text")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=json_bodies(LOGIN_FIELDS))
def test_hostile_login_bodies_never_5xx(example: Any, body: bytes) -> None:
    answer = example.post("/login", content=body, headers={"content-type": "application/json"})
    assert answer.status_code < 500, (body[:200], answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        # FastAPI's own refusal of a body it cannot parse keeps its {"detail": ...} shape.
        assert "error" in answer.json() or "detail" in answer.json()
