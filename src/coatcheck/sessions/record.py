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
        return _make_record(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], data, row[8], row[9], row[10]
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


# The per-request constructor (a store's read). A frozen dataclass's __init__ sets
# every field with object.__setattr__, which looks the slot up again for each one; this
# sets the slots through their descriptors (what that call ends up doing), about twice
# as fast. The same object as the dataclass constructor makes
# (tests/sessions/test_record.py compares them); positional, no defaults.
_new = object.__new__
_set_id = SessionRecord.__dict__["id"].__set__
_set_user_id = SessionRecord.__dict__["user_id"].__set__
_set_created_at = SessionRecord.__dict__["created_at"].__set__
_set_last_seen = SessionRecord.__dict__["last_seen"].__set__
_set_expires_at = SessionRecord.__dict__["expires_at"].__set__
_set_absolute = SessionRecord.__dict__["absolute_expires_at"].__set__
_set_auth_time = SessionRecord.__dict__["auth_time"].__set__
_set_data = SessionRecord.__dict__["data"].__set__
_set_user_agent = SessionRecord.__dict__["user_agent"].__set__
_set_ip = SessionRecord.__dict__["ip"].__set__
_set_version = SessionRecord.__dict__["version"].__set__


def _make_record(
    id: str,
    user_id: str,
    created_at: float,
    last_seen: float,
    expires_at: float,
    absolute_expires_at: float,
    auth_time: float,
    data: Mapping[str, Any],
    user_agent: str,
    ip: str,
    version: int,
) -> SessionRecord:
    """``SessionRecord(id=..., ...)`` for a store's per-request read (every field given)."""
    record: SessionRecord = _new(SessionRecord)
    _set_id(record, id)
    _set_user_id(record, user_id)
    _set_created_at(record, created_at)
    _set_last_seen(record, last_seen)
    _set_expires_at(record, expires_at)
    _set_absolute(record, absolute_expires_at)
    _set_auth_time(record, auth_time)
    _set_data(record, data)
    _set_user_agent(record, user_agent)
    _set_ip(record, ip)
    _set_version(record, version)
    return record
