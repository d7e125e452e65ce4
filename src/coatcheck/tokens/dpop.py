"""DPoP proofs (RFC 9449): the pure checks of §4.3, and making proofs for clients.

A DPoP proof is a compact JWS the client signs with a key that never leaves its
device and sends in the ``DPoP`` header of each request. :class:`DPoPVerifier`
checks one against the request's method and URL, the access token (``ath``) and a
server nonce, and returns the :class:`DPoPProof` with the key's RFC 7638 thumbprint
(``jkt``), which is what a bound token's ``cnf`` claim names (RFC 9449 §6).

What is *not* here, because it needs I/O: the replay check of ``jti`` (a store
write, :class:`~coatcheck.auth.dpop.DPoPTransport`) and the comparison with the
token's binding (the strategy's identity).

The proof carries its own public key, so it is checked with a verify-only closure
built from the header's ``jwk``: only the asymmetric algorithms of
:data:`DPOP_ALGORITHMS`, never ``none`` or an HMAC, and never a JWK with private
members. The key is made directly from the JWK's members with ``cryptography`` (the
point is checked to lie on the curve, RSA keys vetted as :class:`~coatcheck.tokens.Key`
vets them), with no JOSE key object in between: most proofs come from a key the
cache does not hold (many clients), so this parse is on the hot path. A parsed header
is kept only after its signature verified, so a client that reuses its key soon pays
for the parse once.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ..errors import (
    ConfigurationError,
    InvalidDPoPProof,
    KeyRefused,
    MalformedToken,
    UseDPoPNonce,
)
from ._codec import b64url_decode, b64url_encode, dumps, loads_object
from ._jwk import check_rsa
from ._primitives import Verifier, ecdsa_pair, eddsa_pair, rsa_pair
from .dpop_nonce import DPoPNonces
from .jws import sign_compact
from .keys import Key

__all__ = [
    "DEFAULT_DPOP_ALGORITHMS",
    "DPOP_ALGORITHMS",
    "MAX_PROOF_BYTES",
    "DPoPProof",
    "DPoPVerifier",
    "access_token_hash",
    "make_proof",
    "normalize_htu",
]

#: Asymmetric JWS algorithms a proof may use (RFC 7518 §3, RFC 8037, RFC 9864).
DPOP_ALGORITHMS = frozenset({"ES256", "EdDSA", "Ed25519", "PS256", "RS256"})
#: The allow-list by default, in the order the ``algs`` challenge lists them.
DEFAULT_DPOP_ALGORITHMS = ("ES256", "Ed25519", "EdDSA", "PS256", "RS256")
#: Proofs longer than this are refused unread (an RS256 proof with a 4096-bit key is
#: about 2.2 KB; an ES256 one about 600 bytes).
MAX_PROOF_BYTES = 4096
_MAX_HEADER_SEGMENT = 2048
_MAX_JTI = 256
_MAX_HTU = 2048
_MIN_RSA_BITS = 2048
_MAX_RSA_BITS = 4096
_P256 = ec.SECP256R1()
_TARGETS_SIZE = 1024
# RFC 7515 §4.1.9: "dpop+jwt", or with the "application/" prefix, case-insensitively.
_TYPES = frozenset({"dpop+jwt", "application/dpop+jwt"})
_KTY = {"ES256": "EC", "EdDSA": "OKP", "Ed25519": "OKP", "PS256": "RSA", "RS256": "RSA"}
# Members that only a private (or symmetric) JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# Headers a proof may not carry: extensions we do not implement (RFC 7515 §4.1.11),
# keys fetched or chained from elsewhere, and an unencoded payload (RFC 7797).
_REFUSED_HEADERS = frozenset({"crit", "jku", "x5u", "x5c", "b64"})

# -- URIs (RFC 3986) -------------------------------------------------------------------

# An absolute http(s) URI split into scheme, authority and path; query and fragment
# are dropped (RFC 9449 §4.3 ignores them). Only printable ASCII is a URI at all.
_URI_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)([^?#]*)(?:\?[^#]*)?(?:#.*)?")
_PRINTABLE = re.compile(r"[\x21-\x7e]*")
_HOST_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~]+)(?::([0-9]{0,5}))?")
_PATH_RE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
_PCT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _pct(match: re.Match[str]) -> str:
    # RFC 3986 §6.2.2.1-2: upper-case hex; unreserved characters are decoded.
    byte = int(match.group(1), 16)
    return chr(byte) if byte in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 §5.2.4, as §6.2.2.3 asks.
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    result = "/" + "/".join(output)
    if path.endswith(("/.", "/..")) and not result.endswith("/"):
        result += "/"
    return result


def normalize_htu(uri: object) -> str | None:
    """``uri`` without query and fragment, normalised as RFC 9449 §4.3 asks; never raises.

    Syntax-based (RFC 3986 §6.2.2: case of scheme, host and percent-encodings,
    unreserved characters decoded, dot segments removed) and scheme-based (§6.2.3:
    default port dropped, empty path as ``/``) normalisation. ``None`` for anything
    that is not an absolute ``http``/``https`` URI, or that has userinfo (RFC 9110
    §4.2.4 forbids sending it).
    """
    if type(uri) is not str or len(uri) > _MAX_HTU or not _PRINTABLE.fullmatch(uri):
        return None
    match = _URI_RE.fullmatch(uri)
    if match is None:
        return None
    scheme, authority, path = match.groups()
    scheme = scheme.lower()
    default_port = _DEFAULT_PORTS.get(scheme)
    host_match = _HOST_RE.fullmatch(authority)
    if default_port is None or host_match is None or not _PATH_RE.fullmatch(path):
        return None
    host, port = host_match.group(1).lower(), host_match.group(2)
    if port:
        number = int(port)
        if not 0 < number <= 65535:
            return None
        port = str(number)
    origin = f"{scheme}://{host}" if not port or port == default_port else f"{scheme}://{host}:{port}"
    if "%" in path:
        path = _PCT_RE.sub(_pct, path)
    if not path:
        path = "/"
    elif "/." in path:
        path = _remove_dot_segments(path)
    return origin + path


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url of the SHA-256 of the token's ASCII bytes (RFC 9449 §4.2)."""
    digest = hashlib.sha256(access_token.encode("ascii", "replace")).digest()
    return b64url_encode(digest).decode("ascii")


