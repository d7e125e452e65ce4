"""An httpx client that behaves like a browser on the demo's pages for CSRF purposes.

Before each unsafe request a browser would make (it holds cookies, or it is not a JSON
API call), it loads ``/`` (which may set the pre-session or double-submit cookie) and
sends that page's token in the ``x-csrf-token`` header, unless one is already set.
The CSRF checks themselves are tested in tests/demo/test_csrf*.py and
tests/e2e/test_hostile_inputs.py.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

TOKEN_RE = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]+)"')
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def page_token(client: httpx.Client, path: str = "/") -> str:
    """The CSRF token of the form on ``path``."""
    match = TOKEN_RE.search(client.get(path).text)
    if match is None:
        raise AssertionError("the page has no CSRF token")
    return match.group(1)


class CsrfClient(httpx.Client):
    """httpx.Client that echoes the page's CSRF token on unsafe requests."""

    def request(  # type: ignore[override]
        self, method: str, url: Any, *, csrf: bool = True, **kwargs: Any
    ) -> httpx.Response:
        if csrf and method.upper() in _UNSAFE and (self.cookies or kwargs.get("json") is None):
            headers = dict(kwargs.pop("headers", None) or {})
            if not any(k.lower() == "x-csrf-token" for k in headers):
                headers["x-csrf-token"] = page_token(self)
            kwargs["headers"] = headers
        return super().request(method, url, **kwargs)
