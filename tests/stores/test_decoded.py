"""coatcheck.stores._decoded: the decoded-record cache and the JSON reader."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from coatcheck.auth import SessionStrategy
from coatcheck.clock import FrozenClock
from coatcheck.sessions.manager import SessionManager
from coatcheck.stores._decoded import DecodedCache, loads
from coatcheck.stores.sqlite import SQLiteStore

from .contract import make_record


def test_loads_matches_the_standard_library() -> None:
    for text in ['{"a":[1,2.5,null,true],"é":"東京"}', "[]", '"x"', str(2**70), '{"n":-0.0}']:
        assert loads(text) == json.loads(text)
        assert loads(text.encode()) == json.loads(text)
    with pytest.raises(ValueError, match=r"."):
        loads("{not json")


def test_cache_answers_only_for_the_same_raw_value(clock: FrozenClock) -> None:
    record = make_record(clock.now())
    cache = DecodedCache(2)
    cache.put(record.id, ("row", 1), record)
    assert cache.get(record.id, ("row", 1)) is record
    assert cache.get(record.id, ("row", 2)) is None  # the row changed: decode again
    assert cache.get("other", ("row", 1)) is None
    cache.discard(record.id)
    assert cache.get(record.id, ("row", 1)) is None


def test_cache_is_bounded_and_can_be_off(clock: FrozenClock) -> None:
    records = [make_record(clock.now() + i) for i in range(5)]
    cache = DecodedCache(3)
    for r in records:
        cache.put(r.id, r.id, r)
    assert len(cache) == 3
    assert cache.get(records[0].id, records[0].id) is None  # the oldest went first
    assert cache.get(records[4].id, records[4].id) is records[4]
    off = DecodedCache(0)
    off.put(records[0].id, "raw", records[0])
    assert len(off) == 0


@pytest.mark.anyio
async def test_sqlite_reuses_a_record_only_while_its_row_is_unchanged(
    tmp_path: Path, clock: FrozenClock
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    record = make_record(clock.now(), data={"n": 1})
    await store.create(record)
    first = await store.get(record.id, clock.now())
    assert first == record
    assert await store.get(record.id, clock.now()) is first
    await store.touch(record.id, clock.now() + 5, record.expires_at + 5)
    touched = await store.get(record.id, clock.now())
    assert touched is not first
    assert touched is not None
    assert touched.last_seen == clock.now() + 5
    assert await store.update(replace(record, data={"n": 2}, version=record.version + 1))
    changed = await store.get(record.id, clock.now())
    assert changed is not None
    assert changed.data == {"n": 2}
    await store.delete(record.id)
    assert await store.get(record.id, clock.now()) is None
    await store.close()


@pytest.mark.anyio
async def test_session_identities_are_reused_and_read_only(
    tmp_path: Path, clock: FrozenClock
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    strategy = SessionStrategy(SessionManager(store, clock=clock), clock=clock)
    issued = await strategy.issue("ada", data={"name": "Ada"})
    first = await strategy.verify(issued.token)
    second = await strategy.verify(issued.token)
    assert first is not None
    assert second is not None
    assert second.identity is first.identity
    with pytest.raises(TypeError):
        first.identity.claims["name"] = "Mallory"  # type: ignore[index]
    await strategy.revoke(issued.token)
    assert await strategy.verify(issued.token) is None
    await store.close()
