"""The CSRF decision for one request, shared by every adapter (WSGI, Flask, ASGI).

Adapters only gather the inputs (method, headers, identity, the submitted token from
the header or the form) and turn the raised error into a 403; the rule is here once:

1. Safe methods (GET, HEAD, OPTIONS) pass (RFC 9110 §9.2.1: they must not change state).
2. Layer 1, :meth:`~coatcheck.csrf.CsrfProtector.check_origin`: Fetch Metadata / Origin.
3. Layer 2, the token, only when the credential came in a cookie: the browser attaches
   a cookie by itself, an ``Authorization: Bearer`` header never (RFC 6750 §2.1), so a
   bearer request cannot be forged cross-site. The token is bound to what
   :class:`~coatcheck.adapters.csrf.CsrfMiddleware` (the ASGI side) binds it to: the
   session id, or for a JWT with no session the login (``sub`` and ``auth_time``,
   which survive a sliding re-issue where a ``jti`` would not), each kind prefixed so
   that none can pass for another.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..auth.identity import Identity
from ..csrf import CsrfProtector, is_safe_method
from .csrf import _identity_binding

__all__ = ["check_csrf", "csrf_binding", "origin_of"]


def csrf_binding(identity: Identity | None) -> str | None:
    """What a CSRF token for ``identity`` is bound to (``None``: nothing to bind to).

    The ASGI middleware's own rule, so a token means the same on either side.
    """
    found = _identity_binding(identity)
    return None if found is None else found[0]


def origin_of(scheme: str, host: str) -> str:
    """``scheme://host[:port]`` of the app itself, from the request (or config)."""
    return f"{scheme.lower()}://{host.lower()}"


def check_csrf(
    protector: CsrfProtector,
    method: str,
    headers: Mapping[str, str],
    identity: Identity | None,
    submitted: str | None,
    *,
    own_origin: str,
) -> None:
    """Refuse a forged unsafe request; return quietly otherwise.

    :raises CrossOriginRequest: when Fetch Metadata or Origin says another origin.
    :raises MissingCsrfToken: a cookie-authenticated unsafe request without a token.
    :raises CsrfTokenMismatch: a token that is forged or bound to another session.
    """
    if is_safe_method(method):
        return
    protector.check_origin(method, headers, own_origin=own_origin)
    if identity is None or identity.via != "cookie":
        return
    binding = csrf_binding(identity)
    if binding is not None:
        protector.verify_token(submitted, binding)
