"""Login protection in the demo: throttling, no user enumeration, fixation, open redirects."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from argon2 import PasswordHasher

from coatcheck.clock import FrozenClock
from coatcheck.demo import DemoConfig, create_app
from coatcheck.demo.users import UserDirectory

from .conftest import ALICE, FAST_HASHER, Browser, MakeClient, page_token

WRONG = {"username": "alice", "password": "wrong password"}
UNKNOWN = {"username": "nobody", "password": "wrong password"}


def _form_login(client: Browser, fields: dict[str, str]) -> Any:
    return client.post("/login", data=fields, follow_redirects=False)


# -- rate limiting --------------------------------------------------------------------------


@pytest.mark.parametrize("who", [WRONG, UNKNOWN], ids=["wrong-password", "unknown-user"])
def test_api_login_is_throttled_alike(make_client: MakeClient, who: dict[str, str]) -> None:
    client = make_client("session")
    client.post("/api/register", json=ALICE)
    for _ in range(5):
        response = client.post("/api/login", json=who)
        assert response.status_code == 401
    limited = client.post("/api/login", json=who)
    assert limited.status_code == 429
    body = limited.json()
    assert body["error"] == "rate_limited"
    assert body["retry_after"] >= 1
    assert int(limited.headers["retry-after"]) >= 1
    # While locked even the right password waits (else the lock would tell the password).
    right = client.post("/api/login", json={"username": who["username"], "password": "x" * 12})
    assert right.status_code == 429


def test_form_login_is_throttled_with_an_html_page(make_client: MakeClient) -> None:
    client = make_client("jwt")
    client.post("/api/register", json=ALICE)
    for _ in range(5):
        assert _form_login(client, WRONG).status_code == 401
    limited = client.post("/login", data=WRONG, headers={"Accept": "text/html"})
    assert limited.status_code == 429
    assert "rate_limited" in limited.text
    assert "retry-after" in limited.headers
    ok = client.post("/login", data={"username": "alice", "password": ALICE["password"]})
    assert ok.status_code == 429


def test_success_resets_the_account_count(make_client: MakeClient) -> None:
    client = make_client("session")
    client.post("/api/register", json=ALICE)
    good = {"username": "alice", "password": ALICE["password"]}
    for _ in range(3):
        for _ in range(4):
            assert client.post("/api/login", json=WRONG).status_code == 401
        assert client.post("/api/login", json=good).status_code == 200


def test_the_lock_is_kept_in_the_store_across_app_instances(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    config = DemoConfig(store_url=store, users_path=str(tmp_path / "u.db"), hasher=FAST_HASHER)
    with Browser(create_app(config), base_url="http://127.0.0.1") as first:
        first.post("/api/register", json=ALICE)
        for _ in range(5):
            first.post("/api/login", json=WRONG)
    with Browser(create_app(config), base_url="http://127.0.0.1") as second:
        assert second.post("/api/login", json=WRONG).status_code == 429


# -- bursts (issue 12, item 2) ------------------------------------------------------------------

BURST_RUN = secrets.token_hex(4)
BURST_PREFIX = f"cct:burst{BURST_RUN}:"


@pytest.fixture(scope="module", autouse=True)
def _drop_burst_keys(redis_url: str) -> Iterator[None]:
    yield
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=BURST_PREFIX + "*", count=1000):
        client.delete(key)
    client.close()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
async def test_200_concurrent_wrong_passwords_get_5_password_checks(
    kind: str, tmp_path: Path, redis_url: str, postgres_store_url: str
) -> None:
    # Regression (issue 12, item 2): 200 concurrent wrong passwords for one account from
    # one address were all checked (199 x 401 and a 200 with a token, no 429).
    hasher = CountingHasher()
    config = DemoConfig(
        store_url={
            "memory": "memory://",
            "sqlite": f"sqlite:///{tmp_path / 'burst.db'}",
            "redis": f"{redis_url}?prefix={BURST_PREFIX}",
            "postgres": postgres_store_url,
        }[kind],
        users_path=str(tmp_path / "users.db"),
        hasher=hasher,
        clock=FrozenClock(1_800_000_000.0),  # the burst takes no time: no back-off ends in it
    )
    app = create_app(config)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            assert (await client.post("/api/register", json=ALICE)).status_code == 201
            hasher.verified.clear()
            burst = [client.post("/api/login", json=WRONG) for _ in range(199)]
            right = {"username": "alice", "password": ALICE["password"]}
            answers = await asyncio.gather(*burst, client.post("/api/login", json=right))
    finally:
        await app.state.demo.store.close()
    statuses = Counter(response.status_code for response in answers)
    assert len(hasher.verified) == statuses[401] + statuses[200] == 5, statuses
    # The rest are refused without a password check: 429, or on a machine so loaded that
    # a request waits longer than the Redis pool's timeout for a connection, 503 (fail
    # closed: nothing reserved, nothing checked).
    overloaded = [r for r in answers if r.status_code == 503]
    assert statuses[429] + len(overloaded) == 195, statuses
    assert all(r.json()["error"] == "store_unavailable" for r in overloaded)
    assert kind == "redis" or not overloaded
    limited = next(r for r in answers if r.status_code == 429)
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


def test_registration_counts_against_the_address(make_client: MakeClient) -> None:
    # Issue 12, item 3: /api/register hashed a password for anyone, without any limit.
    client = make_client("session")
    for i in range(50):
        who = {"username": f"user{i}", "password": "long enough", "name": f"User {i}"}
        assert client.post("/api/register", json=who).status_code == 201
    more = {"username": "user50", "password": "long enough", "name": "User 50"}
    limited = client.post("/api/register", json=more)
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    # Its own words: nobody was signing in.
    wait = int(limited.headers["retry-after"])
    assert limited.json()["message"] == (
        f"too many registrations from this address; try again in {wait} second"
        + ("" if wait == 1 else "s")
    )
    # Bad input is refused before anything is counted or hashed.
    assert client.post("/api/register", json={**more, "username": "?"}).status_code == 400
    # The same address's sign-ins share that budget.
    login = client.post("/api/login", json={"username": "user1", "password": "long enough"})
    assert login.status_code == 429
    assert login.json()["message"].startswith("too many failed sign-in attempts; try again in ")


# -- no user enumeration: the same code path ---------------------------------------------------


class CountingHasher(PasswordHasher):
    """Records every verification, so the test compares code paths, not wall time."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


