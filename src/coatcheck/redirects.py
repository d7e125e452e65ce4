"""Open-redirect defence: a ``next`` parameter may only name a path on this origin.

After login an app sends the browser back where it came from (``/login?next=/cart``).
If ``next`` could be any URL, a link to the real login page would finish on an
attacker's look-alike (OWASP Unvalidated Redirects cheat sheet; CWE-601). Browsers
read ``Location`` with the WHATWG URL parser, which is more forgiving than it looks:
``//evil.example`` and ``/\\evil.example`` are scheme-relative URLs to another host,
tabs and newlines are silently removed (``/\\t/evil.example`` becomes
``//evil.example``), and leading control characters or spaces are trimmed. So the
rule here is an allow list, not a block list: an absolute path of visible ASCII,
starting with exactly one ``/``, with no backslash, checked both as given and
percent-decoded once (so a later decode by a proxy or framework cannot turn it into
one of the forms above).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["MAX_REDIRECT_LENGTH", "is_safe_redirect", "safe_redirect"]

#: Longest ``next`` value accepted; longer ones fall back to the default.
MAX_REDIRECT_LENGTH = 2048
# As sent: visible ASCII only (no space, no control character, nothing outside ASCII).
_VISIBLE_RE = re.compile(r"[\x21-\x7e]*")
# Once decoded, UTF-8 text (``/caf%C3%A9``) and spaces are fine, but no control character
# (a tab or newline inside the path is removed by browsers: ``/\t/evil``).
_INVISIBLE_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


def _path_only(value: str) -> bool:
    return value.startswith("/") and not value.startswith("//") and "\\" not in value


def is_safe_redirect(target: object) -> bool:
    """Whether ``target`` is a same-origin absolute path such as ``/sessions?tab=2``.

    Never raises: anything that is not a ``str`` is unsafe.
    """
    if not isinstance(target, str) or not target or len(target) > MAX_REDIRECT_LENGTH:
        return False
    if not _path_only(target) or not _VISIBLE_RE.fullmatch(target):
        return False
    decoded = unquote(target, errors="replace")
    return _path_only(decoded) and not _INVISIBLE_RE.search(decoded)


def safe_redirect(target: object, *, default: str = "/") -> str:
    """``target`` when :func:`is_safe_redirect` accepts it, else ``default``. Never raises."""
    return target if is_safe_redirect(target) and isinstance(target, str) else default
