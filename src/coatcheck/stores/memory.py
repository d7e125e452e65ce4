"""MemoryStore: the reference session store, and the test double.

Plain dicts in one process: nothing survives a restart and nothing is shared
between workers, so it suits tests, demos and single-process development only.
Each method does its work without awaiting, so on one event loop every method is
atomic; ``update`` still takes a lock, so that a threaded WSGI server's
compare-and-set stays one. Guests' sessions (user id ``""``) are never indexed.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..sessions.record import SessionRecord

if TYPE_CHECKING:
    from ..ratelimit import AttemptRule

__all__ = ["MemoryStore"]


class MemoryStore:
    """Sessions in a dict, with a per-user index. See the module docstring."""

    __slots__ = ("_attempts", "_attempts_lock", "_by_user", "_lock", "_records", "_replay")

    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}
        # Login-attempt counters (coatcheck.ratelimit): key -> (count, resets_at).
        self._attempts: dict[str, tuple[int, float]] = {}
        # A WSGI server calls from many threads: check-and-count must be one step there too.
        self._attempts_lock = threading.Lock()
        # An insertion-ordered dict used as a set: O(1) add and remove.
        self._by_user: dict[str, dict[str, None]] = {}
        self._lock = threading.Lock()
        # One-time values (coatcheck.sessions.ReplayCache): key -> forget_at, oldest first.
        # Ordered by insertion, which is roughly expiry order. An OrderedDict reaches its
        # oldest entry in O(1); a dict's iteration walks over every slot deleted at its
        # front, so forgetting spent ids there cost O(n) per write in a steady state.
        self._replay: OrderedDict[str, float] = OrderedDict()

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        """A new, empty store for ``memory://``. Raises ConfigurationError for other URLs."""
        parts = urlsplit(url)
        if parts.scheme != "memory" or parts.netloc or parts.path or parts.query:
            raise ConfigurationError(f"a memory store URL is just 'memory://', not {url!r}")
        return cls()

    def __len__(self) -> int:
        return len(self._records)

    @staticmethod
    def _frozen(record: SessionRecord) -> SessionRecord:
        # Like a serialising store, keep nothing the caller could still mutate.
        return SessionRecord.from_dict(copy.deepcopy(record.to_dict()))

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        """The live session with this id, or ``None``."""
        record = self._records.get(session_id)
        if record is None or record.is_expired(now):
            return None
        return record

    async def create(self, record: SessionRecord) -> None:
        """Store a new session (replacing one with the same id) and index it."""
        old = self._records.get(record.id)
        if old is not None:
            self._unindex(old)
        self._records[record.id] = self._frozen(record)
        self._index(record)

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        """Record activity; a missing session is ignored."""
        record = self._records.get(session_id)
        if record is not None:
            self._records[session_id] = replace(record, last_seen=last_seen, expires_at=expires_at)

    async def update(self, record: SessionRecord) -> bool:
        """Write ``record`` only over version ``record.version - 1``."""
        frozen = self._frozen(record)
        with self._lock:
            current = self._records.get(record.id)
            if current is None or current.version != record.version - 1:
                return False
            self._records[record.id] = frozen
        if current.user_id != record.user_id:
            self._unindex(current)
            self._index(record)
        return True

    async def delete(self, session_id: str) -> SessionRecord | None:
        """Remove one session; return it (``None`` if there was none)."""
        record = self._records.pop(session_id, None)
        if record is not None:
            self._unindex(record)
        return record

    async def delete_user(self, user_id: str) -> list[str]:
        """Remove every session of ``user_id``; return their ids (none for ``""``: guests)."""
        if not user_id:
            return []
        ids = list(self._by_user.pop(user_id, {}))
        for sid in ids:
            self._records.pop(sid, None)
        return ids

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        """The user's live sessions, oldest first."""
        records = (self._records[sid] for sid in self._by_user.get(user_id, ()))
        live = [record for record in records if not record.is_expired(now)]
        live.sort(key=lambda r: (r.created_at, r.id))
        return live

    async def delete_expired(self, now: float, limit: int | None = None) -> int:
        """Remove up to ``limit`` expired sessions (all when ``None``); return how many."""
        expired: list[SessionRecord] = []
        for record in self._records.values():
            if limit is not None and len(expired) >= limit:
                break
            if record.is_expired(now):
                expired.append(record)
        for record in expired:
            del self._records[record.id]
            self._unindex(record)
        # Spent login-attempt counters go too (not counted: they are not sessions).
        with self._attempts_lock:
            for key in [k for k, (_, resets_at) in self._attempts.items() if resets_at <= now]:
                del self._attempts[key]
        for key in [k for k, forget_at in self._replay.items() if forget_at <= now]:
            del self._replay[key]
        return len(expired)

    async def close(self) -> None:
        """Nothing to release."""

    # -- login-attempt counters (coatcheck.ratelimit.AttemptCounter) ------------------

    async def reserve_attempt(self, key: str, rule: AttemptRule, now: float) -> float:
        """Count one attempt under ``key`` unless ``rule`` makes it wait: ``0.0`` when
        counted, else the seconds to wait (nothing counted). One locked step."""
        with self._attempts_lock:
            count, resets_at = self._attempts.get(key, (0, now))
            if resets_at <= now:
                count = 0  # the window ran out: a new count
            wait = rule.wait(count, resets_at, now)
            if wait > 0:
                return wait
            self._attempts[key] = (count + 1, now + rule.window)
            return 0.0

    async def release_attempt(self, key: str) -> None:
        """Take one counted attempt back (the count's window stays as it is)."""
        with self._attempts_lock:
            entry = self._attempts.get(key)
            if entry is None:
                return
            if entry[0] <= 1:
                del self._attempts[key]
            else:
                self._attempts[key] = (entry[0] - 1, entry[1])

    async def peek_attempts(self, key: str, now: float) -> tuple[int, float]:
        """``(count, resets_at)`` of ``key`` without counting; ``(0, now)`` if none."""
        count, resets_at = self._attempts.get(key, (0, now))
        return (count, resets_at) if resets_at > now else (0, now)

    async def clear_attempts(self, key: str) -> None:
        """Forget the attempts counted under ``key``."""
        with self._attempts_lock:
            self._attempts.pop(key, None)

    # -- one-time values (coatcheck.sessions.ReplayCache) ------------------------------

    async def remember_once(self, key: str, ttl: float, now: float) -> bool:
        """Remember ``key`` until ``now + ttl``; ``False`` if it is remembered already."""
        replay = self._replay
        forget_at = replay.get(key)
        if forget_at is not None and forget_at > now:
            return False
        # Entries come in roughly expiry order: forget the spent ones at the front, so
        # memory stays bounded by what one window holds.
        for _ in range(8):
            if not replay:
                break
            old, old_forget_at = next(iter(replay.items()))
            if old_forget_at > now:
                break
            del replay[old]
        replay.pop(key, None)
        replay[key] = now + ttl
        return True
    def _index(self, record: SessionRecord) -> None:
        if record.user_id:
            self._by_user.setdefault(record.user_id, {})[record.id] = None

    def _unindex(self, record: SessionRecord) -> None:
        sessions = self._by_user.get(record.user_id)
        if sessions is not None:
            sessions.pop(record.id, None)
            if not sessions:
                del self._by_user[record.user_id]

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self._records)} sessions>)"
