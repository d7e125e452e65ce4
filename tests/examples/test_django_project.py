"""The example Django project (``examples/django_project``), for real.

* Django's test client: the project's own tests (``manage.py test``: greeting, login
  and logout, CSRF, the admin, the API with the browser's cookie and with bearer
  tokens), run as a user runs them, in a process of their own (Django's settings are
  once per process, and these tests' process has the adapter tests' settings).
* A real server on a free port, ``manage.py runserver`` (WSGI) and uvicorn on the
  project's ``asgi.py`` (the async path), driven by the project's native client over
  httpx: obtain, call, refresh with rotation, reuse detected, log out.

The browser flow in Chromium is tests/browser/test_django_example.py.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from ._django_project import PASSWORD, PROJECT, SERVERS, manage, prepare, project_env, serve

pytestmark = pytest.mark.slow


@functools.cache
def _native_client() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "django_native_client", PROJECT / "native_client.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: the dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["memory", "sqlite", "redis", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store the project's ``COATCHECK_STORE`` may name (Redis under a key prefix of
    its own, deleted afterwards; PostgreSQL in a table of its own)."""
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'coatcheck.db'}"
    elif request.param == "postgresql":
        yield request.getfixturevalue("postgres_store_url")
    else:
        import redis

        base = request.getfixturevalue("redis_url")
        prefix = f"ccdjex{secrets.token_hex(4)}:"
        yield f"{base}{'&' if '?' in base else '?'}prefix={prefix}"
        client = redis.Redis.from_url(base)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_the_projects_own_tests_pass_with_djangos_test_client(
    tmp_path: Path, store_url: str
) -> None:
    env = project_env(tmp_path, store=store_url)
    done = manage(env, "test", "notes", "-v", "2")
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    ran = re.search(r"^Ran (\d+) tests?", report, re.M)
    assert ran is not None, report
    # Every test in notes/tests.py ran (a test the runner skipped or lost would hide).
    defined = len(re.findall(r"^    def test_", (PROJECT / "notes" / "tests.py").read_text(), re.M))
    assert int(ran.group(1)) == defined >= 14, report
    assert re.search(r"^OK$", report, re.M), report


def test_misconfiguration_fails_at_start_up_with_the_fix(tmp_path: Path) -> None:
    env = project_env(tmp_path)
    del env["COATCHECK_SIGNING_KEY"]
    done = manage(env, "check")
    assert done.returncode != 0
    assert "SIGNING_KEY" in done.stderr
    assert "coatcheck_keygen" in done.stderr  # how to fix it
    # The fix it names can be followed: the command runs although the checks fail...
    hint = re.search(r"`manage\.py (coatcheck_keygen[^`]*)`", done.stderr)
    assert hint is not None, done.stderr
    made = manage(env, *hint.group(1).split())
    assert made.returncode == 0, made.stderr
    assert '"d"' in made.stdout  # a private JWK
    # ... and the key it prints satisfies them.
    env["COATCHECK_SIGNING_KEY"] = made.stdout.strip()
    fixed = manage(env, "check")
    assert fixed.returncode == 0, fixed.stderr


@pytest.fixture(scope="module", params=SERVERS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp(request.param)
    env = project_env(folder)
    prepare(env)
    with serve(request.param, env, folder) as base_url:
        yield base_url


def test_native_client_obtain_call_refresh_reuse_logout(server: str) -> None:
    native = _native_client()
    client = native.NativeClient(server)
    try:
        with pytest.raises(native.APIError) as refused:
            client.login("alice", "wrong")
        assert (refused.value.status, refused.value.code) == (401, "invalid_credentials")
        pair = client.login("alice", PASSWORD)
        assert set(pair) >= {"access", "refresh", "token_type", "expires_in"}
        assert len(client.http.cookies.jar) == 0  # a native app keeps no cookies
        assert client.request("GET", "/api/me") == {
            "username": "alice",
            "mode": "hybrid",
            "via": "bearer",
        }
        # A bearer POST needs no CSRF token (a browser never sends Authorization itself).
        note = client.request("POST", "/api/notes", json={"text": "from the app"})
        assert note["text"] == "from the app"
        assert [n["text"] for n in client.request("GET", "/api/notes")] == ["from the app"]

        first_access, first_refresh = client.access, client.refresh_token
        client.refresh()
        assert (client.access, client.refresh_token) != (first_access, first_refresh)
        client.refresh()  # the successor used: the first refresh token is retired for good
        assert client.request("GET", "/api/me")["username"] == "alice"
        newest_refresh = client.refresh_token

        thief = native.NativeClient(server)
        thief.refresh_token = first_refresh
        with pytest.raises(native.APIError) as reused:
            thief.refresh()
        thief.close()
        assert (reused.value.status, reused.value.code) == (401, "refresh_token_reused")
        # The whole login is over: its access token, and its newest refresh token.
        with pytest.raises(native.APIError) as over:
            client.request("GET", "/api/me")
        assert over.value.status == 401
        client.refresh_token = newest_refresh
        with pytest.raises(native.APIError):
            client.refresh()

        # A new login, then log out: both tokens stop at once.
        client.login("alice", PASSWORD)
        access, refresh = client.access, client.refresh_token
        client.logout()
        gone = httpx.get(f"{server}/api/me", headers={"Authorization": f"Bearer {access}"})
        assert gone.status_code == 401
        again = httpx.post(f"{server}/api/token/refresh/", json={"refresh": refresh})
        assert again.status_code == 401
    finally:
        client.close()


def test_notes_are_each_users_own(server: str) -> None:
    native = _native_client()
    bob = native.NativeClient(server)
    try:
        bob.login("bob", PASSWORD)
        bob.request("POST", "/api/notes", json={"text": "bob's"})
        assert [n["text"] for n in bob.request("GET", "/api/notes")] == ["bob's"]
        assert bob.request("GET", "/api/me")["username"] == "bob"
        bob.logout()
    finally:
        bob.close()


def test_bad_input_is_a_4xx(server: str) -> None:
    hostile = [
        (
            "POST",
            "/api/token/",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        ),
        ("POST", "/api/token/", {"json": ["a", "list"]}),
        ("POST", "/api/token/refresh/", {"json": {"refresh": "x" * 5000}}),
        ("POST", "/api/token/refresh/", {"json": {"refresh": "\u0000~\ud7ff"}}),
        ("GET", "/api/me", {"headers": {"Authorization": "Bearer ..."}}),
        ("GET", "/api/me", {"headers": {"Authorization": "Bearer " + "A" * 9000}}),
        (
            "GET",
            "/",
            {"headers": {"Cookie": "coatcheck_access=%%%; sessionid=\u00e9\u00e9".encode()}},
        ),
        ("GET", "/", {"headers": {"Cookie": "coatcheck_refresh=" + "x" * 3000}}),
    ]
    for method, path, kwargs in hostile:
        response = httpx.request(method, f"{server}{path}", **kwargs)  # type: ignore[arg-type]
        assert response.status_code < 500, (method, path, response.status_code, response.text[:300])


def test_the_native_client_as_a_program(server: str) -> None:
    done = subprocess.run(
        [sys.executable, str(PROJECT / "native_client.py"), server, "bob", PASSWORD],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "the retired token replayed: refresh_token_reused" in done.stdout
    assert "logged out" in done.stdout
