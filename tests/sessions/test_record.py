"""SessionRecord: the fast per-request constructor makes what the dataclass makes."""

from __future__ import annotations

import dataclasses

import pytest

from coatcheck.sessions.record import SQL_COLUMNS, SessionRecord, _make_record


def test_the_fast_constructor_makes_what_the_dataclass_makes() -> None:
    names = [f.name for f in dataclasses.fields(SessionRecord)]
    assert names == [c.strip() for c in SQL_COLUMNS.split(",")]
    values = ["ab.cd", "ada", 1.0, 2.0, 3.0, 4.0, 1.5, {"n": 1}, "agent", "203.0.113.7", 7]
    fast = _make_record(*values)  # type: ignore[arg-type]
    slow = SessionRecord(**dict(zip(names, values, strict=True)))  # type: ignore[arg-type]
    assert fast == slow
    assert [getattr(fast, n) for n in names] == values
    assert SessionRecord.from_row(values, values[7]) == slow  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.user_id = "eve"  # type: ignore[misc]
