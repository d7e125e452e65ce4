from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from coatcheck.demo import DemoConfig, create_app
from coatcheck.demo.users import (
    MAX_PASSWORD,
    PasswordTooLong,
    PasswordWork,
    UserDirectory,
    UsernameTaken,
)
from coatcheck.errors import InputError

from .conftest import FAST_HASHER


@pytest.fixture
def users() -> UserDirectory:
    return UserDirectory(":memory:", hasher=FAST_HASHER)


def test_register_and_check(users: UserDirectory) -> None:
    user = users.register(" Alice ", "correct horse", "Alice Example")
    assert (user.username, user.name) == ("alice", "Alice Example")
    assert users.check("ALICE", "correct horse") == user
    assert users.get(user.user_id) == user
    stored = users.connection.execute("SELECT password_hash FROM demo_users").fetchone()[0]
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored


def test_wrong_password_and_unknown_user_look_the_same(users: UserDirectory) -> None:
    users.register("alice", "correct horse", "Alice Example")
    assert users.check("alice", "wrong horse") is None
    assert users.check("bob", "correct horse") is None
    assert users.check(None, "x") is None


def test_a_password_over_the_maximum_is_refused_before_hashing(users: UserDirectory) -> None:
    # Issue 12, item 3: a clear 400 (code password_too_long), the same for any name.
    users.register("alice", "correct horse", "Alice Example")
    for name in ("alice", "bob"):
        with pytest.raises(PasswordTooLong) as caught:
            users.check(name, "x" * (MAX_PASSWORD + 1))
        assert caught.value.code == "password_too_long"
    with pytest.raises(PasswordTooLong):
        users.register("carol", "x" * (MAX_PASSWORD + 1), "Carol")
    assert users.check("alice", "x" * MAX_PASSWORD) is None  # at the bound: just wrong


def test_username_taken(users: UserDirectory) -> None:
    users.register("alice", "correct horse", "Alice Example")
    with pytest.raises(UsernameTaken):
        users.register("Alice", "another pass", "Other")


@pytest.mark.parametrize(
    ("username", "password", "name"),
    [
        ("", "correct horse", "A"),
        ("a", "correct horse", "A"),
        ("al ice", "correct horse", "A"),
        ("x" * 40, "correct horse", "A"),
        (7, "correct horse", "A"),
        ("alice", "short", "A"),
        ("alice", None, "A"),
        ("alice", "correct horse", ""),
        ("alice", "correct horse", "   "),
        ("alice", "correct horse", "a\x00b"),
        ("alice", "correct horse", "x" * 101),
        ("alice", "correct horse", ["list"]),
    ],
)
def test_bad_input_is_refused(
    users: UserDirectory, username: object, password: object, name: object
) -> None:
    with pytest.raises(InputError):
        users.register(username, password, name)


# -- bounded hashing work (issue 12, item 3) -----------------------------------------------------


class GaugedHasher(PasswordHasher):
    """Counts the argon2 calls running at the same moment (and the most ever seen)."""

    def __init__(self, hold: float = 0.02) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self._lock = threading.Lock()
        self._hold = hold
        self.running = self.most = self.calls = 0

    def _gauge(self, work: Callable[[], Any]) -> Any:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self._hold)  # argon2's real cost: this is where memory would be held
            return work()
        finally:
            with self._lock:
                self.running -= 1

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        return str(self._gauge(lambda: super(GaugedHasher, self).hash(password, salt=salt)))

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        return bool(self._gauge(lambda: super(GaugedHasher, self).verify(hash, password)))


async def _burst(app: Any, bodies: list[dict[str, str]], path: str = "/api/login") -> list[Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return list(await asyncio.gather(*(client.post(path, json=b) for b in bodies)))


@pytest.mark.anyio
async def test_at_most_two_hashes_run_at_once_in_the_demo(tmp_path: Path) -> None:
    # Regression: 100 concurrent logins for unknown users ran up to the thread pool's 40
    # argon2 hashes at once (64 MiB each: 2.2 GiB). Now two at a time, the rest queue.
    hasher = GaugedHasher()
    config = DemoConfig(store_url="memory://", users_path=str(tmp_path / "u.db"), hasher=hasher)
    app = create_app(config)
    hasher.most = hasher.calls = 0
    unknown = [{"username": f"nobody{i}", "password": "wrong password"} for i in range(30)]
    answers = await _burst(app, unknown)
    assert [a.status_code for a in answers] == [401] * 30
    assert hasher.calls == 30
    assert hasher.most == app.state.demo.hashing.concurrency == 2


@pytest.mark.anyio
async def test_a_full_queue_is_503_with_retry_after_and_counts_nothing(tmp_path: Path) -> None:
    hasher = GaugedHasher(hold=0.3)
    config = DemoConfig(store_url="memory://", users_path=str(tmp_path / "u.db"), hasher=hasher)
    app = create_app(config)
    app.state.demo.hashing = PasswordWork(concurrency=1, queue=2, wait=0.05)
    answers = await _burst(app, [{"username": "alice", "password": "wrong password"}] * 8)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [401] + [503] * 7  # one hashes; two wait 50 ms; five find no room
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.json()["error"] == "server_busy"
    assert busy.headers["retry-after"] == "1"
    # No password was checked for them, so none was counted: 4 more make the 5 allowed.
    app.state.demo.hashing = PasswordWork()
    later = await _burst(app, [{"username": "alice", "password": "wrong password"}] * 4)
    assert [a.status_code for a in later] == [401] * 4
    last = await _burst(app, [{"username": "alice", "password": "wrong password"}])
    assert [a.status_code for a in last] == [429]


@pytest.mark.anyio
async def test_the_bound_holds_for_registrations_too(tmp_path: Path) -> None:
    hasher = GaugedHasher()
    config = DemoConfig(store_url="memory://", users_path=str(tmp_path / "u.db"), hasher=hasher)
    app = create_app(config)
    hasher.most = 0
    people = [{"username": f"user{i}", "password": "long enough", "name": "U"} for i in range(20)]
    answers = await _burst(app, people, "/api/register")
    assert [a.status_code for a in answers] == [201] * 20
    assert hasher.most == 2


def test_a_password_over_the_maximum_is_a_clear_400_in_the_demo(tmp_path: Path) -> None:
    config = DemoConfig(store_url="memory://", users_path=str(tmp_path / "u.db"),
                        hasher=FAST_HASHER)  # fmt: skip
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        long = "x" * (MAX_PASSWORD + 1)
        for path, body in [
            ("/api/login", {"username": "alice", "password": long}),
            ("/api/register", {"username": "alice", "password": long, "name": "A"}),
        ]:
            response = client.post(path, json=body)
            assert response.status_code == 400
            assert response.json()["error"] == "password_too_long"
            assert str(MAX_PASSWORD) in response.json()["message"]


@pytest.mark.parametrize("options", [{"concurrency": 0}, {"queue": 0}, {"wait": 0.0}])
def test_password_work_refuses_a_bound_that_bounds_nothing(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="PasswordWork"):
        PasswordWork(**options)
