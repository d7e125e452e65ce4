"""DPoP (RFC 9449): key-bound bearer tokens for native apps and APIs.

A client that holds a key pair sends, with every request, a proof signed by that key
(the ``DPoP`` header). Tokens issued to it name the key's thumbprint in ``cnf.jkt``
(RFC 9449 §6; a session keeps it in its data under the same name), and from then on
the token is refused unless it arrives as ``Authorization: DPoP <token>`` with a
fresh proof from that very key (§7). A copied token is useless without the key.

:class:`DPoPTransport` is the transport for that scheme. It reads the token, runs the
pure checks of :class:`~coatcheck.tokens.dpop.DPoPVerifier` against the request's
method and URL, and remembers each proof's ``jti`` in a
:class:`~coatcheck.sessions.ReplayCache` (every store is one) for as long as the
proof could be accepted (§11.1). The :class:`~coatcheck.auth.Authenticator` ties it to
the strategies: it issues bound tokens to logins that carry a proof, and refuses a
bound token on any other transport.

The method and URL reach the framework-free core as HTTP/2-style pseudo-headers in
the headers mapping (RFC 9113 §8.3.1): adapters add ``:method``, ``:scheme`` and
``:path`` (the path as sent, without the query) when the request has a ``DPoP``
header. Behind a proxy, set :attr:`DPoPPolicy.public_origin` to the origin clients
use; otherwise the request's own scheme and ``Host`` are taken.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from ..clock import Clock, SystemClock
from ..errors import (
    ConfigurationError,
    DPoPProofReplayed,
    DPoPRequired,
    InvalidDPoPBinding,
    InvalidDPoPProof,
)
from ..sessions.store import ReplayCache
from ..tokens.dpop import (
    DEFAULT_DPOP_ALGORITHMS,
    DPOP_ALGORITHMS,
    DPoPProof,
    DPoPVerifier,
    normalize_htu,
)
from ..tokens.dpop_nonce import DPoPNonces
from .identity import Issued

__all__ = [
    "CONFIRMATION_CLAIM",
    "METHOD_HEADER",
    "PATH_HEADER",
    "SCHEME_HEADER",
    "DPoPPolicy",
    "DPoPTransport",
    "key_binding",
]

#: Pseudo-headers the adapters add for DPoP requests (RFC 9113 §8.3.1 names).
METHOD_HEADER = ":method"
SCHEME_HEADER = ":scheme"
PATH_HEADER = ":path"
#: Claim (and session-data key) naming the key a credential is bound to (RFC 7800 §3.1).
CONFIRMATION_CLAIM = "cnf"

_SYSTEM_CLOCK = SystemClock()
#: Longest Authorization header read (as the bearer transport).
_MAX_AUTHORIZATION = 8192
# RFC 9449 §7.1: token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# Characters a path may carry as they are (RFC 3986 pchar and "/"; "%" keeps escapes).
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_PLAIN_PATH_RE = re.compile(r"[A-Za-z0-9/:@!$&'()*+,;=\-._~]*")
_WEB_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_Refusal = TypeVar("_Refusal", bound=InvalidDPoPProof | InvalidDPoPBinding)


def key_binding(claims: Mapping[str, Any]) -> str | None:
    """The thumbprint a credential is bound to (``cnf.jkt``), ``None`` when unbound.

    A ``cnf`` that is not exactly ``{"jkt": <string>}`` (another confirmation method,
    or garbage) binds to nothing any proof can match: ``""``, so it is refused.
    """
    cnf = claims.get(CONFIRMATION_CLAIM)
    if cnf is None:
        return None
    if isinstance(cnf, Mapping) and len(cnf) == 1:
        jkt = cnf.get("jkt")
        if isinstance(jkt, str) and jkt:
            return jkt
    return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DPoPPolicy:
    """How DPoP proofs are judged.

    ``algorithms``: the proof algorithms accepted (asymmetric only), listed in the
    ``algs`` challenge. A proof is accepted from ``max_age`` after its ``iat`` and up
    to ``leeway`` before it (clock skew); its ``jti`` is remembered that long.
    ``required``: every token issued must be bound, and unbound bearer tokens are
    refused (otherwise a client that sends no proof gets a plain bearer token).
    ``public_origin``: ``scheme://host[:port]`` that clients use to reach the app
    (behind a proxy); without it the request's own scheme and Host header count.
    ``key_cache``: how many clients' proof keys stay parsed (about 3 KB each; see
    :class:`~coatcheck.tokens.dpop.DPoPVerifier`).

    :raises ConfigurationError: for an unknown algorithm, an empty list, a
        non-positive ``max_age``, a ``leeway`` outside 0-300 s, a negative
        ``key_cache``, or a bad origin.
    """

    algorithms: tuple[str, ...] = DEFAULT_DPOP_ALGORITHMS
    max_age: timedelta = timedelta(seconds=60)
    leeway: timedelta = timedelta(seconds=10)
    required: bool = False
    public_origin: str | None = None
    key_cache: int = 4096

    def __post_init__(self) -> None:
        if isinstance(self.algorithms, str) or not self.algorithms:
            raise ConfigurationError("DPoP algorithms is a non-empty tuple of names")
        unknown = set(self.algorithms) - DPOP_ALGORITHMS
        if unknown:
            raise ConfigurationError(
                f"unsupported DPoP algorithms: {', '.join(sorted(unknown))}; "
                f"choose from {', '.join(sorted(DPOP_ALGORITHMS))}"
            )
        if self.max_age.total_seconds() <= 0 or not 0 <= self.leeway.total_seconds() <= 300:
            raise ConfigurationError("DPoP max_age must be positive and leeway 0 to 300 seconds")
        if self.key_cache < 0:
            raise ConfigurationError("DPoP key_cache must be 0 (off) or more")
        if self.public_origin is not None:
            origin = normalize_htu(self.public_origin.rstrip("/") + "/")
            if origin is None or origin.count("/") != 3:
                raise ConfigurationError(
                    f"public_origin {self.public_origin!r} must be scheme://host[:port], "
                    "http or https, with no path"
                )
            object.__setattr__(self, "public_origin", origin[:-1])


class DPoPTransport:
    """The credential in ``Authorization: DPoP <token>``, proven by the ``DPoP`` header.

    ``replay`` remembers proof ids (pass the session store: every store is a
    :class:`~coatcheck.sessions.ReplayCache`). ``nonces`` turns on server nonces
    (RFC 9449 §9): proofs must then carry a current one, and responses to DPoP
    requests carry the next in ``DPoP-Nonce``. ``read`` never raises; the checks
    that can fail are :meth:`proof_for` (pure) and :meth:`remember` (the store).

    :raises ConfigurationError: for a replay cache that is not one.
    """

    __slots__ = ("_clock", "_nonces", "_policy", "_replay", "_ttl", "_verifier")

    name = "dpop"

    def __init__(
        self,
        replay: ReplayCache,
        *,
        policy: DPoPPolicy = DPoPPolicy(),
        nonces: DPoPNonces | None = None,
        clock: Clock = _SYSTEM_CLOCK,
    ) -> None:
        if not isinstance(replay, ReplayCache):
            raise ConfigurationError(
                "DPoP needs a replay cache with remember_once(): pass the session store"
            )
        self._replay = replay
        self._policy = policy
        self._nonces = nonces
        self._clock = clock
        self._verifier = DPoPVerifier(
            algorithms=policy.algorithms,
            max_age=policy.max_age,
            leeway=policy.leeway,
            key_cache=policy.key_cache,
        )
        # One second more than the window, for the clock's granularity.
        self._ttl = self._verifier.replay_window + 1.0

    @property
    def policy(self) -> DPoPPolicy:
        return self._policy

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The accepted proof algorithms (the ``algs`` challenge parameter)."""
        return self._verifier.algorithms

    # -- the Transport protocol ------------------------------------------------------------

    def read(self, headers: Mapping[str, str]) -> str | None:
        """The token of ``Authorization: DPoP <token>`` (scheme case-insensitive), or None."""
        header = headers.get("authorization")
        if not header or len(header) > _MAX_AUTHORIZATION:
            return None
        scheme, _, token = header.partition(" ")
        if len(scheme) != 4 or scheme.lower() != "dpop":
            return None
        token = token.strip(" ")
        if not token or not _TOKEN68_RE.fullmatch(token):
            return None
        return token

    def write(self, issued: Issued, *, persistent: bool) -> list[tuple[str, str]]:
        return []

    def clear(self) -> list[tuple[str, str]]:
        return []

    # -- proofs ------------------------------------------------------------------------------

    def request_url(self, headers: Mapping[str, str]) -> str | None:
        """The request's URL without query, as a proof's ``htu`` should name it; never raises."""
        path = headers.get(PATH_HEADER)
        if not path or not path.startswith("/"):
            return None
        origin = self._policy.public_origin
        if origin is None:
            scheme = _WEB_SCHEMES.get(headers.get(SCHEME_HEADER, ""))
            host = headers.get("host")
            if scheme is None or not host:
                return None
            origin = f"{scheme}://{host}"
        if _PLAIN_PATH_RE.fullmatch(path):
            return origin + path
        try:
            # Bytes outside a URI's characters are percent-encoded as a client would.
            return origin + quote(path, safe=_PATH_SAFE, encoding="latin-1")
        except UnicodeEncodeError:
            return None

    def proof_for(self, headers: Mapping[str, str], *, access_token: str | None) -> DPoPProof:
        """The request's proof after the pure checks of RFC 9449 §4.3 (no replay check).

        ``access_token`` is the token the request carries (its hash must be the
        proof's ``ath``), ``None`` at a token endpoint.

        :raises UseDPoPNonce: nonces are on and the proof lacks the current one.
        :raises InvalidDPoPProof: no proof, or one that fails a check.
        """
        proof = headers.get("dpop")
        url = self.request_url(headers)
        nonces = self._nonces
        now = self._clock.now()
        if not proof:
            raise self._refusal(InvalidDPoPProof("send a DPoP proof in the DPoP header"), now)
        if url is None:
            raise self._refusal(InvalidDPoPProof("the request's URL is unknown"), now)
        return self._verifier.verify(
            proof,
            method=headers.get(METHOD_HEADER, ""),
            url=url,
            now=now,
            access_token=access_token,
            nonces=nonces,
        )

    async def remember(self, proof: DPoPProof) -> None:
        """Refuse a proof seen before: remember its ``jti`` for the acceptance window.

        :raises DPoPProofReplayed: the proof was used already.
        :raises StoreError: or StoreUnavailable when the replay cache fails.
        """
        # Scoped to the key, so one client's ids cannot block another's; hashed, so
        # the stored key is short and safe whatever the jti holds.
        digest = hashlib.sha256(f"{proof.jkt}\x00{proof.jti}".encode()).hexdigest()
        now = self._clock.now()
        if not await self._replay.remember_once("dpop:" + digest, self._ttl, now):
            raise self._refusal(DPoPProofReplayed("this DPoP proof was already used"), now)

    async def token_request(
        self, headers: Mapping[str, str], *, require: bool | None = None
    ) -> DPoPProof | None:
        """The proof of a request that asks for tokens (login, refresh), checked and
        remembered; ``None`` when it sends none and that is allowed (RFC 9449 §5).

        ``require`` (default: the policy's ``required``) refuses a request without a
        proof; pass ``False`` where the credential goes to a cookie, not a bearer client.

        :raises DPoPRequired: no proof, and one is required.
        :raises InvalidDPoPProof: a proof that fails a check, or a replayed one.
        :raises StoreError: or StoreUnavailable when the replay cache fails.
        """
        if "dpop" not in headers:
            if self._policy.required if require is None else require:
                raise self._refusal(
                    DPoPRequired("this server issues only DPoP-bound tokens: send a proof"),
                    self._clock.now(),
                )
            return None
        proof = self.proof_for(headers, access_token=None)
        await self.remember(proof)
        return proof

    def binding_refusal(self, message: str) -> InvalidDPoPBinding:
        """An :class:`~coatcheck.errors.InvalidDPoPBinding` with this server's challenge."""
        return self._refusal(InvalidDPoPBinding(message), self._clock.now())

    def required_refusal(self) -> DPoPRequired:
        """The refusal of an unbound bearer token when the policy requires binding."""
        return self._refusal(
            DPoPRequired("this server accepts only DPoP-bound tokens"), self._clock.now()
        )

    def response_headers(self, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """``DPoP-Nonce`` for a response to a DPoP request when nonces are on (§8.2, §9)."""
        if self._nonces is None or "dpop" not in headers:
            return []
        return [("dpop-nonce", self._nonces.current(self._clock.now()))]

    def _refusal(self, exc: _Refusal, now: float) -> _Refusal:
        exc.algs = self._verifier.algorithms
        if self._nonces is not None:
            exc.nonce = self._nonces.current(now)
        return exc

    def __repr__(self) -> str:
        return f"DPoPTransport({self._replay!r}, {self._policy!r})"
