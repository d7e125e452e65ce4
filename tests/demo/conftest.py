from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from coatcheck.demo import DemoConfig, create_app

#: Cheap argon2id parameters so tests stay fast; the demo itself uses the defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ALICE = {"username": "alice", "password": "correct horse", "name": "Alice Example"}

MakeClient = Callable[..., TestClient]
_TOKEN_RE = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]+)"')
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def page_token(client: TestClient, path: str = "/") -> str:
    """The CSRF token of the form on ``path``, as a browser showing that page holds it."""
    match = _TOKEN_RE.search(client.get(path).text)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


class Browser(TestClient):
    """A TestClient that sends, like a browser on the demo's page, the page's CSRF token.

    Before each unsafe request that a browser would make (it holds cookies, or it is
    not a JSON API call) it loads ``/`` (which may set the pre-session or
    double-submit cookie) and sends that page's token in the ``x-csrf-token`` header,
    unless the test sets one itself or passes ``csrf=False``. The CSRF checks
    themselves are tested in tests/demo/test_csrf*.py.
    """

    def request(  # type: ignore[override]
        self, method: str, url: Any, *, csrf: bool = True, **kwargs: Any
    ) -> Any:
        if csrf and method.upper() in _UNSAFE and (self.cookies or kwargs.get("json") is None):
            headers = dict(kwargs.pop("headers", None) or {})
            if not any(k.lower() == "x-csrf-token" for k in headers):
                headers["x-csrf-token"] = page_token(self)
            kwargs["headers"] = headers
        return super().request(method, url, **kwargs)

    def post(self, url: Any, *, csrf: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.request("POST", url, csrf=csrf, **kwargs)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[MakeClient]:
    clients: list[TestClient] = []

    def make(mode: str = "session", store: str = "memory://", **options: object) -> TestClient:
        config = DemoConfig(
            mode=mode,
            store_url=store,
            users_path=str(tmp_path / "users.db"),
            hasher=FAST_HASHER,
            **options,  # type: ignore[arg-type]
        )
        # https=True means served over HTTPS: Secure cookies only come back over https.
        scheme = "https" if options.get("https") else "http"
        client = Browser(create_app(config), base_url=f"{scheme}://127.0.0.1")
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(params=["session", "jwt"])
def client(request: pytest.FixtureRequest, make_client: MakeClient) -> TestClient:
    return make_client(request.param)


def register_and_login(client: TestClient, *, remember: bool = True) -> None:
    response = client.post("/register", data=ALICE, follow_redirects=False)
    assert response.status_code == 303
    form = {"username": "alice", "password": ALICE["password"]}
    if remember:
        form["remember"] = "on"
    response = client.post("/login", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
