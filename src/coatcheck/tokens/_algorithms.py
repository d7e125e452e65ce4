"""The JOSE algorithms coatcheck supports, each with the key it needs, and those it refuses.

One table read by :mod:`.keys` (binding a key to an algorithm), :mod:`.jws` and
:mod:`.jwe` (what a token may name), the CLI and the docs, so the supported set is
stated once. Sources: RFC 7518 §3 (JWS), §4 and §5 (JWE), RFC 8037 §3 (OKP keys, EdDSA,
ECDH-ES over X25519) and RFC 9864 (the fully-specified ``Ed25519`` and ``Ed448``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CONTENT_ENCRYPTIONS",
    "ECDH_CURVES",
    "ENCRYPTION",
    "REFUSED",
    "SIGNING",
    "Spec",
    "refusal",
]


@dataclass(frozen=True, slots=True)
class Spec:
    """What one algorithm needs from its key."""

    name: str
    use: Literal["sig", "enc"]
    #: Key types (``kty``) the algorithm takes.
    ktys: tuple[str, ...]
    #: Curves (``crv``) for EC and OKP keys; empty for the others.
    curves: tuple[str, ...] = ()
    #: Symmetric keys: the exact sizes in bytes allowed, or for HMAC the minimum.
    secret_sizes: tuple[int, ...] = ()
    #: The hash of HMAC, RSA and ECDSA signatures and of RSA-OAEP (``hashlib`` name).
    hash: str = ""


def _sig(name: str, ktys: tuple[str, ...], **extra: object) -> Spec:
    return Spec(name, "sig", ktys, **extra)  # type: ignore[arg-type]


def _enc(name: str, ktys: tuple[str, ...], **extra: object) -> Spec:
    return Spec(name, "enc", ktys, **extra)  # type: ignore[arg-type]


_HASH = {"256": "sha256", "384": "sha384", "512": "sha512"}
_EC_CURVES = {"256": "P-256", "384": "P-384", "512": "P-521"}
#: Curves ECDH-ES runs on (RFC 7518 §4.6, RFC 8037 §3.2).
ECDH_CURVES = ("P-256", "P-384", "P-521", "X25519")

#: JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1, RFC 9864 §2).
SIGNING: dict[str, Spec] = {
    **{
        f"HS{bits}": _sig(f"HS{bits}", ("oct",), secret_sizes=(int(bits) // 8,), hash=digest)
        for bits, digest in _HASH.items()
    },
    **{f"RS{bits}": _sig(f"RS{bits}", ("RSA",), hash=digest) for bits, digest in _HASH.items()},
    **{f"PS{bits}": _sig(f"PS{bits}", ("RSA",), hash=digest) for bits, digest in _HASH.items()},
    **{
        f"ES{bits}": _sig(f"ES{bits}", ("EC",), curves=(_EC_CURVES[bits],), hash=digest)
        for bits, digest in _HASH.items()
    },
    # The polymorphic name of RFC 8037, deprecated by RFC 9864 but still what most
    # issuers send: verified, never chosen by default.
    "EdDSA": _sig("EdDSA", ("OKP",), curves=("Ed25519", "Ed448")),
    "Ed25519": _sig("Ed25519", ("OKP",), curves=("Ed25519",)),
    "Ed448": _sig("Ed448", ("OKP",), curves=("Ed448",)),
}

#: Content encryptions (RFC 7518 §5.1) and their key sizes in bytes.
CONTENT_ENCRYPTIONS: dict[str, int] = {
    "A128CBC-HS256": 32,
    "A192CBC-HS384": 48,
    "A256CBC-HS512": 64,
    "A128GCM": 16,
    "A192GCM": 24,
    "A256GCM": 32,
}

#: JWE key-management algorithms (RFC 7518 §4.1; RSA1_5 and PBES2 are refused, below).
ENCRYPTION: dict[str, Spec] = {
    "dir": _enc("dir", ("oct",), secret_sizes=tuple(sorted(set(CONTENT_ENCRYPTIONS.values())))),
    "RSA-OAEP": _enc("RSA-OAEP", ("RSA",), hash="sha1"),
    "RSA-OAEP-256": _enc("RSA-OAEP-256", ("RSA",), hash="sha256"),
    "ECDH-ES": _enc("ECDH-ES", ("EC", "OKP"), curves=ECDH_CURVES),
}
for _bits in ("128", "192", "256"):
    _size = int(_bits) // 8
    ENCRYPTION[f"A{_bits}KW"] = _enc(f"A{_bits}KW", ("oct",), secret_sizes=(_size,))
    ENCRYPTION[f"A{_bits}GCMKW"] = _enc(f"A{_bits}GCMKW", ("oct",), secret_sizes=(_size,))
    ENCRYPTION[f"ECDH-ES+A{_bits}KW"] = _enc(
        f"ECDH-ES+A{_bits}KW", ("EC", "OKP"), curves=ECDH_CURVES
    )

#: Algorithms refused by design, with the reason (shown in errors and the docs).
REFUSED: dict[str, str] = {
    "none": "an unsecured JWS proves nothing (RFC 8725 §3.2)",
    "RSA1_5": (
        "RSAES-PKCS1-v1_5 decryption leaks a padding oracle (Bleichenbacher's "
        "million-message attack, RFC 8725 §3.2); use RSA-OAEP-256"
    ),
    "PBES2-HS256+A128KW": "password-based: the token chooses the PBKDF2 work (p2c), a "
    "denial-of-service lever, and passwords are not keys; use a random A128KW key",
    "PBES2-HS384+A192KW": "password-based: the token chooses the PBKDF2 work (p2c), a "
    "denial-of-service lever, and passwords are not keys; use a random A192KW key",
    "PBES2-HS512+A256KW": "password-based: the token chooses the PBKDF2 work (p2c), a "
    "denial-of-service lever, and passwords are not keys; use a random A256KW key",
}


def refusal(name: str) -> str:
    """Why ``name`` cannot be used: refused by design, or simply unknown."""
    # 'none' in any spelling (RFC 8725 §3.1 warns of case games).
    reason = REFUSED.get("none" if name.lower() == "none" else name)
    if reason is not None:
        return f"{name!r} is refused by design: {reason}"
    return f"{name!r} is not a supported algorithm"
