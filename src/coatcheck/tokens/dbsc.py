"""DBSC proofs: the ``dbsc+jwt`` a browser signs with its device key.

Device Bound Session Credentials (W3C ``dbsc`` draft, "DBSC Proof JWT Syntax"), as
Chromium 145+ sends it in the ``Secure-Session-Response`` header:

* at **registration** the header is ``{"alg", "typ": "dbsc+jwt", "jwk"}`` with the new
  device key's public JWK, and the payload ``{"jti": <challenge>}`` (plus
  ``"authorization"`` when the registration header carried one);
* at **refresh** the header is ``{"alg", "typ": "dbsc+jwt"}`` and the payload
  ``{"jti": <challenge>}``: it is verified with the key kept from registration.

There is no ``iat``, ``aud`` or ``exp``: freshness comes from the server's challenge
alone (see :mod:`coatcheck.sessions.dbsc`). Only ES256 and RS256 are accepted (the
draft's third value, ``none``, never is), and a ``jwk`` must be a public key: a P-256
point that lies on the curve, or an RSA key of 2048 to 4096 bits with a small odd
exponent. Nothing here does I/O; every refusal is an
:class:`~coatcheck.errors.InvalidDbscProof`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError, InvalidDbscProof, MalformedToken
from ._codec import b64url_decode, b64url_encode, dumps, loads_object
from .keys import Key

__all__ = [
    "DBSC_ALGORITHMS",
    "MAX_PROOF_BYTES",
    "DbscProof",
    "device_key",
    "make_proof",
    "public_members",
    "verify_refresh_proof",
    "verify_registration_proof",
]

#: The algorithms a device key may use (the draft lists ES256, RS256 and none).
DBSC_ALGORITHMS = frozenset({"ES256", "RS256"})
#: Proofs longer than this are refused unread: an RS256 registration proof with a
#: 4096-bit key is about 2.3 KB, an ES256 one about 450 bytes.
MAX_PROOF_BYTES = 4096
_MAX_HEADER_SEGMENT = 2048
_MAX_JTI = 512
_MAX_AUTHORIZATION = 2048
_MAX_RSA_BITS = 4096
# RFC 7515 §4.1.9: compared case-insensitively, the "application/" prefix optional.
_TYPES = frozenset({"dbsc+jwt", "application/dbsc+jwt"})
_KTY = {"ES256": "EC", "RS256": "RSA"}
# Members only a private or symmetric JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# Extensions we do not implement (RFC 7515 §4.1.11), keys named elsewhere, and an
# unencoded payload (RFC 7797): a proof carrying any of them is refused.
_REFUSED_HEADERS = frozenset({"crit", "jku", "x5u", "x5c", "b64"})


@dataclass(frozen=True, slots=True)
class DbscProof:
    """A proof whose signature verified.

    ``jti`` is the challenge it signs; ``jwk`` the device key's public members (only
    from a registration proof, else the stored key's), ``jkt`` their RFC 7638
    thumbprint, ``key`` the verify-only key itself.
    """

    jti: str
    alg: str
    jkt: str
    jwk: Mapping[str, str]
    key: Key = field(repr=False, compare=False)
    authorization: str | None = None


def _b64_member(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if type(value) is not str or len(value) > 1024:
        raise InvalidDbscProof(f"the device key's '{name}' is not a base64url string")
    try:
        return b64url_decode(value.encode("ascii"))
    except (UnicodeEncodeError, MalformedToken):
        raise InvalidDbscProof(f"the device key's '{name}' is not base64url") from None


def public_members(jwk: object, alg: str) -> dict[str, str]:
    """The members that define the public key (RFC 7638 §3.2) of a device key's JWK.

    :raises InvalidDbscProof: not a JSON object, a private or symmetric key, another
        key type than ``alg`` needs, or a member missing.
    """
    if not isinstance(jwk, Mapping):
        raise InvalidDbscProof("the device key (jwk) is not a JSON object")
    if _PRIVATE_MEMBERS.intersection(jwk):
        # A client that sends its private key has leaked it: the binding would be void.
        raise InvalidDbscProof("the device key (jwk) carries private members")
    kty = _KTY.get(alg)
    if kty is None or jwk.get("kty") != kty:
        raise InvalidDbscProof(f"{alg} needs a {kty or 'known'} key, not {jwk.get('kty')!r}")
    names = ("crv", "kty", "x", "y") if kty == "EC" else ("e", "kty", "n")
    members: dict[str, str] = {}
    for name in names:
        value = jwk.get(name)
        if type(value) is not str:
            raise InvalidDbscProof(f"the device key (jwk) has no '{name}' string")
        members[name] = value
    return members


def device_key(jwk: object, alg: str) -> Key:
    """A verify-only :class:`~coatcheck.tokens.Key` for a device's public JWK.

    The checks every key from outside gets (:meth:`Key.from_public_jwk
    <coatcheck.tokens.Key.from_public_jwk>`: public members only, a P-256 point on its
    curve, an RSA key that is not weak or ROCA-vulnerable), and DBSC's own: P-256 for
    ES256, full-length coordinates, and RSA moduli of at most 4096 bits with a small
    exponent (a longer one only costs the server time).

    :raises InvalidDbscProof: for anything that is not such a public key.
    """
    if alg not in DBSC_ALGORITHMS:
        raise InvalidDbscProof("the device key's algorithm is not ES256 or RS256")
    members = public_members(jwk, alg)
    if alg == "ES256":
        if members["crv"] != "P-256":
            raise InvalidDbscProof("ES256 needs a P-256 key")
        x, y = _b64_member(members, "x"), _b64_member(members, "y")
        if len(x) != 32 or len(y) != 32:  # RFC 7518 §6.2.1.2: full length
            raise InvalidDbscProof("the P-256 coordinates are not 32 bytes each")
    else:
        n, e = _b64_member(members, "n"), _b64_member(members, "e")
        if not n or not e or n[0] == 0 or e[0] == 0 or len(e) > 4:
            # RFC 7518 §6.3.1: minimal big-endian integers; a huge exponent costs us.
            raise InvalidDbscProof("the RSA key's n or e is not a minimal integer")
        if int.from_bytes(n, "big").bit_length() > _MAX_RSA_BITS:
            raise InvalidDbscProof("RSA device keys must have 2048 to 4096 bits")
    try:
        return Key.from_public_jwk(members, alg=alg)
    except ConfigurationError as exc:
        # Off the curve, too short, an even exponent, ROCA ...: a KeyRefused.
        raise InvalidDbscProof("the device key (jwk) is not a valid public key") from exc


def _split(token: object) -> tuple[bytes, bytes, bytes, dict[str, Any]]:
    """(signing input, payload segment, signature, header) of a compact JWS."""
    if type(token) is not str:
        raise InvalidDbscProof("a DBSC proof is text")
    if len(token) > MAX_PROOF_BYTES:
        raise InvalidDbscProof("the DBSC proof is too large")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidDbscProof("a DBSC proof is ASCII") from None
    if raw.count(b".") != 2:
        raise InvalidDbscProof("a DBSC proof is a compact JWS of three segments")
    head, payload, signature = raw.split(b".")
    if not head or not payload or not signature or len(head) > _MAX_HEADER_SEGMENT:
        raise InvalidDbscProof("a DBSC proof segment is empty or too large")
    try:
        header = loads_object(b64url_decode(head))
    except MalformedToken:
        raise InvalidDbscProof("the DBSC proof header is not base64url JSON") from None
    refused = _REFUSED_HEADERS.intersection(header)
    if refused:
        raise InvalidDbscProof(f"refused header parameter: {', '.join(sorted(refused))}")
    typ = header.get("typ")
    if type(typ) is not str or typ.lower() not in _TYPES:
        raise InvalidDbscProof("the DBSC proof's typ is not dbsc+jwt")
    return raw[: len(head) + 1 + len(payload)], payload, signature, header


def _finish(
    signing_input: bytes, payload_seg: bytes, signature: bytes, key: Key, alg: str,
    jwk: Mapping[str, str],
) -> DbscProof:  # fmt: skip
    try:
        sig = b64url_decode(signature)
    except MalformedToken:
        raise InvalidDbscProof("the DBSC proof signature is not base64url") from None
    if not key.verify(signing_input, sig):
        raise InvalidDbscProof("the DBSC proof signature does not verify with the device key")
    # The payload is read only after the signature vouched for it.
    try:
        claims = loads_object(b64url_decode(payload_seg))
    except MalformedToken:
        raise InvalidDbscProof("the DBSC proof payload is not base64url JSON") from None
    jti = claims.get("jti")
    if type(jti) is not str or not jti or len(jti) > _MAX_JTI:
        raise InvalidDbscProof("the DBSC proof has no jti (challenge) string")
    authorization = claims.get("authorization")
    if authorization is not None and (
        type(authorization) is not str or len(authorization) > _MAX_AUTHORIZATION
    ):
        raise InvalidDbscProof("the DBSC proof's authorization is not a string")
    return DbscProof(
        jti=jti, alg=alg, jkt=key.thumbprint(), jwk=jwk, key=key, authorization=authorization
    )


def verify_registration_proof(
    token: object, *, algorithms: Collection[str] = DBSC_ALGORITHMS
) -> DbscProof:
    """Check a registration proof: signed by the public key its header carries.

    The caller then checks ``jti`` against the challenge it issued (and
    ``authorization``, when it sent one).

    :raises InvalidDbscProof: malformed, another ``typ``, an algorithm not in
        ``algorithms``, no public ``jwk``, or a signature that does not verify.
    """
    signing_input, payload, signature, header = _split(token)
    alg = header.get("alg")
    if type(alg) is not str or alg not in algorithms or alg not in DBSC_ALGORITHMS:
        raise InvalidDbscProof("the DBSC proof's algorithm is not allowed")
    jwk = header.get("jwk")
    key = device_key(jwk, alg)
    return _finish(signing_input, payload, signature, key, alg, public_members(jwk, alg))


def verify_refresh_proof(token: object, *, key: Key, jwk: Mapping[str, str]) -> DbscProof:
    """Check a refresh proof against the device ``key`` kept from registration.

    ``jwk`` is that key's public members (returned in the proof). A ``jwk`` in the
    proof's own header is not used: the stored key decides.

    :raises InvalidDbscProof: malformed, another ``typ``, another algorithm than the
        key's, or a signature that does not verify.
    """
    signing_input, payload, signature, header = _split(token)
    if header.get("alg") != key.alg:
        raise InvalidDbscProof("the DBSC proof's algorithm is not the device key's")
    return _finish(signing_input, payload, signature, key, key.alg, jwk)


def make_proof(
    key: Key,
    challenge: str | None,
    *,
    registration: bool,
    authorization: str | None = None,
) -> str:
    """A DBSC proof signed by ``key`` (a private ES256 or RS256 key): the client side.

    Registration proofs carry the public ``jwk``; refresh proofs do not. For tests,
    the demo and command-line walk-throughs; browsers make their own.

    :raises ConfigurationError: when the key cannot sign or is not ES256/RS256.
    """
    if key.alg not in DBSC_ALGORITHMS:
        raise ConfigurationError("a DBSC device key is ES256 or RS256")
    header: dict[str, Any] = {"alg": key.alg, "typ": "dbsc+jwt"}
    if registration:
        header["jwk"] = public_members(key.public_jwk(), key.alg)
    claims: dict[str, Any] = {}
    if challenge is not None:
        claims["jti"] = challenge
    if authorization is not None:
        claims["authorization"] = authorization
    signing_input = b64url_encode(dumps(header)) + b"." + b64url_encode(dumps(claims))
    return (signing_input + b"." + b64url_encode(key.sign(signing_input))).decode("ascii")
