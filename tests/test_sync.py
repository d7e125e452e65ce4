"""coatcheck.sync.run_sync: the public way for WSGI code to drive the core's coroutines."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

import coatcheck
from coatcheck.auth import Authenticator, SessionStrategy
from coatcheck.errors import ConfigurationError
from coatcheck.sessions import SessionManager
from coatcheck.stores import SQLiteStore
from coatcheck.sync import run_sync


def test_it_is_public_and_documented() -> None:
    assert coatcheck.run_sync is run_sync
    assert "run_sync" in coatcheck.__all__
    assert run_sync.__module__ == "coatcheck.sync"
    assert run_sync.__doc__ is not None
    assert "ConfigurationError" in run_sync.__doc__


@pytest.mark.parametrize(
    "first", ["coatcheck.sync", "coatcheck", "coatcheck.adapters.wsgi", "coatcheck.adapters.flask"]
)
def test_imports_in_any_order_without_a_cycle(first: str) -> None:
    # Each in a fresh interpreter: a cycle shows only on the first import.
    code = (
        f"import {first}\n"
        "from coatcheck import run_sync\n"
        "from coatcheck.sync import run_sync as b\n"
        "assert run_sync is b"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_login_in_a_wsgi_view(tmp_path: object) -> None:
    store = SQLiteStore(f"{tmp_path}/s.db")
    authenticator = Authenticator(SessionStrategy(SessionManager(store)))
    result = run_sync(authenticator.login("ada", headers={}))
    assert run_sync(authenticator.strategy.verify(result.token)) is not None


def test_a_coroutine_waiting_on_real_io_is_a_configuration_error() -> None:
    async def waits() -> None:
        await asyncio.sleep(0.01)  # a real timer: it needs a loop

    with pytest.raises(ConfigurationError, match="sync=True"):
        run_sync(waits())
