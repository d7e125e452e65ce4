"""Flash messages: one-time notes ("Saved.", "Added a hat to your cart") for the next page.

Kept in the session mapping under :data:`FLASHES_KEY` as a list of ``[category,
message]`` pairs: the very key and shape Flask's ``flask.flash`` and
``get_flashed_messages`` use, so messages flashed by either are read by both. Each
adapter wraps these in ``flash(request, message, category)`` and
``pop_flashes(request)``; a message is shown once, because popping removes it (a
key-level change, so a flash added by a concurrent request survives the pop).
"""

from __future__ import annotations

from collections.abc import Collection, MutableMapping
from typing import Any

from ..errors import SessionValueError

__all__ = ["FLASHES_KEY", "flash", "peek_flashes", "pop_flashes"]

#: The session key holding the pending messages (Flask's own).
FLASHES_KEY = "_flashes"


def flash(session: MutableMapping[str, Any], message: str, category: str = "message") -> None:
    """Add ``message`` under ``category`` for the next page that pops the flashes.

    :raises SessionValueError: when ``message`` or ``category`` is not text.
    """
    if not isinstance(message, str) or not isinstance(category, str):
        raise SessionValueError("a flash message and its category are text", key=FLASHES_KEY)
    pending = session.get(FLASHES_KEY)
    pending = list(pending) if isinstance(pending, list) else []
    pending.append([str(category), str(message)])
    session[FLASHES_KEY] = pending


def _pairs(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return []
    pairs = []
    for item in value:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            category, message = item
            if isinstance(category, str) and isinstance(message, str):
                pairs.append((category, message))
    return pairs


def peek_flashes(session: MutableMapping[str, Any]) -> list[tuple[str, str]]:
    """The pending ``(category, message)`` pairs, oldest first, left in place."""
    return _pairs(session.get(FLASHES_KEY))


def pop_flashes(
    session: MutableMapping[str, Any], categories: Collection[str] | None = None
) -> list[tuple[str, str]]:
    """Take the pending ``(category, message)`` pairs, oldest first.

    With ``categories``, only those are taken; the others wait for another page.
    """
    if FLASHES_KEY not in session:
        return []
    pairs = _pairs(session.get(FLASHES_KEY))
    if categories is None:
        del session[FLASHES_KEY]
        return pairs
    taken = [pair for pair in pairs if pair[0] in categories]
    left = [list(pair) for pair in pairs if pair[0] not in categories]
    if left:
        session[FLASHES_KEY] = left
    else:
        del session[FLASHES_KEY]
    return taken
