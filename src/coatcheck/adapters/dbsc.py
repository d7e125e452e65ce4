"""The HTTP shape of the DBSC endpoints: one table from a reply to status, headers, body.

:class:`~coatcheck.auth.dbsc.DeviceBinding` decides; every adapter (ASGI, WSGI,
Flask) answers the same way through :func:`dbsc_response`:

* ``OK``: 200, the session instructions JSON, the new bound cookie and the next
  challenge (``Cache-Control: no-store``, as the draft's examples);
* ``CHALLENGE``: 403 with ``Secure-Session-Challenge`` (refresh) or a new
  ``Secure-Session-Registration`` (registration): the browser signs it and retries;
* ``END``: 200 ``{"continue": false}``: the browser ends the session and drops its key;
* ``REFUSED``: the error's status (401, 400, 409) and JSON body; any 4xx but 403
  also ends the browser's session (DBSC "Send request").

Both endpoints are POST only (405 otherwise) and never framed or shared: the refresh
endpoint would leak login state to another site (DBSC "Server considerations").
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..auth.dbsc import DbscReply, DeviceBinding, ReplyKind
from .http import error_headers, error_json, error_status

__all__ = ["dbsc_endpoint", "dbsc_response", "method_not_allowed", "serve_dbsc"]

_COMMON = [
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
    ("cross-origin-resource-policy", "same-origin"),
]


def dbsc_endpoint(binding: DeviceBinding | None, path: str) -> str | None:
    """``"register"`` or ``"refresh"`` when ``path`` is one of ``binding``'s endpoints."""
    if binding is None:
        return None
    if path == binding.registration_path:
        return "register"
    if path == binding.refresh_path:
        return "refresh"
    return None


def method_not_allowed() -> tuple[int, list[tuple[str, str]], bytes]:
    """405 for anything but POST on a DBSC endpoint."""
    body = b'{"error":"method_not_allowed","message":"DBSC endpoints take POST"}'
    headers = [("content-type", "application/json"), ("allow", "POST"), *_COMMON]
    return 405, headers, body


async def serve_dbsc(
    binding: DeviceBinding, which: str, headers: Mapping[str, str]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run the endpoint ``which`` and give its HTTP response (raises StoreError)."""
    if which == "register":
        reply = await binding.register(headers)
    else:
        reply = await binding.refresh(headers)
    return dbsc_response(reply)


def dbsc_response(reply: DbscReply) -> tuple[int, list[tuple[str, str]], bytes]:
    """``(status, headers, body)`` for a DBSC endpoint's reply."""
    if reply.kind is ReplyKind.REFUSED and reply.error is not None:
        status = error_status(reply.error)
        if status == 403:
            # 403 means "sign this challenge" to the browser; a refusal must not say that.
            status = 400
        headers = [*error_headers(reply.error), *reply.headers]
        return status, _dedupe(headers), error_json(reply.error)
    if reply.kind is ReplyKind.CHALLENGE:
        body = (
            error_json(reply.error)
            if reply.error is not None
            else b'{"error":"dbsc_challenge","message":"sign this challenge"}'
        )
        return 403, [("content-type", "application/json"), *_COMMON, *reply.headers], body
    body = json.dumps(reply.body or {}, separators=(",", ":")).encode()
    return 200, [("content-type", "application/json"), *_COMMON, *reply.headers], body


def _dedupe(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen = {name for name, _ in headers}
    return headers + [(name, value) for name, value in _COMMON if name not in seen]
