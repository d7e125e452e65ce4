"""Pure decisions about a session's life: no I/O, no clock reads.

Shared by the async and sync managers, and tested table-driven without a store.
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum

from ..policies import SessionPolicy
from .record import SessionRecord

__all__ = ["Decision", "decide", "new_expiry", "renewed"]


class Decision(Enum):
    KEEP = "keep"  # valid, nothing to write
    RENEW = "renew"  # valid, slide the idle expiry forward (one write)
    EXPIRED = "expired"  # past idle or absolute expiry: treat as absent, delete


def new_expiry(now: float, absolute_expires_at: float, policy: SessionPolicy) -> float:
    """The idle expiry after activity at ``now``, never past the absolute expiry."""
    return min(now + policy.idle_timeout.total_seconds(), absolute_expires_at)


def decide(record: SessionRecord, now: float, policy: SessionPolicy) -> Decision:
    """What to do with ``record`` when it is presented at ``now``."""
    if record.is_expired(now):
        return Decision.EXPIRED
    if now - record.last_seen >= policy.renew_interval.total_seconds():
        return Decision.RENEW
    return Decision.KEEP


def renewed(record: SessionRecord, now: float, policy: SessionPolicy) -> SessionRecord:
    """``record`` after renewal at ``now`` (same data, same version)."""
    return replace(
        record,
        last_seen=now,
        expires_at=new_expiry(now, record.absolute_expires_at, policy),
    )