# -- proofs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A proof that passed every pure check; ``jkt`` is its key's RFC 7638 thumbprint."""

    jkt: str
    jti: str
    htm: str
    htu: str
    iat: float
    alg: str
    nonce: str | None = None


def _b64_member(jwk: dict[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if type(value) is not str:
        raise InvalidDPoPProof(f"the proof's jwk has no '{name}' string")
    try:
        return b64url_decode(value.encode("ascii"))
    except (UnicodeEncodeError, MalformedToken):
        raise InvalidDPoPProof(f"the proof's jwk '{name}' is not base64url") from None


def _thumbprint(jwk: dict[str, Any], kty: str) -> str:
    """RFC 7638 §3: SHA-256 of the required members, in order, as compact JSON.

    The members were checked to be canonical base64url of the right length (EC
    coordinates full length, RSA integers minimal), so their text is the canonical
    form the thumbprint hashes.
    """
    if kty == "EC":
        canonical = f'{{"crv":"P-256","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'
    elif kty == "OKP":
        canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{jwk["x"]}"}}'
    else:
        canonical = f'{{"e":"{jwk["e"]}","kty":"RSA","n":"{jwk["n"]}"}}'
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest()).decode("ascii")


def _proof_verifier(jwk: dict[str, Any], alg: str) -> Verifier:
    """The signature check of a proof key's public members, built with ``cryptography``.

    No JOSE key object in between: the members are decoded once, vetted (P-256 point
    on the curve and full-length coordinates, Ed25519 of 32 bytes, RSA integers
    minimal, 2048 to 4096 bits, an odd exponent of at least 3 and no ROCA
    fingerprint) and turned into the prepared verify closure every key of the
    library uses. ``alg`` was checked against the JWK's ``kty`` already; the curve
    is checked here. tests/tokens/test_dpop_properties.py holds the result to
    joserfc's import, thumbprint and verification.
    """
    try:
        if alg == "ES256":
            if jwk.get("crv") != "P-256":
                raise InvalidDPoPProof("ES256 needs a P-256 key")
            x, y = _b64_member(jwk, "x"), _b64_member(jwk, "y")
            if len(x) != 32 or len(y) != 32:  # RFC 7518 §6.2.1.2: full length
                raise InvalidDPoPProof("the P-256 coordinates are not 32 bytes each")
            # Checks that the point lies on the curve (and is not the point at infinity).
            point = ec.EllipticCurvePublicKey.from_encoded_point(_P256, b"\x04" + x + y)
            return ecdsa_pair(None, point, "sha256")[1]
        if alg != "PS256" and alg != "RS256":  # EdDSA, Ed25519
            if jwk.get("crv") != "Ed25519":
                raise InvalidDPoPProof("EdDSA proofs need an Ed25519 key")
            x = _b64_member(jwk, "x")
            if len(x) != 32:
                raise InvalidDPoPProof("an Ed25519 key is 32 bytes")
            return eddsa_pair(None, ed25519.Ed25519PublicKey.from_public_bytes(x))[1]
        n, e = _b64_member(jwk, "n"), _b64_member(jwk, "e")
        if not n or not e or n[0] == 0 or e[0] == 0 or len(e) > 4:
            # RFC 7518 §6.3.1: minimal big-endian integers; a huge exponent only costs us.
            raise InvalidDPoPProof("the RSA key's n or e is not a minimal integer")
        modulus = int.from_bytes(n, "big")
        if not _MIN_RSA_BITS <= modulus.bit_length() <= _MAX_RSA_BITS:
            raise InvalidDPoPProof("RSA proof keys must be 2048 to 4096 bits")
        public = rsa.RSAPublicNumbers(int.from_bytes(e, "big"), modulus).public_key()
        try:
            check_rsa(public, None)  # exponent odd and >= 3, no ROCA fingerprint
        except KeyRefused as exc:
            raise InvalidDPoPProof("the proof's key does not fit its algorithm") from exc
        return rsa_pair(None, public, "sha256", pss=alg == "PS256")[1]
    except ValueError as exc:  # not on the curve, an even exponent ...
        raise InvalidDPoPProof("the proof's jwk is not a valid public key") from exc


class DPoPVerifier:
    """The pure checks of RFC 9449 §4.3 for one server's policy.

    ``algorithms`` is the allow-list (a subset of :data:`DPOP_ALGORITHMS`); a proof is
    accepted from ``max_age`` before now until ``leeway`` after (its ``iat``; clock
    skew). The replay check of ``jti`` is the caller's (it must remember each one for
    :attr:`replay_window` seconds). ``key_cache`` proof headers (each with its parsed
    key, about 3 KB) are kept after their signature verified, so a client's next proof
    costs no key parse; size it to the clients active at once (0: off).

    :raises ConfigurationError: for an empty or unsupported allow-list, a
        non-positive ``max_age``, a negative ``leeway`` or ``key_cache``.
    """

    __slots__ = (
        "_algs", "_allowed", "_cache", "_cache_size", "_leeway", "_max_age", "_targets"
    )

    def __init__(
        self,
        *,
        algorithms: Collection[str] = DEFAULT_DPOP_ALGORITHMS,
        max_age: timedelta = timedelta(seconds=60),
        leeway: timedelta = timedelta(seconds=10),
        key_cache: int = 4096,
    ) -> None:
        if key_cache < 0:
            raise ConfigurationError("key_cache must be 0 (off) or more")
        self._cache_size = key_cache
        if isinstance(algorithms, str) or not algorithms:
            raise ConfigurationError("DPoP algorithms is a non-empty collection of names")
        unknown = set(algorithms) - DPOP_ALGORITHMS
        if unknown:
            # 'none' and every HMAC end up here (RFC 9449 §4.2: asymmetric only).
            raise ConfigurationError(
                f"unsupported DPoP algorithms: {', '.join(sorted(unknown))}; "
                f"choose from {', '.join(sorted(DPOP_ALGORITHMS))}"
            )
        self._max_age = max_age.total_seconds()
        self._leeway = leeway.total_seconds()
        if self._max_age <= 0 or not 0 <= self._leeway <= 300:
            raise ConfigurationError("DPoP max_age must be positive and leeway 0 to 300 seconds")
        self._algs = tuple(dict.fromkeys(algorithms))
        self._allowed = frozenset(self._algs)
        # header segment -> (alg, key, jkt), kept only after a signature verified, so
        # forged proofs cannot fill or churn it.
        self._cache: dict[bytes, tuple[str, Verifier, str]] = {}
        # request URL -> its normal form: an app has few endpoints, each seen often.
        self._targets: dict[str, str | None] = {}

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The accepted algorithms, for the ``algs`` challenge parameter (§7.1)."""
        return self._algs

    @property
    def replay_window(self) -> float:
        """Seconds a ``jti`` must be remembered: as long as a proof can be accepted."""
        return self._max_age + self._leeway

    def verify(
        self,
        proof: str,
        *,
        method: str,
        url: str,
        now: float,
        access_token: str | None = None,
        nonces: DPoPNonces | None = None,
    ) -> DPoPProof:
        """Check ``proof`` for a request of ``method`` to ``url`` at time ``now``.

        With ``access_token`` the proof must carry its ``ath``; with ``nonces`` a
        current server nonce.

        :raises UseDPoPNonce: the nonce is missing or no longer current (``.nonce``
            holds the one to use).
        :raises InvalidDPoPProof: for every other failed check (size, framing, JSON,
            ``typ``, ``alg``, ``jwk``, signature, ``htm``, ``htu``, ``iat``, ``jti``,
            ``ath``).
        """
        try:
            return self._verify(proof, method, url, now, access_token, nonces)
        except InvalidDPoPProof as exc:
            exc.algs = self._algs
            if nonces is not None and exc.nonce is None:
                exc.nonce = nonces.current(now)
            raise
        except MalformedToken as exc:
            raise InvalidDPoPProof(
                f"the proof is malformed: {exc.message}",
                algs=self._algs,
                nonce=None if nonces is None else nonces.current(now),
            ) from None

    def _verify(
        self,
        proof: str,
        method: str,
        url: str,
        now: float,
        access_token: str | None,
        nonces: DPoPNonces | None,
    ) -> DPoPProof:
        if type(proof) is not str or len(proof) > MAX_PROOF_BYTES:
            raise InvalidDPoPProof("the proof is missing or too large")
        try:
            raw = proof.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidDPoPProof("a proof is ASCII") from None
        # One JWS: a repeated DPoP header arrives joined with ", " and fails here (§4.3).
        if raw.count(b".") != 2:
            raise InvalidDPoPProof("a proof is one compact JWS (three segments)")
        head_end = raw.index(b".")
        last = raw.rindex(b".")
        head_seg = raw[:head_end]
        cached = self._cache.get(head_seg)
        alg, check, jkt = cached if cached is not None else self._header(head_seg)
        if not check(raw[:last], b64url_decode(raw[last + 1 :])):
            raise InvalidDPoPProof("the proof's signature does not verify")
        if cached is None and self._cache_size:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()  # O(1) per entry; an LRU's bookkeeping costs every hit
            self._cache[head_seg] = (alg, check, jkt)
        claims = loads_object(b64url_decode(raw[head_end + 1 : last]))
        return self._claims(claims, jkt, alg, method, url, now, access_token, nonces)

    def _header(self, head_seg: bytes) -> tuple[str, Verifier, str]:
        if len(head_seg) > _MAX_HEADER_SEGMENT:
            raise InvalidDPoPProof("the proof's header is too large")
        header = loads_object(b64url_decode(head_seg))
        typ = header.get("typ")
        if type(typ) is not str or typ.lower() not in _TYPES:
            raise InvalidDPoPProof("the proof's typ is not dpop+jwt")
        alg = header.get("alg")
        if type(alg) is not str or alg not in self._allowed:
            raise InvalidDPoPProof("the proof's algorithm is not allowed")
        refused = _REFUSED_HEADERS.intersection(header)
        if refused:
            raise InvalidDPoPProof(f"refused header parameter: {', '.join(sorted(refused))}")
        jwk = header.get("jwk")
        if type(jwk) is not dict:
            raise InvalidDPoPProof("the proof has no jwk object")
        if _PRIVATE_MEMBERS.intersection(jwk):
            raise InvalidDPoPProof("the proof's jwk holds a private or symmetric key")
        kty = _KTY[alg]
        if jwk.get("kty") != kty:
            raise InvalidDPoPProof(f"{alg} needs a {kty} key")
        check = _proof_verifier(jwk, alg)
        return alg, check, _thumbprint(jwk, kty)  # the key's id and the token's cnf.jkt (§6.1)

    def _claims(
        self,
        claims: dict[str, Any],
        jkt: str,
        alg: str,
        method: str,
        url: str,
        now: float,
        access_token: str | None,
        nonces: DPoPNonces | None,
    ) -> DPoPProof:
        jti = claims.get("jti")
        if type(jti) is not str or not 0 < len(jti) <= _MAX_JTI:
            raise InvalidDPoPProof("the proof needs a jti string of at most 256 characters")
        htm = claims.get("htm")
        if type(htm) is not str or htm != method:
            raise InvalidDPoPProof("the proof's htm is not this request's method")
        htu = claims.get("htu")
        targets = self._targets
        if url in targets:
            target = targets[url]
        else:
            target = normalize_htu(url)
            if len(targets) >= _TARGETS_SIZE:
                targets.clear()
            targets[url] = target
        if target is None:
            raise InvalidDPoPProof("this request's URL cannot be a DPoP htu")
        # Most clients send the URL exactly as the server sees it: no second parse then.
        if type(htu) is not str or (htu != target and normalize_htu(htu) != target):
            raise InvalidDPoPProof("the proof's htu is not this request's URL")
        iat = claims.get("iat")
        if type(iat) is not int and type(iat) is not float:
            raise InvalidDPoPProof("the proof needs a numeric iat")
        if not math.isfinite(iat):
            raise InvalidDPoPProof("the proof needs a numeric iat")
        if not now - self._max_age <= iat <= now + self._leeway:
            raise InvalidDPoPProof("the proof's iat is outside the accepted window")
        nonce = claims.get("nonce")
        if nonces is not None and not nonces.check(nonce, now):
            raise UseDPoPNonce("the proof must carry the server's current DPoP nonce")
        if nonce is not None and type(nonce) is not str:
            raise InvalidDPoPProof("the proof's nonce is not a string")
        if access_token is not None:
            ath = claims.get("ath")
            expected = access_token_hash(access_token)
            if type(ath) is not str or not hmac.compare_digest(ath, expected):
                raise InvalidDPoPProof("the proof's ath is not the hash of this access token")
        return DPoPProof(jkt=jkt, jti=jti, htm=htm, htu=htu, iat=float(iat), alg=alg, nonce=nonce)

    def __repr__(self) -> str:
        return f"DPoPVerifier(algorithms={list(self._algs)!r}, max_age={self._max_age!r})"


# -- making proofs (clients) ----------------------------------------------------------------

# RFC 7638 §3.2: the required members of each key type (all a proof's jwk needs).
_PUBLIC_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}


def make_proof(
    key: Key,
    *,
    method: str,
    url: str,
    now: float,
    access_token: str | None = None,
    nonce: str | None = None,
) -> str:
    """A DPoP proof signed by ``key`` for a ``method`` request to ``url`` (RFC 9449 §4.2).

    ``htu`` is ``url`` without query and fragment; ``jti`` 128 random bits; ``ath``
    the hash of ``access_token`` when given; ``nonce`` the server's, when it asked.

    :raises ConfigurationError: when ``key`` is not an asymmetric signing key with
        its private part.
    """
    if key.alg not in DPOP_ALGORITHMS or not key.can_sign:
        raise ConfigurationError("a DPoP key is a private ES256, EdDSA, PS256 or RS256 key")
    public = key.public_jwk() or {}
    jwk = {name: public[name] for name in _PUBLIC_MEMBERS[public["kty"]]}
    claims: dict[str, Any] = {
        "jti": secrets.token_urlsafe(16),
        "htm": method,
        "htu": url.partition("#")[0].partition("?")[0],
        "iat": int(now),
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    return sign_compact(dumps(claims), key, header={"typ": "dpop+jwt", "jwk": jwk})
