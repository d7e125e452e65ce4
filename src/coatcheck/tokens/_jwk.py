"""The checks a key passes before coatcheck binds it to an algorithm.

JWK members and key objects are vetted here: ``use`` / ``key_ops`` against the algorithm
(RFC 7517 §4.2, §4.3), RSA strength (size, exponent, the ROCA fingerprint), EC points on
their curve, OKP private and public halves that belong together. Every refusal is a
:class:`~coatcheck.errors.KeyRefused` subclass whose message names the rule broken.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..errors import (
    KeyUseConflict,
    MalformedKey,
    NotAPublicKey,
    PointNotOnCurve,
    VulnerableKey,
    WeakKey,
)
from ._algorithms import Spec
from ._roca import has_roca_fingerprint

__all__ = [
    "EC_CURVES",
    "MIN_RSA_BITS",
    "PRIVATE_MEMBERS",
    "b64_member",
    "check_ec_point",
    "check_okp_halves",
    "check_public_only",
    "check_rsa",
    "check_rsa_exponent_member",
    "infer_alg",
    "key_operations",
    "named",
    "raw_public",
]

MIN_RSA_BITS = 2048
#: JWK members that carry secret or private material (RFC 7518 §6.2.2, §6.3.2, §6.4;
#: RFC 8037 §2).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: EC curves by JWK name, with ``cryptography``'s curve and the coordinate size in bytes
#: (RFC 7518 §6.2.1.2: x and y are always the full size).
EC_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
# RFC 7517 §4.3 values, grouped by the use (§4.2) they belong to.
_SIG_OPS = frozenset({"sign", "verify"})
_ENC_OPS = frozenset({"encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits"})
# What each of coatcheck's four operations needs to find in key_ops.
_GRANTS = {
    "sign": frozenset({"sign"}),
    "verify": frozenset({"verify"}),
    "encrypt": frozenset({"encrypt", "wrapKey", "deriveKey", "deriveBits"}),
    "decrypt": frozenset({"decrypt", "unwrapKey", "deriveKey", "deriveBits"}),
}
_OPERATIONS = {"sig": ("sign", "verify"), "enc": ("encrypt", "decrypt")}
_TO_STD = bytes.maketrans(b"-_", b"+/")


def named(kid: str | None) -> str:
    """How a message names a key: by its kid when it has one."""
    return f"key {kid!r}" if kid else "the key"


def b64_member(data: Mapping[str, Any], name: str, kid: str | None) -> bytes:
    """A base64url JWK member, decoded (RFC 7515 §2: unpadded, URL-safe alphabet).

    :raises MalformedKey: when it is missing, not a string or not base64url.
    """
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedKey(f"{named(kid)}: the JWK member {name!r} must be a base64url string",
                           kid=kid)
    raw = value.encode("ascii", "replace")
    if b"=" in raw or b"+" in raw or b"/" in raw or len(raw) % 4 == 1:
        raise MalformedKey(f"{named(kid)}: {name!r} is not unpadded base64url", kid=kid)
    try:
        return binascii.a2b_base64(
            raw.translate(_TO_STD) + b"=" * (-len(raw) % 4), strict_mode=True
        )
    except binascii.Error:
        raise MalformedKey(f"{named(kid)}: {name!r} is not base64url", kid=kid) from None


def key_operations(data: Mapping[str, Any], spec: Spec, kid: str | None) -> frozenset[str]:
    """Which of sign / verify / encrypt / decrypt the JWK's ``use`` and ``key_ops`` allow
    for ``spec``'s algorithm; without either member, every operation of its kind.

    :raises KeyUseConflict: ``use`` or ``key_ops`` malformed, disagreeing with each other
        (RFC 7517 §4.3), or forbidding every operation of the algorithm.
    """
    who = named(kid)
    use = data.get("use")
    if use is not None and (not isinstance(use, str) or use not in _OPERATIONS):
        raise KeyUseConflict(f"{who}: 'use' must be \"sig\" or \"enc\", not {use!r}", kid=kid)
    ops = data.get("key_ops")
    listed: frozenset[str] | None = None
    if ops is not None:
        if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops):
            raise KeyUseConflict(f"{who}: 'key_ops' must be a list of strings", kid=kid)
        listed = frozenset(ops)
        if len(listed) != len(ops):
            raise KeyUseConflict(
                f"{who}: 'key_ops' lists an operation twice (RFC 7517 §4.3)", kid=kid
            )
        if use is not None and listed & (_ENC_OPS if use == "sig" else _SIG_OPS):
            raise KeyUseConflict(
                f"{who}: 'use' {use!r} and 'key_ops' {sorted(listed)} disagree (RFC 7517 §4.3)",
                kid=kid,
            )
    if use is not None and use != spec.use:
        purpose = "signatures" if use == "sig" else "encryption"
        raise KeyUseConflict(
            f"{who} is for {purpose} (use: {use!r}), so it cannot be bound to {spec.name}",
            kid=kid,
        )
    if listed is None:
        return frozenset(_OPERATIONS[spec.use])
    allowed = frozenset(op for op in _OPERATIONS[spec.use] if listed & _GRANTS[op])
    if not allowed:
        raise KeyUseConflict(
            f"{who}: its key_ops {sorted(listed)} allow no {spec.name} operation", kid=kid
        )
    return allowed


def check_public_only(data: Mapping[str, Any], kid: str | None, where: str) -> None:
    """Refuse a secret (``oct``) key or one with private members.

    :raises NotAPublicKey: naming the key and ``where`` it was found.
    """
    who = named(kid)
    if data.get("kty") == "oct":
        raise NotAPublicKey(
            f"{who} in {where} is a symmetric (oct) secret: publishing it would let anyone "
            "forge tokens; only public keys belong here",
            kid=kid,
        )
    found = sorted(PRIVATE_MEMBERS.intersection(data))
    if found:
        raise NotAPublicKey(
            f"{who} in {where} holds private key material ({', '.join(found)}): only "
            "public keys belong here; publish the public JWK instead",
            kid=kid,
        )


def check_rsa_exponent_member(data: Mapping[str, Any], kid: str | None) -> None:
    """Name a bad public exponent before ``cryptography`` refuses it without saying why.

    :raises MalformedKey: ``e`` not base64url. :raises WeakKey: ``e`` not odd and >= 3.
    """
    _check_exponent(int.from_bytes(b64_member(data, "e", kid), "big"), kid)


def _check_exponent(e: int, kid: str | None) -> None:
    # An even exponent is no RSA key, and e = 1 makes the signature the message itself.
    if e < 3 or not e & 1:
        raise WeakKey(
            f"{named(kid)}: the RSA public exponent must be an odd number of at least 3 "
            f"(65537 is usual), not {e}",
            kid=kid,
        )


def check_rsa(public: rsa.RSAPublicKey, kid: str | None) -> None:
    """Refuse moduli under 2048 bits, bad exponents and the ROCA fingerprint.

    :raises WeakKey: size or exponent. :raises VulnerableKey: the ROCA fingerprint.
    """
    numbers = public.public_numbers()
    if public.key_size < MIN_RSA_BITS:
        raise WeakKey(
            f"{named(kid)}: RSA keys must be at least {MIN_RSA_BITS} bits, "
            f"this one has {public.key_size}",
            kid=kid,
        )
    _check_exponent(numbers.e, kid)
    if has_roca_fingerprint(numbers.n):
        raise VulnerableKey(
            f"{named(kid)}: this RSA modulus has the ROCA fingerprint (CVE-2017-15361): it "
            "was made by a broken key generator (Infineon RSALib) and can be factored; "
            "make a new key on up-to-date firmware or software",
            kid=kid,
        )


def check_ec_point(data: Mapping[str, Any], crv: str, kid: str | None) -> None:
    """Refuse EC coordinates of the wrong size or that are not a point on ``crv``.

    :raises MalformedKey: sizes or encoding. :raises PointNotOnCurve: off the curve.
    """
    curve, size = EC_CURVES[crv]
    x, y = b64_member(data, "x", kid), b64_member(data, "y", kid)
    if len(x) != size or len(y) != size:
        raise MalformedKey(
            f"{named(kid)}: {crv} coordinates are {size} bytes each (RFC 7518 §6.2.1.2)",
            kid=kid,
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + x + y)
    except ValueError:
        raise PointNotOnCurve(
            f"{named(kid)}: (x, y) is not a point on {crv}; such a key invites the "
            "invalid-curve attack",
            kid=kid,
        ) from None


def check_okp_halves(data: Mapping[str, Any], derived_public: bytes, kid: str | None) -> None:
    """Refuse an OKP private key whose ``x`` is not the public half of its ``d``.

    :raises MalformedKey: when they differ.
    """
    if b64_member(data, "x", kid) != derived_public:
        raise MalformedKey(
            f"{named(kid)}: 'x' is not the public key of 'd'; tokens it signs would not "
            "verify against the key it publishes",
            kid=kid,
        )


def raw_public(public: Any) -> bytes:
    """The raw bytes of an OKP public key (RFC 8037 §2 'x')."""
    return bytes(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def infer_alg(data: Mapping[str, Any]) -> str | None:
    """The algorithm a JWK without ``alg`` is bound to, from its type, curve and use.

    RFC 9864: an Ed25519 key is bound to ``Ed25519`` (it verifies ``EdDSA`` tokens too).
    None when nothing fits.
    """
    kty, crv = data.get("kty"), data.get("crv")
    use = data.get("use")
    ops = data.get("key_ops")
    if use is None and isinstance(ops, list) and ops and not _SIG_OPS.intersection(ops):
        use = "enc"
    if kty == "OKP" and crv == "X25519":
        return "ECDH-ES"
    if use == "enc":
        return {"oct": "dir", "RSA": "RSA-OAEP-256", "EC": "ECDH-ES"}.get(str(kty))
    if kty == "oct":
        return "HS256"
    if kty == "RSA":
        return "RS256"
    if kty == "EC":
        return {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}.get(str(crv))
    if kty == "OKP" and crv in ("Ed25519", "Ed448"):
        return str(crv)
    return None
