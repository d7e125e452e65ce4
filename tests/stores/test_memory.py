"""MemoryStore: the contract, plus what is particular to it."""

from __future__ import annotations

import pytest

from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError
from coatcheck.sessions import SessionStore
from coatcheck.stores.memory import MemoryStore

from .contract import StoreContract, make_record


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


def test_is_a_session_store() -> None:
    assert isinstance(MemoryStore(), SessionStore)


def test_from_url() -> None:
    assert isinstance(MemoryStore.from_url("memory://"), MemoryStore)


@pytest.mark.parametrize("url", ["memory://host", "memory:///path", "memory://?x=1", "sqlite://"])
def test_from_url_refuses_anything_else(url: str) -> None:
    with pytest.raises(ConfigurationError):
        MemoryStore.from_url(url)


@pytest.mark.anyio
async def test_stored_data_is_not_shared_with_the_caller(clock: FrozenClock) -> None:
    store = MemoryStore()
    data = {"cart": [1]}
    record = make_record(clock.now(), data=data)
    await store.create(record)
    data["cart"].append(2)
    got = await store.get(record.id, clock.now())
    assert got is not None
    assert got.data == {"cart": [1]}


@pytest.mark.anyio
async def test_delete_expired_empties_the_user_index(clock: FrozenClock) -> None:
    store = MemoryStore()
    now = clock.now()
    record = make_record(now, expires_at=now + 1)
    await store.create(record)
    assert await store.delete_expired(now + 2) == 1
    assert len(store) == 0
    assert store._by_user == {}
    assert repr(store) == "MemoryStore(<0 sessions>)"


@pytest.mark.anyio
async def test_replay_memory_stays_bounded_by_one_window(clock: FrozenClock) -> None:
    store = MemoryStore()
    for i in range(1000):
        assert await store.remember_once(f"k{i}", 5.0, clock.now() + i)
    # Each write forgets the spent values at the front: about one window is kept.
    assert len(store._replay) <= 10
