"""Server-side sessions: opaque ids, stored hashed, with idle and absolute timeouts."""

from __future__ import annotations

from .lifecycle import Decision, decide
from .manager import SessionManager
from .record import SessionRecord
from .store import ReplayCache, SessionStore

__all__ = ["Decision", "ReplayCache", "SessionManager", "SessionRecord", "SessionStore", "decide"]
