"""A user's devices (their live sessions) and "log out everywhere".

In session mode these are the session engine's records of the user; in hybrid mode
the user's hybrid sessions (one per login); jwt mode keeps nothing per login, so the
list is empty and a signed token cannot be revoked before it expires. Every
revocation is published to the revocation feed, so processes that check access
tokens without the store refuse them too.
"""

from __future__ import annotations

from typing import Any

from ...sessions.record import SessionRecord
from ...sync import run_sync
from .conf import get_runtime

__all__ = ["adevices", "alog_out_everywhere", "devices", "log_out_everywhere", "revoke_device"]


def _user_id(user: Any) -> str:
    return str(getattr(user, "pk", user))


def devices(user: Any) -> list[SessionRecord]:
    """The user's live sessions, oldest first (``id``, ``created_at``, ``last_seen``,
    ``user_agent``, ``ip``). ``user`` is a user object or its primary key."""
    return run_sync(get_runtime().sync.manager.list_user(_user_id(user)))


async def adevices(user: Any) -> list[SessionRecord]:
    """:func:`devices` in the event loop."""
    return await get_runtime().async_parts().manager.list_user(_user_id(user))


def revoke_device(user: Any, session_id: str) -> bool:
    """End one of the user's sessions by its id (from :func:`devices`); whether it was theirs."""
    manager = get_runtime().sync.manager
    owned = {record.id for record in run_sync(manager.list_user(_user_id(user)))}
    if session_id not in owned:
        return False
    run_sync(manager.revoke_id(session_id))
    return True


def log_out_everywhere(user: Any, *, keep: str | None = None) -> list[str]:
    """End every session of ``user`` but session id ``keep``; the ids ended."""
    return run_sync(get_runtime().sync.manager.revoke_user(_user_id(user), keep=keep))


async def alog_out_everywhere(user: Any, *, keep: str | None = None) -> list[str]:
    """:func:`log_out_everywhere` in the event loop."""
    manager = get_runtime().async_parts().manager
    return await manager.revoke_user(_user_id(user), keep=keep)
