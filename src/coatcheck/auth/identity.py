"""Who the visitor is, and the credentials strategies hand to transports.

These are plain frozen values: a :class:`~coatcheck.auth.strategies.Strategy` makes
them, a :class:`~coatcheck.auth.transports.Transport` carries the token inside, and
the :class:`~coatcheck.auth.authenticator.Authenticator` ties the two together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..sessions.record import SessionRecord

__all__ = ["Identity", "Issued", "Verified"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """An authenticated visitor.

    ``mode`` names the strategy that vouched for them ("session", "jwt", "hybrid",
    ...); ``claims`` holds the JWT claims or the session data; ``auth_time`` is when
    they last typed a password (for fresh-login checks); ``expires_at`` is when the
    credential stops working; ``persistent`` is "remember me"; ``via`` is the
    transport the credential came through ("cookie" or "bearer").
    """

    user_id: str
    mode: str
    session_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    auth_time: float = 0.0
    expires_at: float = 0.0
    persistent: bool = True
    via: str = "cookie"

    @property
    def name(self) -> str:
        """The display name carried in the claims, or the user id."""
        value = self.claims.get("name")
        return value if isinstance(value, str) and value else self.user_id


@dataclass(frozen=True, slots=True, kw_only=True)
class Issued:
    """A credential a strategy just made: give ``token`` to the client once."""

    token: str = field(repr=False)
    expires_at: float
    session_id: str | None
    identity: Identity


@dataclass(frozen=True, slots=True)
class Verified:
    """A credential that checked out; ``reissued`` asks the transport to rewrite it.

    ``record`` is the server-side session the strategy read to vouch for it (session
    mode), so the session mapping can use the same read instead of a second one.
    """

    identity: Identity
    reissued: Issued | None = None
    record: SessionRecord | None = field(default=None, repr=False)
