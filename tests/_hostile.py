"""Hypothesis strategies for hostile request bodies (issue 12 item 4).

JSON objects whose fields are the ones an endpoint reads, with values that break a
lenient parser's callers: lone surrogates (escaped, or raw in the bytes), NULs,
huge strings and numbers (``1e999``, 5000 digits), deep nesting, wrong types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote

from hypothesis import strategies as st

NASTY = ["\ud800", "\udbff", "\udc00", "\udfff", "\x00", "\U0001f600", "é", "\ufeff", "\uffff"]
_CHARS = st.one_of(st.characters(), st.sampled_from(NASTY))
TEXT = st.text(_CHARS, max_size=24)
#: JSON text inserted as is: what json.dumps would never write.
_RAW = st.sampled_from([
    "1e999", "-1e999", "1" * 5000, "9" * 4000, "NaN", "-Infinity", "1.5e-400", "-0",
    "[" * 64 + "]" * 64, '"' + "x" * 70_000 + '"', '"' + "é" * 20_000 + '"',
    '"\\ud800\\udc00"', '"\\u0000"',
])  # fmt: skip
_PLAIN = st.one_of(
    TEXT, st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False)
)
_VALUE = st.recursive(
    _PLAIN, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


def _dump(value: object, ascii_escapes: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_escapes)


@st.composite
def twisted(draw: st.DrawFn, plausible: str) -> str:
    """``plausible`` with nasty characters put in at random places (or none)."""
    text = plausible
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(NASTY) | TEXT) + text[at:]
    return text


@st.composite
def _field_value(draw: st.DrawFn, plausible: str | None, ascii_escapes: bool) -> str:
    if plausible is not None and draw(st.booleans()):
        return _dump(draw(twisted(plausible)), ascii_escapes)
    return draw(st.one_of(_RAW, _VALUE.map(lambda v: _dump(v, ascii_escapes))))


@st.composite
def json_bodies(draw: st.DrawFn, fields: Mapping[str, str]) -> bytes:
    """A JSON object (as bytes) over ``fields`` (name -> a plausible value) and others."""
    ascii_escapes = draw(st.booleans())
    names = list(fields) + draw(st.lists(st.sampled_from(list(fields)) | TEXT, max_size=2))
    if draw(st.booleans()):
        names = draw(st.permutations(names))[: draw(st.integers(0, len(names)))]
    members = [
        _dump(name, ascii_escapes) + ":" + draw(_field_value(fields.get(name), ascii_escapes))
        for name in names
    ]
    # Without ASCII escapes a lone surrogate goes out as its (invalid) UTF-8 bytes.
    return ("{" + ",".join(members) + "}").encode("utf-8", "surrogatepass")


@st.composite
def form_bodies(draw: st.DrawFn, fields: Mapping[str, str]) -> bytes:
    """An urlencoded form over ``fields`` (and others), values percent-encoded from any text."""
    names = list(fields) + draw(st.lists(st.sampled_from(list(fields)) | TEXT, max_size=2))
    pairs = []
    for name in names:
        plausible = fields.get(name, "")
        value = draw(twisted(plausible) | TEXT | st.sampled_from(["x" * 70_000, "%", "%ED%A0%80"]))
        encoded = quote(value.encode("utf-8", "surrogatepass"), safe="%")
        pairs.append(quote(name.encode("utf-8", "surrogatepass")) + "=" + encoded)
    return "&".join(pairs).encode()
