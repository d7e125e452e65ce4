"""Strict base64url and JSON for JOSE segments (RFC 7515 §2, RFC 8259 §4).

Every check runs in C where it can: ``binascii`` in strict mode for the alphabet and
padding, a table lookup for the canonical final character, and orjson (when installed)
for the JSON, falling back to the standard library with a duplicate-aware parse.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from typing import Any

from ..errors import MalformedToken

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_TOKEN_BYTES",
    "b64url_decode",
    "b64url_encode",
    "dumps",
    "loads_object",
]

#: Tokens longer than this are refused before any parsing; cookies cap near 4 KiB anyway.
MAX_TOKEN_BYTES = 8192
#: Objects and arrays nested deeper than this are refused (claims are shallow in practice).
MAX_JSON_DEPTH = 32

# '-' and '_' become '+' and '/'; the standard alphabet's own '+', '/' and the '=' pad
# become '!', which strict mode rejects, so only the URL-safe alphabet gets through.
_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")
_PAD = (b"", b"", b"==", b"=")
# A canonical encoding leaves the unused low bits of the last character zero (RFC 4648 §3.5).
_CANONICAL_LAST: tuple[frozenset[int], ...] = (
    frozenset(),
    frozenset(),
    frozenset(b"AQgw"),
    frozenset(b"AEIMQUYcgkosw048"),
)


def b64url_decode(segment: bytes) -> bytes:
    """Decode unpadded, canonical base64url.

    :raises MalformedToken: on any other character, padding, or non-canonical form.
    """
    rem = len(segment) & 3
    if rem == 1 or (rem and segment[-1] not in _CANONICAL_LAST[rem]):
        raise MalformedToken("invalid base64url segment")
    try:
        return binascii.a2b_base64(segment.translate(_TO_STD) + _PAD[rem], strict_mode=True)
    except binascii.Error as exc:
        raise MalformedToken("invalid base64url segment") from exc


def b64url_encode(data: bytes) -> bytes:
    """Unpadded base64url (RFC 7515 §2)."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_FROM_STD)


_FROM_STD = bytes.maketrans(b"+/", b"-_")


def _no_constant(name: str) -> Any:
    # json accepts NaN and Infinity by default; RFC 8259 does not.
    raise ValueError(f"{name} is not JSON")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # RFC 7515 §5.2 and RFC 7519 §4: a duplicate member name must be refused.
        raise ValueError("duplicate member name")
    return obj


_decoder = json.JSONDecoder(object_pairs_hook=_unique_pairs, parse_constant=_no_constant)


def _check_depth(raw: bytes) -> None:
    depth = 0
    in_string = False
    escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise MalformedToken("JSON nested too deeply")
        elif byte in (0x5D, 0x7D):
            depth -= 1


def _slow_loads(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
        return _decoder.decode(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedToken("invalid JSON") from exc


_fast_loads: Callable[[bytes], Any] | None
_fast_dumps: Callable[[Any], bytes] | None
try:
    import orjson
except ImportError:  # pragma: no cover - orjson is optional
    _fast_loads = _fast_dumps = None
else:
    _fast_loads = orjson.loads
    _fast_dumps = orjson.dumps


def loads_object(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object: strict UTF-8, no duplicate names, no NaN, bounded depth.

    With orjson the fast parse is trusted only when re-serialising it gives back the
    exact input: compact canonical text cannot hide a duplicate name (orjson keeps
    the last one silently). Anything else takes the duplicate-aware standard parse,
    so the result never depends on whether orjson is installed.

    :raises MalformedToken: when ``raw`` is not such an object.
    """
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH:
        _check_depth(raw)
    obj: Any = None
    if _fast_loads is not None and _fast_dumps is not None:
        try:
            obj = _fast_loads(raw)
            if _fast_dumps(obj) != raw:
                obj = None
        except (ValueError, TypeError):
            obj = None
    if obj is None:
        obj = _slow_loads(raw)
    if type(obj) is not dict:
        raise MalformedToken("JSON value is not an object")
    return obj


def dumps(obj: Any) -> bytes:
    """Compact JSON, the form :func:`loads_object` takes on its fast path.

    :raises TypeError: or ValueError for values JSON cannot hold.
    """
    if _fast_dumps is not None:
        return _fast_dumps(obj)
    return json.dumps(
        obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
