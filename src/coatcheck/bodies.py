"""Request bodies and text fields from clients: strict parsing, a stable 400, never a 500.

A client chooses every character of a JSON or form body, and Python happily carries
text that is not a sequence of Unicode scalar values: the JSON escape ``"\\ud800"``
becomes a lone surrogate, which fails only later and far from the input (``encode``
in a password hasher, ``hmac.compare_digest``, a database driver, a JSON response),
as a 500. So text is checked where it enters:

* :func:`parse_json`: JSON as I-JSON (RFC 7493) wants it: UTF-8 only (RFC 8259 §8.1),
  no surrogate code points (RFC 7493 §2.1), unique member names (§2.3), finite
  numbers (no ``NaN``, ``Infinity`` or ``1e999``, RFC 8259 §6); plus no NUL in any
  string (PostgreSQL's text and jsonb cannot store one) and bounded nesting;
* :func:`parse_form`: an ``application/x-www-form-urlencoded`` body (WHATWG URL §5.1)
  whose percent-decoded bytes must be UTF-8, the first value of each name;
* :func:`check_text`: one string from anywhere else;
* :func:`content_length`: a ``Content-Length`` value, ASCII digits only (RFC 9110 §8.6;
  ``"²".isdigit()`` is true in Python, and ``int("²")`` raises).

Every refusal is an :class:`~coatcheck.errors.InputError`, 400 in every adapter:
:class:`~coatcheck.errors.InvalidText` (``invalid_text``) for text that is not
Unicode scalar values or holds a NUL, ``bad_request`` for the rest. Messages never
repeat the client's text.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qs

from .errors import InputError, InvalidText

__all__ = ["MAX_DEPTH", "check_text", "content_length", "parse_form", "parse_json"]

#: Deepest nesting of arrays and objects :func:`parse_json` accepts by default.
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_OR_NUL = re.compile("[\x00\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]{1,18}")


def check_text(
    value: str, *, field: str = "the text", allow_nul: bool = False, max_length: int | None = None
) -> str:
    """``value`` if it is Unicode scalar values (and has no NUL unless ``allow_nul``).

    ``field`` names the input in the message (the application's name for it, never
    the client's text).

    :raises InvalidText: for a lone surrogate, or a NUL.
    :raises InputError: when it is longer than ``max_length`` characters.
    """
    bad = (_SURROGATE if allow_nul else _SURROGATE_OR_NUL).search(value)
    if bad is not None:
        if bad.group() == "\x00":
            raise InvalidText(f"{field} contains a NUL character")
        raise InvalidText(f"{field} is not valid Unicode (it contains a lone surrogate)")
    if max_length is not None and len(value) > max_length:
        raise InputError(f"{field} is longer than {max_length} characters")
    return value


def content_length(value: str | None) -> int | None:
    """A ``Content-Length`` header's value as a number, ``None`` when it is absent.

    :raises InputError: when it is not 1 to 18 ASCII digits.
    """
    if value is None:
        return None
    value = value.strip(" \t")
    if _DIGITS.fullmatch(value) is None:
        raise InputError("Content-Length is not a number")
    return int(value)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # Parsers disagree on which duplicate wins (RFC 7493 §2.3): refuse, never guess.
        raise InputError("the JSON body has an object with a duplicate member name")
    return result


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise InputError("the JSON body has a number out of range")
    return number


def _constant(name: str) -> Any:
    raise InputError(f"the JSON body has {name}, which is not JSON")


def parse_json(
    body: bytes | str, *, max_depth: int = MAX_DEPTH, allow_nul: bool = False
) -> Any:
    """The JSON value in ``body`` (UTF-8 bytes, or text already decoded), checked strictly.

    :raises InvalidText: for bytes that are not UTF-8, and for a string (value or
        member name) with a lone surrogate or (unless ``allow_nul``) a NUL.
    :raises InputError: for anything that is not JSON, duplicate member names,
        non-finite numbers, or nesting deeper than ``max_depth``.
    """
    if isinstance(body, str):
        text = body
    else:
        try:
            text = bytes(body).decode("utf-8")  # strict: encoded surrogates are refused too
        except UnicodeDecodeError as exc:
            raise InvalidText("the JSON body is not UTF-8") from exc
    try:
        value = json.loads(
            text, object_pairs_hook=_unique, parse_float=_finite, parse_constant=_constant
        )
    except InputError:
        raise
    except (ValueError, RecursionError) as exc:
        raise InputError("the body is not valid JSON") from exc
    _check_tree(value, max_depth, allow_nul)
    return value


def _check_tree(value: Any, max_depth: int, allow_nul: bool) -> None:
    # Iterative, so a deep tree cannot exhaust the stack here either.
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, field="a string in the JSON body", allow_nul=allow_nul)
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise InputError(f"the JSON body is nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    check_text(key, field="a member name in the JSON body", allow_nul=allow_nul)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def parse_form(body: bytes, *, max_fields: int = 100, allow_nul: bool = False) -> dict[str, str]:
    """An urlencoded form as ``{name: first value}``.

    :raises InvalidText: when the body or a percent-decoded name or value is not
        UTF-8 (an encoded surrogate is not UTF-8), or holds a NUL (unless ``allow_nul``).
    :raises InputError: for more than ``max_fields`` fields.
    """
    try:
        text = body.decode("utf-8")
        parsed = parse_qs(
            text, keep_blank_values=True, max_num_fields=max_fields, errors="strict"
        )
    except UnicodeDecodeError as exc:
        raise InvalidText("the form is not UTF-8 (after percent-decoding)") from exc
    except ValueError as exc:
        raise InputError(f"the form has more than {max_fields} fields") from exc
    form: dict[str, str] = {}
    for name, values in parsed.items():
        check_text(name, field="a form field name", allow_nul=allow_nul)
        check_text(values[0], field="a form field", allow_nul=allow_nul)
        form[name] = values[0]
    return form
