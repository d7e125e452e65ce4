"""SessionMapping: JSON only, strict change tracking, key-level merge (no I/O)."""

from __future__ import annotations

import datetime as dt
import enum
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.errors import SessionValueError
from coatcheck.sessions.mapping import (
    MAX_DEPTH,
    Changes,
    SessionMapping,
    check_json,
    copy_json,
    dump_json,
    same,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                max_size=6),
        children,
        max_size=4,
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=5).filter(lambda k: "\x00" not in k
                               and k.encode("utf-8", "surrogatepass") == k.encode("utf-8",
                               "surrogatepass")), json_values, max_size=5)


class Colour(enum.StrEnum):
    RED = "red"


# -- JSON only -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (dt.datetime(2026, 1, 1), "datetime"),
        ({1, 2}, "set"),
        (b"raw", "bytes"),
        (Decimal("1.5"), "Decimal"),
        (object(), "object"),
    ],
)
def test_a_value_json_cannot_hold_is_refused_naming_key_and_type(value: Any, kind: str) -> None:
    session = SessionMapping()
    with pytest.raises(SessionValueError) as caught:
        session["when"] = value
    assert caught.value.key == "when"
    assert "session['when']" in caught.value.message
    assert kind in caught.value.message
    assert caught.value.code == "session_value_invalid"
    assert isinstance(caught.value, TypeError)
    assert "when" not in session


def test_the_path_inside_a_value_is_named() -> None:
    session = SessionMapping()
    with pytest.raises(SessionValueError) as caught:
        session["cart"] = [{"sku": "A"}, {"sku": "B", "added": dt.date(2026, 1, 1)}]
    assert "session['cart'][1]['added'] is a date" in caught.value.message
    assert caught.value.key == "cart"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        ({1: "a"}, "key of type int"),
        ({"a\x00": 1}, "NUL"),
        ("nul\x00inside", "NUL"),
        ("lone \ud800 surrogate", "surrogate"),
    ],
)
def test_values_some_store_cannot_keep_are_refused(value: Any, reason: str) -> None:
    with pytest.raises(SessionValueError, match=reason):
        SessionMapping()["k"] = value


def test_keys_must_be_text() -> None:
    session = SessionMapping()
    with pytest.raises(SessionValueError, match="key must be text"):
        session[1] = "one"  # type: ignore[index]
    with pytest.raises(SessionValueError, match="NUL"):
        session["a\x00b"] = 1


def test_nesting_is_bounded() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(SessionValueError, match="deeper"):
        SessionMapping()["deep"] = deep
    ok: Any = "leaf"
    for _ in range(MAX_DEPTH):
        ok = [ok]
    SessionMapping()["ok"] = ok


def test_every_way_in_is_checked() -> None:
    session = SessionMapping()
    with pytest.raises(SessionValueError):
        session.update({"a": 1, "b": {1, 2}})
    with pytest.raises(SessionValueError):
        session.update(c=object())
    with pytest.raises(SessionValueError):
        session.setdefault("d", b"x")
    with pytest.raises(SessionValueError):
        session |= {"e": dt.time()}
    assert session.setdefault("f", [1]) == [1]
    assert session.setdefault("f", [2]) == [1]
    session |= {"g": None}
    assert dict(session) == {"a": 1, "f": [1], "g": None}


def test_tuples_and_subclasses_are_json() -> None:
    session = SessionMapping()
    session["pair"] = ("message", "hello")
    session["colour"] = Colour.RED
    session["flag"] = True
    assert json.loads(dump_json(session)) == {
        "pair": ["message", "hello"], "colour": "red", "flag": True,
    }


def test_it_is_a_real_dict() -> None:
    session = SessionMapping({"a": 1})
    assert isinstance(session, dict)
    assert json.dumps(session) == '{"a": 1}'
    assert dict(session) == {"a": 1} == session
    assert {**session} == {"a": 1}
    assert session.copy() == {"a": 1}


