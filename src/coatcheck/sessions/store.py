"""The store protocol: the small surface every session backend implements.

Methods are coroutines because network stores (Redis, PostgreSQL) must never block
the event loop; local stores (memory, SQLite) simply do their work inline. Every
store passes the same contract suite, ``tests/stores/contract.py``.

Rules every implementation keeps:

* ``get`` is one round trip and returns ``None`` for unknown *or expired* ids.
* ``touch`` writes only the renewal fields (``last_seen``, ``expires_at``) and, for
  stores with their own expiry (Redis), moves the entry's TTL to ``expires_at``.
* ``update`` is a compare-and-set on ``version``: it writes ``record`` only when the
  stored version is ``record.version - 1`` and returns whether it did.
* A user's index (``list_user``, ``delete_user``) stays consistent with the sessions
  themselves without scanning every key.
* A backend failure raises :class:`~coatcheck.errors.StoreUnavailable` (cannot reach)
  or :class:`~coatcheck.errors.StoreError`, with the driver's error on ``__cause__``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .record import SessionRecord

__all__ = ["SessionStore"]


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions live. See the module docstring for the rules."""

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        """The live session with this id, or ``None``."""
        ...

    async def create(self, record: SessionRecord) -> None:
        """Store a new session (and add it to its user's index)."""
        ...

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        """Record activity: the renewal write. A missing session is ignored."""
        ...

    async def update(self, record: SessionRecord) -> bool:
        """Compare-and-set ``record`` over version ``record.version - 1``."""
        ...

    async def delete(self, session_id: str) -> SessionRecord | None:
        """Remove one session; return what was removed (``None`` if nothing)."""
        ...

    async def delete_user(self, user_id: str) -> list[str]:
        """Remove every session of ``user_id``; return their ids."""
        ...

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        """The user's live sessions, oldest first."""
        ...

    async def delete_expired(self, now: float, limit: int | None = None) -> int:
        """Remove up to ``limit`` expired sessions (all when ``None``); return how many."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...
