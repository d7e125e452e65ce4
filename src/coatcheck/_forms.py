"""Find one field in a buffered form body, for the CSRF rules. Never raises.

Only what a browser form sends is read: ``application/x-www-form-urlencoded``
(WHATWG URL §5.1) and ``multipart/form-data`` (RFC 7578). The first field of that
name wins. These readers only ever *find* a token; the app parses the body itself,
so a differential between this reader and the app's can at worst hide a token
(a refusal), never forge one.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

__all__ = ["FORM_MEDIA_TYPES", "form_field", "media_type"]

#: Media types an HTML form (or a no-CORS fetch) can send cross-site without a preflight
#: (Fetch standard, "CORS-safelisted request-header": Content-Type).
FORM_MEDIA_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
_MAX_FIELDS = 1000
# RFC 2046 §5.1.1: 1 to 70 characters from a restricted set.
_BOUNDARY_RE = re.compile(
    r"""boundary=(?:"([0-9A-Za-z'()+_,\-./:=? ]{1,70})"|([0-9A-Za-z'()+_,\-./:=?]{1,70}))""", re.I
)
_DISPOSITION_RE = re.compile(rb"content-disposition:[ \t]*form-data[ \t]*;(.*)", re.I)
_NAME_RE = re.compile(rb"""(?:^|;)[ \t]*name="([^"]*)\"""", re.I)
_FILENAME_RE = re.compile(rb"(?:^|;)[ \t]*filename\*?=", re.I)


def media_type(content_type: str) -> str:
    """The lower-case media type of a Content-Type value, without parameters."""
    return content_type.partition(";")[0].strip().lower()


def form_field(body: bytes, content_type: str, name: str) -> str | None:
    """The first value of field ``name`` in a form ``body``, or ``None``."""
    media = media_type(content_type)
    if media == "application/x-www-form-urlencoded":
        return _urlencoded(body, name)
    if media == "multipart/form-data":
        match = _BOUNDARY_RE.search(content_type)
        if match is None:
            return None
        boundary = (match.group(1) or match.group(2)).encode("latin-1")
        return _multipart(body, boundary, name.encode("latin-1", "replace"))
    return None


def _urlencoded(body: bytes, name: str) -> str | None:
    for count, pair in enumerate(body.split(b"&")):
        if count >= _MAX_FIELDS:
            return None
        key, _, value = pair.partition(b"=")
        # latin-1 maps every byte, so decoding cannot fail; the token is ASCII anyway.
        if unquote_plus(key.decode("latin-1")) == name:
            return unquote_plus(value.decode("latin-1"), encoding="utf-8", errors="replace")
    return None


def _multipart(body: bytes, boundary: bytes, name: bytes) -> str | None:
    for count, part in enumerate(body.split(b"--" + boundary)):
        if count > _MAX_FIELDS:
            return None
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        for line in head.split(b"\r\n"):
            disposition = _DISPOSITION_RE.match(line.strip())
            if disposition is None:
                continue
            params = disposition.group(1)
            found = _NAME_RE.search(params)
            if found is None or found.group(1) != name or _FILENAME_RE.search(params):
                break
            # The part ends with the CRLF that precedes the next delimiter (RFC 2046 §5.1.1).
            if content.endswith(b"\r\n"):
                content = content[:-2]
            return content.decode("utf-8", "replace")
    return None
