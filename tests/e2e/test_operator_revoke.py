"""An operator's revoke reaches running servers (issue 12 item 6), across real processes.

Two ``coatcheck demo --mode hybrid`` servers share a store (Redis, then PostgreSQL)
and its revocation feed. A user logs in on the first; both accept the access token
with no store round trip. Then ``coatcheck sessions revoke ID`` (and ``revoke-user``)
runs in a third process: both servers must refuse the token within the feed's bound.
Before, the command only deleted the record, and both servers kept accepting the
token for its whole lifetime (5 minutes) plus the leeway.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis

from .test_hybrid_feed import FEED_BOUND, HybridServer, _login, _me, _until

pytestmark = pytest.mark.slow

#: Session ids the operator revoked in this run (taken out of the shared backlog after).
REVOKED: list[str] = []


class Deployment:
    """Two demo servers on one store and feed, and the operator's command line."""

    def __init__(self, folder: Path, store: str, feed: str) -> None:
        self.store, self.feed = store, feed
        self.servers = [HybridServer(folder, store, feed) for _ in range(2)]

    def __enter__(self) -> Deployment:
        for server in self.servers:
            server.start()
        for server in self.servers:
            _until(lambda s=server: s.feed_state() == "up", 15.0, "a feed did not come up")
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.stop()

    def sessions(self, *argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "coatcheck", "sessions", *argv,
                   "--store", self.store, "--feed", self.feed]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        REVOKED.extend(w for w in done.stdout.split() if w.count(".") == 1 and len(w) == 73)
        return done

    def accepted_anywhere(self, token: str) -> bool:
        return any(_me(server, token) == 200 for server in self.servers)


def _session_id(server: HybridServer, token: str) -> str:
    me = httpx.get(server.url + "/api/me", headers={"authorization": f"Bearer {token}"})
    sid: str = me.json()["session_id"]
    return sid


def _operator_revokes(deployment: Deployment) -> None:
    a, b = deployment.servers
    phone = _login(a, "erin")["token"]
    assert _me(a, phone) == 200
    assert _me(b, phone) == 200
    done = deployment.sessions("revoke", _session_id(a, phone))
    assert done.returncode == 0, done.stderr
    assert "published 1 session id on the revocation feed" in done.stdout
    took = _until(lambda: not deployment.accepted_anywhere(phone), FEED_BOUND,
                  "a server still accepts the revoked session's access token")  # fmt: skip
    print(f"`sessions revoke` reached both servers within {took * 1000:.0f} ms")
    # Everywhere at once: every device of the user.
    laptop, tablet = _login(a, "frank")["token"], _login(b, "frank")["token"]
    assert _me(b, laptop) == 200
    assert _me(a, tablet) == 200
    user_id = httpx.get(
        a.url + "/api/me", headers={"authorization": f"Bearer {laptop}"}
    ).json()["user_id"]
    done = deployment.sessions("revoke-user", user_id)
    assert done.returncode == 0, done.stderr
    assert "revoked 2 sessions" in done.stdout
    assert "published 2 session ids on the revocation feed" in done.stdout
    took = _until(
        lambda: not (deployment.accepted_anywhere(laptop) or deployment.accepted_anywhere(tablet)),
        FEED_BOUND, "a server still accepts a revoked user's access token",
    )  # fmt: skip
    print(f"`sessions revoke-user` reached both servers within {took * 1000:.0f} ms")


@pytest.fixture
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("operator")


@pytest.mark.redis
def test_operator_revoke_on_redis(folder: Path, redis_url: str) -> None:
    prefix = f"cchop{secrets.token_hex(3)}:"
    channel = f"cchop_{secrets.token_hex(4)}"
    store = f"{redis_url}?prefix={prefix}"
    try:
        with Deployment(folder, store, f"{redis_url}?channel={channel}") as deployment:
            _operator_revokes(deployment)
    finally:
        asyncio.run(_clean_redis(redis_url, [prefix + "*", channel + ":backlog"]))


async def _clean_redis(url: str, patterns: list[str]) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        for pattern in patterns:
            async for key in client.scan_iter(match=pattern, count=1000):
                await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture
def pg_table(postgres_url: str) -> Iterator[str]:
    table = f"cchop_{secrets.token_hex(4)}"
    REVOKED.clear()
    yield table
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute("DELETE FROM coatcheck_schema_version WHERE name = %s", (table,))
        # The CLI asks for a day: take this test's revocations out of the shared backlog.
        conn.execute(
            "DELETE FROM coatcheck_revocations WHERE session_id = ANY(%s)", (REVOKED,)
        )


@pytest.mark.postgres
def test_operator_revoke_on_postgres(folder: Path, postgres_url: str, pg_table: str) -> None:
    channel = f"cchop_{secrets.token_hex(4)}"
    store = f"{postgres_url}?table={pg_table}"
    with Deployment(folder, store, f"{postgres_url}?channel={channel}") as deployment:
        _operator_revokes(deployment)
