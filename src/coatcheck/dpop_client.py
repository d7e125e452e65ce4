"""A DPoP client for native apps and tests: an ``httpx.Auth`` that proves its key.

::

    import httpx
    from coatcheck.dpop_client import DPoPAuth

    auth = DPoPAuth()                      # a new ES256 key; keep it on the device
    with httpx.Client(base_url="https://api.example.com") as client:
        answer = client.post("/api/login", json=credentials, auth=auth).json()
        auth.access_token = answer["token"]    # token_type "DPoP": bound to auth's key
        client.get("/api/me", auth=auth)

Every request gets a fresh proof (RFC 9449 §4.2) in the ``DPoP`` header and, with an
access token, ``Authorization: DPoP <token>`` and the token's hash in ``ath``. The
``DPoP-Nonce`` of each response is kept per origin and put in the next proof; a
``use_dpop_nonce`` refusal (a 401 challenge from a resource server, a 400 from a token
endpoint, §8-9) is retried once with the new nonce. Works with ``httpx.Client`` and
``httpx.AsyncClient`` alike, and with httpx2's clients when httpx2 is installed (as
Starlette's ``TestClient`` uses it). Needs ``pip install 'coatcheck[client]'`` (httpx).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Generator
from typing import TYPE_CHECKING

import httpx

from .clock import Clock, SystemClock
from .tokens.dpop import make_proof
from .tokens.keys import Key

__all__ = ["DPoPAuth"]

_SYSTEM_CLOCK = SystemClock()
_MAX_ORIGINS = 100

if TYPE_CHECKING:
    _AuthBase = httpx.Auth
else:
    try:
        import httpx2
    except ImportError:
        _AuthBase = httpx.Auth
    else:

        class _AuthBase(httpx.Auth, httpx2.Auth):
            """Both packages' ``Auth``: each client accepts only its own (``isinstance``);
            the flow below uses nothing but what their requests and responses share."""


class DPoPAuth(_AuthBase):
    """Sign every request with ``key`` (a new ES256 key when omitted).

    ``access_token`` (settable) goes out as ``Authorization: DPoP``; leave it
    ``None`` for token requests (login, refresh), or use :meth:`for_token_requests`.

    :raises ConfigurationError: when ``key`` cannot sign DPoP proofs.
    """

    requires_response_body = True  # a token endpoint's use_dpop_nonce is in the body

    def __init__(
        self,
        key: Key | None = None,
        *,
        access_token: str | None = None,
        clock: Clock = _SYSTEM_CLOCK,
    ) -> None:
        self.key = key if key is not None else Key.generate("ES256")
        self.access_token = access_token
        self._clock = clock
        # origin -> the latest DPoP-Nonce it sent (RFC 9449 §8.2).
        self._nonces: dict[str, str] = {}
        # Fails now, not at the first request, for a key that cannot make proofs.
        make_proof(self.key, method="GET", url="https://check.invalid/", now=clock.now())

    @property
    def thumbprint(self) -> str:
        """The key's RFC 7638 thumbprint: the ``cnf.jkt`` of tokens bound to it."""
        return self.key.thumbprint()

    def for_token_requests(self) -> DPoPAuth:
        """The same key and nonces, without the access token (for login and refresh)."""
        twin = copy.copy(self)  # shallow: the nonces are shared
        twin.access_token = None
        return twin

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        origin = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
        self._sign(request, origin)
        response = yield request
        if self._keep_nonce(response, origin) and _asks_for_nonce(response):
            self._sign(request, origin)  # a new proof (new jti) with the server's nonce
            response = yield request
            self._keep_nonce(response, origin)

    def _sign(self, request: httpx.Request, origin: str) -> None:
        token = self.access_token
        request.headers["DPoP"] = make_proof(
            self.key,
            method=request.method,
            url=str(request.url),
            now=self._clock.now(),
            access_token=token,
            nonce=self._nonces.get(origin),
        )
        if token is not None:
            request.headers["Authorization"] = f"DPoP {token}"

    def _keep_nonce(self, response: httpx.Response, origin: str) -> bool:
        """Remember the response's nonce; whether it brought a new one."""
        nonce = response.headers.get("dpop-nonce")
        if not nonce or self._nonces.get(origin) == nonce:
            return False
        if origin not in self._nonces and len(self._nonces) >= _MAX_ORIGINS:
            self._nonces.pop(next(iter(self._nonces)))
        self._nonces[origin] = nonce
        return True

    def __repr__(self) -> str:
        return f"DPoPAuth({self.key!r})"


def _asks_for_nonce(response: httpx.Response) -> bool:
    if response.status_code == 401:
        challenge = response.headers.get("www-authenticate", "")
        return "dpop" in challenge.lower() and 'error="use_dpop_nonce"' in challenge
    if response.status_code == 400:
        try:
            body = json.loads(response.content)
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
    return False
