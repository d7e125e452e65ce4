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


# The per-request constructors. A frozen dataclass's __init__ sets every field with
# object.__setattr__, which looks the slot up again for each one; these set the slots
# through their descriptors (what that call ends up doing), about twice as fast. Same
# objects as the dataclass constructor makes (tests/auth/test_identity.py compares
# them field by field); positional, no defaults.
_new = object.__new__
_id_user_id = Identity.__dict__["user_id"].__set__
_id_mode = Identity.__dict__["mode"].__set__
_id_session_id = Identity.__dict__["session_id"].__set__
_id_claims = Identity.__dict__["claims"].__set__
_id_auth_time = Identity.__dict__["auth_time"].__set__
_id_expires_at = Identity.__dict__["expires_at"].__set__
_id_persistent = Identity.__dict__["persistent"].__set__
_id_via = Identity.__dict__["via"].__set__
_verified_identity = Verified.__dict__["identity"].__set__
_verified_reissued = Verified.__dict__["reissued"].__set__
_verified_record = Verified.__dict__["record"].__set__


def _make_identity(
    user_id: str,
    mode: str,
    session_id: str | None,
    claims: Mapping[str, Any],
    auth_time: float,
    expires_at: float,
    persistent: bool,
    via: str,
) -> Identity:
    """``Identity(user_id=..., ...)`` for the per-request path (every field given)."""
    identity: Identity = _new(Identity)
    _id_user_id(identity, user_id)
    _id_mode(identity, mode)
    _id_session_id(identity, session_id)
    _id_claims(identity, claims)
    _id_auth_time(identity, auth_time)
    _id_expires_at(identity, expires_at)
    _id_persistent(identity, persistent)
    _id_via(identity, via)
    return identity


def _make_verified(
    identity: Identity, reissued: Issued | None = None, record: SessionRecord | None = None
) -> Verified:
    """``Verified(identity, reissued, record)`` for the per-request path."""
    verified: Verified = _new(Verified)
    _verified_identity(verified, identity)
    _verified_reissued(verified, reissued)
    _verified_record(verified, record)
    return verified
