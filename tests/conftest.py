"""Shared fixtures: the async backend, a frozen clock, and the real services.

Tests that need Redis or PostgreSQL fail (never skip) when the server is missing:
`.ci/run` starts both, so a missing service is a broken set-up to be seen.
"""

from __future__ import annotations

import os
import socket

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
