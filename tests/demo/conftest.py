from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from coatcheck.demo import DemoConfig, create_app

#: Cheap argon2id parameters so tests stay fast; the demo itself uses the defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ALICE = {"username": "alice", "password": "correct horse", "name": "Alice Example"}

MakeClient = Callable[..., TestClient]


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
        client = TestClient(create_app(config), base_url="http://127.0.0.1")
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
