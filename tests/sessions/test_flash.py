"""Flash messages on the session mapping, in Flask's own key and shape."""

from __future__ import annotations

import pytest

from coatcheck.errors import SessionValueError
from coatcheck.sessions import SessionMapping, flash, peek_flashes, pop_flashes
from coatcheck.sessions.flash import FLASHES_KEY


def test_shown_once_oldest_first() -> None:
    session = SessionMapping()
    flash(session, "Saved")
    flash(session, "Added a hat", "info")
    assert session[FLASHES_KEY] == [["message", "Saved"], ["info", "Added a hat"]]
    assert peek_flashes(session) == [("message", "Saved"), ("info", "Added a hat")]
    assert pop_flashes(session) == [("message", "Saved"), ("info", "Added a hat")]
    assert pop_flashes(session) == []
    assert FLASHES_KEY not in session


def test_by_category_the_others_wait() -> None:
    session = SessionMapping()
    flash(session, "a", "error")
    flash(session, "b", "info")
    flash(session, "c", "error")
    assert pop_flashes(session, {"error"}) == [("error", "a"), ("error", "c")]
    assert pop_flashes(session) == [("info", "b")]
    assert pop_flashes(session, {"info"}) == []


def test_flasks_tuples_and_junk() -> None:
    session = SessionMapping()
    session[FLASHES_KEY] = [("message", "from flask.flash"), ["x"], 3, ["a", 1]]
    assert pop_flashes(session) == [("message", "from flask.flash")]
    session[FLASHES_KEY] = "not a list"
    assert peek_flashes(session) == []


def test_popping_is_a_key_level_change() -> None:
    stored = {FLASHES_KEY: [["message", "hi"]], "cart": [1]}
    session = SessionMapping(stored, new=False)
    pop_flashes(session)
    changes = session.changes()
    assert changes is not None
    assert changes.removed == frozenset({FLASHES_KEY})
    assert not changes.cleared
    # Another request added to the cart meanwhile: it survives the pop.
    assert changes.apply({**stored, "cart": [1, 2]}) == {"cart": [1, 2]}


def test_messages_are_text() -> None:
    with pytest.raises(SessionValueError):
        flash(SessionMapping(), b"bytes")  # type: ignore[arg-type]
    with pytest.raises(SessionValueError):
        flash(SessionMapping(), "ok", 3)  # type: ignore[arg-type]
