"""coatcheck.bodies: strict JSON and form parsing, and the text rule (issue 12 item 4)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.bodies import MAX_DEPTH, check_text, content_length, parse_form, parse_json
from coatcheck.errors import InputError, InvalidText

#: Characters that break code downstream of a lenient parser.
NASTY = ["\ud800", "\udbff", "\udc00", "\udfff", "\x00"]
_CHARS = st.one_of(st.characters(), st.sampled_from([*NASTY, "\U0001f600", "é", "\ufeff"]))
_TEXT = st.text(_CHARS, max_size=20)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=20,
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    return []


def _valid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "\\ud800", "password": "x"}',  # the request
        b'{"a": "\\udfff"}',
        b'{"a": "\\ud83d"}',  # a high surrogate without its low half
        b'{"a": ["x", {"b": "\\udc00y"}]}',
        b'{"\\ud800": 1}',  # a member name
        b'{"a": "\\u0000"}',
        b'{"a": "\xed\xa0\x80"}',  # a surrogate encoded in the bytes: not UTF-8
        b'{"a": "\xff"}',
        b"\xff\xfe{\x00}\x00",  # UTF-16 (json.loads would guess it)
    ],
)
def test_text_that_is_not_unicode_scalar_values_is_invalid_text(body: bytes) -> None:
    with pytest.raises(InvalidText) as caught:
        parse_json(body)
    assert caught.value.code == "invalid_text"
    assert isinstance(caught.value, InputError)  # 400 in every adapter


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1e999}', b'{"a": -1e400}', b'{"a": NaN}', b'{"a": Infinity}',
        b'{"a": 1, "a": 2}', b"1" * 5000, b"[" * 100_000, b"[" * 40 + b"]" * 40,
        b"{", b"", b"\xef\xbb\xbf{}", b"{'a': 1}",
    ],
)  # fmt: skip
def test_other_bad_json_is_bad_request(body: bytes) -> None:
    with pytest.raises(InputError) as caught:
        parse_json(body)
    assert type(caught.value) is InputError


def test_valid_json_comes_back() -> None:
    assert parse_json(b'{"a": "\\ud83d\\ude00", "b": [1, 2.5, null, true]}') == {
        "a": "\U0001f600", "b": [1, 2.5, None, True]}  # fmt: skip
    assert parse_json('{"x": "\\u0000"}', allow_nul=True) == {"x": "\x00"}
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json(nested.encode()) is not None
    with pytest.raises(InputError):
        parse_json(("[" + nested + "]").encode())


@settings(max_examples=300, deadline=None)
@given(value=_JSON, ascii_escapes=st.booleans())
def test_parse_json_accepts_exactly_valid_text(value: Any, ascii_escapes: bool) -> None:
    # ensure_ascii writes lone surrogates as \\udXXX escapes; without it they go out as
    # (invalid) UTF-8 bytes. Either way: valid text comes back equal, the rest is a 400.
    text = json.dumps(value, ensure_ascii=ascii_escapes)
    body = text.encode("utf-8", "surrogatepass")
    if all(_valid(s) for s in _strings(value)):
        assert parse_json(body) == value
    else:
        with pytest.raises(InvalidText):
            parse_json(body)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200))
def test_parse_json_never_raises_anything_else(body: bytes) -> None:
    try:
        value = parse_json(body)
    except InputError:
        return
    assert all(_valid(s) for s in _strings(value))


@settings(max_examples=300, deadline=None)
@given(fields=st.dictionaries(st.text(_CHARS, min_size=1, max_size=20), _TEXT, max_size=5))
def test_parse_form_accepts_exactly_valid_text(fields: dict[str, str]) -> None:
    body = "&".join(
        quote(k.encode("utf-8", "surrogatepass")) + "=" + quote(v.encode("utf-8", "surrogatepass"))
        for k, v in fields.items()
    ).encode()
    if all(_valid(k) and _valid(v) for k, v in fields.items()):
        assert parse_form(body) == fields
    else:
        with pytest.raises(InvalidText):
            parse_form(body)


@pytest.mark.parametrize(
    "body", [b"a=%ED%A0%80", b"a=%00", b"%00=1", b"a=%FF", b"\xff=1", b"a=\xed\xa0\x80"]
)
def test_bad_form_text_is_invalid_text(body: bytes) -> None:
    with pytest.raises(InvalidText):
        parse_form(body)


def test_form_fields() -> None:
    assert parse_form(b"a=%C3%A9&a=2&b&c=x+y") == {"a": "é", "b": "", "c": "x y"}
    with pytest.raises(InputError):
        parse_form(b"&".join([b"a=1"] * 101))
    assert parse_form(b"a=%00", allow_nul=True) == {"a": "\x00"}


def test_check_text() -> None:
    assert check_text("héllo \U0001f600") == "héllo \U0001f600"
    for bad in NASTY:
        with pytest.raises(InvalidText) as caught:
            check_text("a" + bad, field="the username")
        assert caught.value.message.startswith("the username")
        assert bad not in caught.value.message
    assert check_text("a\x00", allow_nul=True) == "a\x00"
    with pytest.raises(InputError):
        check_text("abc", max_length=2)


@pytest.mark.parametrize("value", ["\u00b2", "\u0661", "1\u00b2", "-1", "+1", "1.0", "0x10", "",
                                   "1" * 19, "1 1"])  # fmt: skip
def test_content_length_is_ascii_digits_only(value: str) -> None:
    # "²".isdigit() and "\u0661".isdigit() are true in Python; int("²") raises.
    with pytest.raises(InputError):
        content_length(value)


def test_content_length() -> None:
    assert content_length(None) is None
    assert content_length("0") == 0
    assert content_length(" 42 ") == 42
