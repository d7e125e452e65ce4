"""Run a store's coroutines through :func:`coatcheck.sync.run_sync`, as WSGI does.

:class:`RunSyncStore` wraps a store so that every call the contract suite makes
goes through ``run_sync``: a store method that ever suspended (waited on async I/O)
would fail the suite with ConfigurationError instead of passing quietly.
"""

from __future__ import annotations

from typing import Any

from coatcheck.sessions import SessionRecord, SessionStore
from coatcheck.sync import run_sync

__all__ = ["RunSyncStore"]


class RunSyncStore:
    """A SessionStore whose methods are coroutines that run ``inner`` with run_sync."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        return run_sync(self.inner.get(session_id, now))

    async def create(self, record: SessionRecord) -> None:
        run_sync(self.inner.create(record))

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        run_sync(self.inner.touch(session_id, last_seen, expires_at))

    async def update(self, record: SessionRecord) -> bool:
        return run_sync(self.inner.update(record))

    async def delete(self, session_id: str) -> SessionRecord | None:
        return run_sync(self.inner.delete(session_id))

    async def delete_user(self, user_id: str) -> list[str]:
        return run_sync(self.inner.delete_user(user_id))

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        return run_sync(self.inner.list_user(user_id, now))

    async def delete_expired(self, now: float, limit: int | None = None) -> int:
        return run_sync(self.inner.delete_expired(now, limit))

    async def remember_once(self, key: str, ttl: float, now: float) -> bool:
        return run_sync(self.inner.remember_once(key, ttl, now))  # type: ignore[attr-defined]

    async def close(self) -> None:
        run_sync(self.inner.close())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
