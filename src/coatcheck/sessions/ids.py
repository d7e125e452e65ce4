"""Session tokens: made once from :mod:`secrets`, handed to the client, stored only hashed.

A token is ``<slot>.<secret>``: ``secret`` is 32 random bytes (256 bits) in URL-safe
base64, ``slot`` is 8 hex digits derived from the user id. The slot is not secret;
it lets a store keep one user's keys together (a Redis Cluster hash tag) while a
lookup still needs only the token. A guest's session (user id ``""``) has a random
slot instead: guests have no index to keep together, and a fixed slot would put every
guest of a cluster on one node. The session id that stores, device lists and
the CLI see is ``<slot>.<sha256 hex of the token>``: knowing it does not let anyone
present the session.
"""

from __future__ import annotations

import hashlib
import re
import secrets

__all__ = ["new_token", "session_id", "slot_of", "user_slot"]

_TOKEN_RE = re.compile(r"[0-9a-f]{8}\.[A-Za-z0-9_-]{43}")
_ID_RE = re.compile(r"[0-9a-f]{8}\.[0-9a-f]{64}")


def user_slot(user_id: str) -> str:
    """The 8-hex-digit slot shared by all of a user's sessions."""
    return hashlib.sha256(b"coatcheck.slot\x00" + user_id.encode()).hexdigest()[:8]


def new_token(user_id: str) -> str:
    """A new session token for ``user_id`` (``""``: a guest): give it to the client,
    store only its id."""
    slot = user_slot(user_id) if user_id else secrets.token_hex(4)
    return f"{slot}.{secrets.token_urlsafe(32)}"


def session_id(token: str) -> str | None:
    """The storable id of a presented token, or ``None`` when it is not well-formed."""
    if len(token) != 52 or not _TOKEN_RE.fullmatch(token):
        return None
    return f"{token[:8]}.{hashlib.sha256(token.encode()).hexdigest()}"


def is_session_id(value: str) -> bool:
    """Whether ``value`` has the shape of a session id (for the CLI and APIs)."""
    return _ID_RE.fullmatch(value) is not None


def slot_of(sid: str) -> str:
    """The slot part of a token or session id."""
    return sid[:8]
