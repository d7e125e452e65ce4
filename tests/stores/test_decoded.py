"""coatcheck.stores._decoded: the JSON reader the serialising stores share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coatcheck.auth import SessionStrategy
from coatcheck.clock import FrozenClock
from coatcheck.sessions.manager import SessionManager
from coatcheck.stores._decoded import loads
from coatcheck.stores.sqlite import SQLiteStore

from .contract import make_record


def test_loads_matches_the_standard_library() -> None:
    for text in ['{"a":[1,2.5,null,true],"é":"東京"}', "[]", '"x"', str(2**70), '{"n":-0.0}']:
        assert loads(text) == json.loads(text)
        assert loads(text.encode()) == json.loads(text)
    with pytest.raises(ValueError, match=r"."):
        loads("{not json")


@pytest.mark.anyio
async def test_sqlite_reads_every_change_of_a_row(tmp_path: Path, clock: FrozenClock) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    record = make_record(clock.now(), data={"n": 1})
    await store.create(record)
    assert await store.get(record.id, clock.now()) == record
    await store.touch(record.id, clock.now() + 5, record.expires_at + 5)
    touched = await store.get(record.id, clock.now())
    assert touched is not None
    assert touched.last_seen == clock.now() + 5
    await store.delete(record.id)
    assert await store.get(record.id, clock.now()) is None
    await store.close()


@pytest.mark.anyio
async def test_session_identities_are_read_only(tmp_path: Path, clock: FrozenClock) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    strategy = SessionStrategy(SessionManager(store, clock=clock), clock=clock)
    issued = await strategy.issue("ada", data={"name": "Ada"})
    verified = await strategy.verify(issued.token)
    assert verified is not None
    assert verified.identity.name == "Ada"
    with pytest.raises(TypeError):
        verified.identity.claims["name"] = "Mallory"  # type: ignore[index]
    await strategy.revoke(issued.token)
    assert await strategy.verify(issued.token) is None
    await store.close()
