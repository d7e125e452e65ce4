"""The stored form of a session: a frozen record keyed by the hash of its token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["SQL_COLUMNS", "SessionRecord"]

#: The column order in which the SQL stores select a session (what ``from_row`` reads).
SQL_COLUMNS = (
    "id, user_id, created_at, last_seen, expires_at, absolute_expires_at, auth_time, "
    "data, user_agent, ip, version"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """One server-side session.

    ``id`` is the public session id (``<slot>.<sha256 hex>`` of the client's token,
    see :mod:`coatcheck.sessions.ids`); the token itself is never stored. Times are
    POSIX seconds. ``expires_at`` is the idle expiry, already capped at
    ``absolute_expires_at``. ``version`` increases with every change to ``data``
    so that concurrent writers can compare-and-set.
    """

    id: str
    user_id: str
    created_at: float
    last_seen: float
    expires_at: float
    absolute_expires_at: float
    auth_time: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)
    user_agent: str = ""
    ip: str = ""
    version: int = 1

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at or now >= self.absolute_expires_at

    def with_data(self, data: Mapping[str, Any]) -> SessionRecord:
        """A copy with new data and the next version."""
        return replace(self, data=dict(data), version=self.version + 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "created_at": self.created_at,
            "last_seen": self.last_seen,
            "expires_at": self.expires_at,
            "absolute_expires_at": self.absolute_expires_at,
            "auth_time": self.auth_time,
            "data": dict(self.data),
            "user_agent": self.user_agent,
            "ip": self.ip,
            "version": self.version,
        }

    @classmethod
    def from_row(cls, row: Sequence[Any], data: Mapping[str, Any]) -> SessionRecord:
        """A record from a row selected as :data:`SQL_COLUMNS`; ``data`` is its decoded data."""
        return cls(
            id=row[0],
            user_id=row[1],
            created_at=row[2],
            last_seen=row[3],
            expires_at=row[4],
            absolute_expires_at=row[5],
            auth_time=row[6],
            data=data,
            user_agent=row[8],
            ip=row[9],
            version=row[10],
        )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SessionRecord:
        return cls(
            id=str(raw["id"]),
            user_id=str(raw["user_id"]),
            created_at=float(raw["created_at"]),
            last_seen=float(raw["last_seen"]),
            expires_at=float(raw["expires_at"]),
            absolute_expires_at=float(raw["absolute_expires_at"]),
            auth_time=float(raw.get("auth_time", raw["created_at"])),
            data=dict(raw.get("data") or {}),
            user_agent=str(raw.get("user_agent", "")),
            ip=str(raw.get("ip", "")),
            version=int(raw.get("version", 1)),
        )