# -- change tracking -------------------------------------------------------------------------


def test_an_untouched_session_has_no_changes() -> None:
    assert SessionMapping().changes() is None
    stored = {"name": "Zoë", "cart": [{"sku": "A", "n": 1}], "prefs": {"lang": "fr"}}
    session = SessionMapping(stored, new=False)
    assert session == stored
    assert not session.new
    assert session.changes() is None
    assert not session.modified
    _ = session["cart"][0]["n"], list(session.items()), json.dumps(session)
    assert session.changes() is None


def test_nested_changes_are_found_and_the_stored_data_is_never_touched() -> None:
    stored = {"cart": [{"sku": "A", "n": 1}], "prefs": {"lang": "fr"}}
    frozen = json.dumps(stored)
    session = SessionMapping(stored, new=False)
    session["cart"].append({"sku": "B", "n": 2})
    session["prefs"]["lang"] = "de"
    changes = session.changes()
    assert changes is not None
    assert changes.set == {
        "cart": [{"sku": "A", "n": 1}, {"sku": "B", "n": 2}], "prefs": {"lang": "de"},
    }
    assert changes.removed == frozenset()
    assert json.dumps(stored) == frozen  # the store's (shared) record is unchanged
    assert session.base is stored


def test_a_mutable_value_assigned_then_mutated_is_saved_as_mutated() -> None:
    session = SessionMapping()
    cart: list[str] = []
    session["cart"] = cart
    cart.append("hat")
    changes = session.changes()
    assert changes is not None
    assert changes.set == {"cart": ["hat"]}


def test_a_non_json_value_put_inside_after_assignment_is_refused_at_save() -> None:
    session = SessionMapping()
    session["cart"] = []
    session["cart"].append(dt.date(2026, 1, 1))
    with pytest.raises(SessionValueError, match=r"session\['cart'\]\[0\] is a date"):
        session.changes()
    with pytest.raises(SessionValueError):
        dump_json(session)


@pytest.mark.parametrize(
    ("old", "new"), [(1, True), (1, 1.0), (0, False), ([1], (1,)), ({"a": 1}, {"a": True})]
)
def test_changes_are_strict_about_json_types(old: Any, new: Any) -> None:
    session = SessionMapping({"v": old}, new=False)
    session["v"] = new
    assert session.changes() is not None


def test_setting_the_same_value_again_is_no_change() -> None:
    session = SessionMapping({"name": "Ann", "cart": [1, 2]}, new=False)
    session["name"] = "Ann"
    session["cart"] = [1, 2]
    assert session.changes() is None


def test_removals_and_clear() -> None:
    session = SessionMapping({"a": 1, "b": 2}, new=False)
    del session["a"]
    changes = session.changes()
    assert changes == Changes({}, frozenset({"a"}), False)
    session = SessionMapping({"a": 1}, new=False)
    session.pop("a")
    changes = session.changes()
    assert changes is not None
    assert not changes.cleared
    session = SessionMapping({"a": 1}, new=False)
    session.clear()
    session["c"] = 3
    changes = session.changes()
    assert changes == Changes({"c": 3}, frozenset({"a"}), True)


def test_load_skips_what_is_not_json() -> None:
    session = SessionMapping()
    skipped = session.load([("a", 1), ("b", {1, 2}), ("c", "x\x00")])
    assert skipped == ["b", "c"]
    assert dict(session) == {"a": 1}


# -- the merge -------------------------------------------------------------------------------


def test_changes_to_different_keys_merge() -> None:
    base = {"n": 0}
    first, second = SessionMapping(base, new=False), SessionMapping(base, new=False)
    first["a"] = 1
    second["b"] = 2
    first_changes, second_changes = first.changes(), second.changes()
    assert first_changes is not None
    assert second_changes is not None
    stored = first_changes.apply(base)
    stored = second_changes.apply(stored)
    assert stored == {"n": 0, "a": 1, "b": 2}


