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

__all__ = ["ReplayCache", "SessionStore"]


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


@runtime_checkable
class ReplayCache(Protocol):
    """Remembers one-time values (DPoP proof ids, RFC 9449 §11.1) for a while.

    Every store class is one. ``remember_once`` is atomic across every process that
    shares the backend: of many concurrent calls with one key, exactly one returns
    ``True`` (one ``SET NX PX`` on Redis, one ``INSERT ... ON CONFLICT`` on SQL).
    Keys are short ASCII strings the caller derives (hashes); entries vanish by
    themselves on Redis and are collected by ``delete_expired`` (and a bounded sweep
    every so many writes) elsewhere. Raises StoreUnavailable or StoreError like the
    rest of the store: an outage refuses the request rather than skip the check.
    """

    async def remember_once(self, key: str, ttl: float, now: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds from ``now``; ``False`` if it already was."""
        ...