def test_unknown_user_and_wrong_password_do_the_same_work() -> None:
    hasher = CountingHasher()
    users = UserDirectory(":memory:", hasher=hasher)
    users.register("alice", ALICE["password"], "Alice")
    real_hash = users.connection.execute("SELECT password_hash FROM demo_users").fetchone()[0]
    hasher.verified.clear()
    assert users.check("alice", "wrong password") is None
    assert users.check("nobody", "wrong password") is None
    assert users.check("NOT a valid name!", "wrong password") is None
    wrong, unknown, invalid = hasher.verified
    assert wrong == real_hash
    assert unknown == invalid != real_hash  # the dummy hash
    # The dummy hash costs what a real one costs: same argon2id variant and parameters.
    params = re.compile(r"^\$argon2id\$v=\d+\$m=\d+,t=\d+,p=\d+\$")
    real_params = params.match(real_hash)
    dummy_params = params.match(unknown)
    assert real_params is not None
    assert dummy_params is not None
    assert real_params.group(0) == dummy_params.group(0)


def test_unknown_user_and_wrong_password_answer_the_same(tmp_path: Path) -> None:
    hasher = CountingHasher()
    config = DemoConfig(store_url="memory://", users_path=str(tmp_path / "u.db"), hasher=hasher)
    with Browser(create_app(config), base_url="http://127.0.0.1") as client:
        client.post("/api/register", json=ALICE)
        hasher.verified.clear()
        answers = []
        for who in (WRONG, UNKNOWN):
            response = client.post("/api/login", json=who)
            headers = {k: v for k, v in response.headers.items() if k not in ("date",)}
            answers.append((response.status_code, response.content, headers))
        assert answers[0] == answers[1]
        assert len(hasher.verified) == 2  # one argon2 verification each
        form_wrong = _form_login(client, WRONG)
        form_unknown = _form_login(client, UNKNOWN)
        assert form_wrong.status_code == form_unknown.status_code == 401
        assert "Wrong username or password." in form_wrong.text
        assert "Wrong username or password." in form_unknown.text


