"""open_store(): one URL names any of the four stores; bad URLs fail with advice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import coatcheck.stores as stores
from coatcheck.errors import ConfigurationError
from coatcheck.stores import MemoryStore, SQLiteStore, open_store


def test_memory() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_each_memory_url_is_a_new_store() -> None:
    assert open_store("memory://") is not open_store("memory://")


def test_sqlite_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///coatcheck.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == str(tmp_path / "coatcheck.db")


def test_sqlite_absolute(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/abs.db")  # tmp_path starts with '/': 4 slashes
    assert isinstance(store, SQLiteStore)
    assert store.path == str(tmp_path / "abs.db")


def test_scheme_is_case_insensitive_and_whitespace_trimmed() -> None:
    assert isinstance(open_store("  MEMORY://\n"), MemoryStore)


@pytest.mark.anyio
async def test_redis(redis_url: str) -> None:
    from coatcheck.stores.redis import RedisStore

    store = open_store(redis_url)
    try:
        assert isinstance(store, RedisStore)
        assert stores.RedisStore is RedisStore
    finally:
        await store.close()


@pytest.mark.anyio
async def test_postgres(postgres_url: str) -> None:
    from coatcheck.stores.postgres import PostgresStore

    store = open_store(postgres_url)
    try:
        assert isinstance(store, PostgresStore)
        assert stores.PostgresStore is PostgresStore
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "no store URL"),
        ("   ", "no store URL"),
        ("coatcheck.db", "a store URL looks like"),
        ("mysql://u@h/db", "unknown store URL scheme 'mysql'"),
        ("sqlite://relative.db", "three slashes"),
        ("memory://somewhere", "memory://"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        open_store(url)
    assert "sqlite:///" in str(info.value) or "memory://" in str(info.value)


def test_missing_driver_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fake_store_module.py").write_text("import a_driver_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(stores._SCHEMES, "fake", ("fake_store_module", "FakeStore", "fake"))
    with pytest.raises(ConfigurationError, match=r"pip install 'coatcheck\[fake\]'") as info:
        open_store("fake://x")
    assert isinstance(info.value.__cause__, ImportError)


def test_missing_store_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(stores._SCHEMES, "gone", ("coatcheck.stores._gone", "GoneStore", "x"))
    with pytest.raises(ConfigurationError, match="no gone store"):
        open_store("gone://x")


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError):
        _ = stores.NoSuchStore  # type: ignore[attr-defined]


def test_importing_coatcheck_needs_no_driver() -> None:
    code = (
        "import sys, coatcheck, coatcheck.sessions, coatcheck.stores\n"
        "coatcheck.stores.open_store('memory://')\n"
        "print(sorted(m for m in ('redis', 'psycopg', 'psycopg_pool') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
