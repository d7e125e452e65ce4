"""Server-side sessions: opaque ids, stored hashed, with idle and absolute timeouts;
and the session mapping (``request.session``) every visitor gets, kept in a store
(:class:`StoreSessions`) or in a signed or encrypted cookie (:class:`CookieSessions`)."""

from __future__ import annotations

from .client import CookieSessions
from .data import GUEST, SessionBackend, StoreSessions, Visitor
from .dbsc import DbscPolicy
from .flash import flash, peek_flashes, pop_flashes
from .lifecycle import Decision, decide
from .manager import SessionManager
from .mapping import Changes, SessionMapping
from .record import SessionRecord
from .store import ReplayCache, SessionStore

__all__ = [
    "GUEST",
    "Changes",
    "CookieSessions",
    "DbscPolicy",
    "Decision",
    "ReplayCache",
    "SessionBackend",
    "SessionManager",
    "SessionMapping",
    "SessionRecord",
    "SessionStore",
    "StoreSessions",
    "Visitor",
    "decide",
    "flash",
    "peek_flashes",
    "pop_flashes",
]