# -- session fixation --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["session", "hybrid"])
def test_a_planted_session_is_not_the_one_after_login(make_client: MakeClient, mode: str) -> None:
    victim = make_client(mode)
    # The attacker logs in on the same site and plants their own token in the victim's jar.
    victim.post("/api/register", json={"username": "mallory", "password": "m" * 12, "name": "M"})
    planted = victim.post(
        "/api/login", json={"username": "mallory", "password": "m" * 12}
    ).json()["token"]
    cookie_name = "coatcheck_session" if mode == "session" else "coatcheck_access"
    victim.post("/api/register", json=ALICE)
    for value in (planted, "garbage-planted-value"):
        victim.cookies.set(cookie_name, value)
        token = page_token(victim)
        login = victim.post(
            "/login",
            data={"username": "alice", "password": ALICE["password"], "csrf_token": token},
            csrf=False, follow_redirects=False,
        )
        assert login.status_code == 303
        [issued] = [
            v.split(";")[0].split("=", 1)[1]
            for k, v in login.headers.multi_items()
            if k == "set-cookie" and v.startswith(cookie_name + "=")
        ]
        assert issued
        assert issued != value
        victim.cookies.clear()
        victim.cookies.set(cookie_name, issued)
        assert "Hello, Alice Example" in victim.get("/").text
        victim.cookies.clear()
    # The planted session was ended by the victim's login (revoke_previous): not reusable.
    gone = victim.get("/api/me", headers={"Authorization": f"Bearer {planted}"})
    assert gone.status_code == 401


# -- open redirects ---------------------------------------------------------------------------

_EVIL_NEXT = [
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "/%2F%2Fevil.example",
    "/%2fevil.example",
    "/%5Cevil.example",
    "%2F%2Fevil.example",
    "/\t/evil.example",
    "/%09/evil.example",
    " //evil.example",
    "/x%0d%0aSet-Cookie:%20a=b",
    "data:text/html,hi",
    "",
]


@pytest.mark.parametrize("target", _EVIL_NEXT)
def test_login_next_never_leaves_the_origin(make_client: MakeClient, target: str) -> None:
    client = make_client("session")
    client.post("/api/register", json=ALICE)
    login = client.post(
        "/login",
        data={"username": "alice", "password": ALICE["password"], "next": target},
        follow_redirects=False,
    )
    assert login.status_code == 303
    assert login.headers["location"] == "/"


def test_login_next_keeps_a_same_origin_path(make_client: MakeClient) -> None:
    client = make_client("session")
    client.post("/api/register", json=ALICE)
    guest = client.get("/sessions").text
    assert '<input type=hidden name="next" value="/sessions">' in guest
    assert 'name="next"' not in client.get("/?next=//evil.example").text
    login = client.post(
        "/login",
        data={"username": "alice", "password": ALICE["password"], "next": "/sessions?x=1"},
        follow_redirects=False,
    )
    assert login.headers["location"] == "/sessions?x=1"
    # A failed login keeps the safe target in the re-rendered form.
    client.cookies.clear()
    again = client.post("/login", data={**WRONG, "next": "/sessions"})
    assert '<input type=hidden name="next" value="/sessions">' in again.text


def test_429_says_when_to_try_again_like_retry_after(make_client: MakeClient) -> None:
    client = make_client("session")
    client.post("/api/register", json=ALICE)
    for _ in range(5):
        client.post("/api/login", json=WRONG)
    limited = client.post("/api/login", json=WRONG)
    wait = int(limited.headers["retry-after"])
    unit = "second" if wait == 1 else "seconds"
    assert f"try again in {wait} {unit}" in limited.json()["message"]
    page = client.post("/login", data=WRONG)
    assert page.status_code == 429
    assert f"try again in {page.headers['retry-after']} " in page.text