def test_a_removal_merges_with_another_requests_addition_but_clear_does_not() -> None:
    base = {"flash": "hi"}
    consumer = SessionMapping(base, new=False)
    consumer.pop("flash")
    other = {"flash": "hi", "cart": [1]}  # another request added a cart meanwhile
    changes = consumer.changes()
    assert changes is not None
    assert changes.apply(other) == {"cart": [1]}
    wiper = SessionMapping(base, new=False)
    wiper.clear()
    changes = wiper.changes()
    assert changes is not None
    assert changes.apply(other) == {}


@settings(max_examples=100, deadline=None)
@given(base=json_objects, ours=json_objects, theirs=json_objects)
def test_merge_keeps_every_key_the_other_request_did_not_touch(
    base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]
) -> None:
    session = SessionMapping(base, new=False)
    for key, value in ours.items():
        session[key] = value
    changes = session.changes()
    latest = {**base, **theirs}
    merged = changes.apply(latest) if changes is not None else latest
    for key, value in theirs.items():
        if changes is None or key not in changes.set:
            assert same(merged[key], value)
    for key, value in ours.items():
        if key not in base or not same(base[key], value):
            assert same(merged[key], value)  # a real change of ours is never lost


@settings(max_examples=100, deadline=None)
@given(value=json_values)
def test_same_agrees_with_json_text(value: Any) -> None:
    copy = copy_json(value)
    assert same(copy, value)
    assert same(json.loads(json.dumps(value)), value) == (
        json.dumps(json.loads(json.dumps(value))) == json.dumps(value)
    )
    check_json("k", value)


# -- the stored data is shared with other requests: no way out may change it ----------------

WAYS_OUT = {
    "getitem": lambda s: s["cart"],
    "get": lambda s: s.get("cart"),
    "setdefault": lambda s: s.setdefault("cart", []),
    "dict()": lambda s: dict(s)["cart"],
    "unpacking": lambda s: {**s}["cart"],
    "copy": lambda s: s.copy()["cart"],
    "items": lambda s: dict(s.items())["cart"],
    "values": lambda s: next(v for v in s.values() if isinstance(v, list)),
    "or": lambda s: (s | {})["cart"],
    "pop": lambda s: s.pop("cart"),
}


@pytest.mark.parametrize("way", list(WAYS_OUT), ids=list(WAYS_OUT))
def test_no_way_out_hands_over_the_stored_list(way: str) -> None:
    stored = {"cart": [{"sku": "A"}], "name": "Ann"}
    frozen = json.dumps(stored)
    session = SessionMapping(stored, new=False)
    cart = WAYS_OUT[way](session)
    cart.append({"sku": "B"})
    cart[0]["sku"] = "Z"
    assert json.dumps(stored) == frozen  # another request's view of the record is intact
    changes = session.changes()
    if way == "pop":
        assert changes is not None
        assert changes.removed == frozenset({"cart"})
    else:
        assert changes is not None
        assert changes.set["cart"] == [{"sku": "Z"}, {"sku": "B"}]


def test_popitem_hands_over_a_copy_too() -> None:
    stored = {"cart": [1]}
    session = SessionMapping(stored, new=False)
    key, value = session.popitem()
    value.append(2)
    assert stored == {"cart": [1]}
    assert key == "cart"


def test_reading_text_and_numbers_needs_no_comparison_at_save() -> None:
    stored = {"name": "Ann", "n": 3, "cart": [1, 2]}
    session = SessionMapping(stored, new=False)
    assert session["name"] == "Ann"
    assert session.get("n") == 3
    assert "cart" in session
    assert len(session) == 3
    assert session._touched is False  # the cheap path: nothing to compare
    assert session.changes() is None
    assert session.get("cart") == [1, 2]
    assert session._touched is True  # a list went out: the save compares
    assert session.changes() is None  # and finds it unchanged
