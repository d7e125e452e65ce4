"""Shared fixtures: the async backend, a frozen clock, and the real services.

Tests that need Redis or PostgreSQL fail (never skip) when the server is missing:
`.ci/run` starts both, so a missing service is a broken set-up to be seen.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from coatcheck.clock import FrozenClock

REDIS_URL = os.environ.get("COATCHECK_TEST_REDIS", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("COATCHECK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_800_000_000.0)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _reachable("127.0.0.1", 6379):
        pytest.fail("Redis is not running on 127.0.0.1:6379 (start it with .ci/services)")
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres_url() -> str:
    if not _reachable("127.0.0.1", 5432):
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (start it with .ci/services)")
    return POSTGRES_URL


def _services_env() -> dict[str, str]:
    """Where .ci/services started the Redis Cluster and Sentinel group (its env file)."""
    found = {k: v for k, v in os.environ.items() if k.startswith("COATCHECK_TEST_REDIS_")}
    path = Path(__file__).resolve().parent.parent / ".ci" / "state" / "services.env"
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                found.setdefault(key.strip(), value.strip())
    return found


def _hosts_up(url: str) -> bool:
    hosts = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not _reachable(host, int(port)):
            return False
    return True


def _topology_url(name: str, what: str) -> str:
    url = _services_env().get(name)
    if not url:
        pytest.fail(f"no {what} is running: start it with .ci/services (./dev test does)")
    if not _hosts_up(url):
        pytest.fail(f"the {what} at {url} does not answer: restart it with .ci/services")
    return url


@pytest.fixture(scope="session")
def redis_cluster_url() -> str:
    """``redis+cluster://...`` of the shared test cluster (3 masters, 3 replicas)."""
    return _topology_url("COATCHECK_TEST_REDIS_CLUSTER", "Redis Cluster")


@pytest.fixture(scope="session")
def redis_sentinel_url() -> str:
    """``redis+sentinel://.../coatcheck/15`` of the shared Sentinel group."""
    return _topology_url("COATCHECK_TEST_REDIS_SENTINEL", "Redis Sentinel group")


@pytest.fixture
def postgres_store_url(postgres_url: str) -> Iterator[str]:
    """A store URL with a table of its own, dropped afterwards: test runs sharing the
    database (and its default table's schema version) never see each other."""
    import psycopg
    import psycopg.sql

    table = f"cct_{secrets.token_hex(4)}"
    yield f"{postgres_url}{'&' if '?' in postgres_url else '?'}table={table}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        # The store's own table and every side table it made (attempts, ...).
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (table + "%",)
        ).fetchall()
        drop = psycopg.sql.SQL("DROP TABLE IF EXISTS {}")
        for (name,) in rows:
            conn.execute(drop.format(psycopg.sql.Identifier(name)))
        conn.execute("DELETE FROM coatcheck_schema_version WHERE name = %s", (table,))
