"""Decoding shared by the serialising stores: fast JSON, and a cache of decoded records.

A store still reads its row on every request (revocation stays immediate); what it
may skip is turning the same bytes into a :class:`~coatcheck.sessions.SessionRecord`
again. :class:`DecodedCache` maps a session id to ``(raw, record)`` and answers only
when the freshly read ``raw`` equals the cached one, so a hit is exactly what
decoding would have produced: any change to the row (renewal, new data, another
session under a reused id) is a miss. Records are frozen; their ``data`` is shared
between the requests of one session, as with :class:`~coatcheck.stores.MemoryStore`,
so callers treat it as the read-only ``Mapping`` it is typed as.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from ..sessions.record import SessionRecord

__all__ = ["DEFAULT_SIZE", "DecodedCache", "loads"]

_fast: Callable[[str | bytes], Any] | None
try:
    from orjson import loads as _fast
except ImportError:  # pragma: no cover - orjson is optional
    _fast = None

#: Sessions whose decoded record one store keeps (a few hundred bytes each).
DEFAULT_SIZE = 1024


def loads(text: str | bytes) -> Any:
    """``json.loads`` with orjson when installed (6x faster on a small record).

    Only text coatcheck wrote itself reaches this; where orjson refuses (integers
    beyond 64 bits), the standard library decides, so the result never depends on
    whether orjson is installed. Raises ValueError like ``json.loads``.
    """
    if _fast is not None:
        try:
            return _fast(text)
        except ValueError:
            pass
    return json.loads(text)


class DecodedCache:
    """``session id -> (raw, record)``, at most ``size`` entries (0 turns it off).

    Safe under threads (WSGI servers): a race may drop an entry or decode twice.
    """

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._entries: dict[str, tuple[object, SessionRecord]] = {}
        self._size = size

    def get(self, session_id: str, raw: object) -> SessionRecord | None:
        """The cached record when it was decoded from exactly ``raw``, else ``None``."""
        hit = self._entries.get(session_id)
        if hit is not None and hit[0] == raw:
            return hit[1]
        return None

    def put(self, session_id: str, raw: object, record: SessionRecord) -> None:
        if not self._size:
            return
        entries = self._entries
        if len(entries) >= self._size and session_id not in entries:
            # Drop the oldest entry (dicts keep insertion order): bounded memory.
            with contextlib.suppress(KeyError, StopIteration, RuntimeError):
                del entries[next(iter(entries))]
        entries[session_id] = (raw, record)

    def discard(self, session_id: str) -> None:
        self._entries.pop(session_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
