"""Compact JWE (RFC 7516) through joserfc, with coatcheck's strict framing around it.

Every key-management algorithm of RFC 7518 §4.1 but RSA1_5 and PBES2 (refused by design,
see :data:`~coatcheck.tokens._algorithms.REFUSED`): ``dir``, ``A128KW``/``A192KW``/
``A256KW``, ``A128GCMKW``/``A192GCMKW``/``A256GCMKW``, ``ECDH-ES`` and ``ECDH-ES+A*KW`` on
P-256, P-384, P-521 and X25519 (RFC 8037 §3.2), ``RSA-OAEP`` and ``RSA-OAEP-256``; every
content encryption of §5.1 (A128/192/256GCM, A128CBC-HS256, A192CBC-HS384,
A256CBC-HS512). The algorithms a decrypter accepts are pinned like the JWS ones.

Before joserfc sees a token, the protected header is vetted with the same strict parser
as JWS; an ECDH-ES ephemeral key must be a public key on the recipient key's curve (an
off-curve or low-order point is the invalid-curve attack); ``zip`` is refused unless the
application turns it on, and then inflates to a bounded size. coatcheck itself never
compresses (RFC 8725 §3.6: compression before encryption leaks plaintext length).
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric import x25519
from joserfc import jwe
from joserfc.errors import UnsupportedAlgorithmError
from joserfc.jwa import JWEZipModel
from joserfc.jwe import JWERegistry
from joserfc.jwk import OctKey, OKPKey

from ..clock import Clock, SystemClock
from ..errors import (
    ConfigurationError,
    DecryptionFailed,
    InputError,
    InvalidEphemeralKey,
    KeyRefused,
    MalformedToken,
    TokenError,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
)
from ..policies import ClaimsPolicy
from ._algorithms import CONTENT_ENCRYPTIONS, refusal
from ._codec import MAX_TOKEN_BYTES, b64url_decode, loads_object
from ._jwk import PRIVATE_MEMBERS, b64_member, check_ec_point
from .claims import validate_claims
from .jws import MAX_HEADER_BYTES, REFUSED_HEADERS
from .jwt import _token_payload
from .keys import ENCRYPTION_ALGORITHMS, Key, KeyRing

__all__ = [
    "CONTENT_ENCRYPTIONS",
    "MAX_DECOMPRESSED_BYTES",
    "CompactDecrypter",
    "DecryptedJWE",
    "decrypt_compact",
    "decrypt_jwt",
    "encrypt_compact",
    "encrypt_jwt",
]

#: The default bound on a ``zip: DEF`` plaintext once inflated (when ``allow_zip``).
MAX_DECOMPRESSED_BYTES = 65536
_REFUSED = REFUSED_HEADERS | {"zip"}
_ECDH = ("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW")
Keys = KeyRing | Key | Sequence[Key]


class DecryptedJWE(NamedTuple):
    """A decrypted compact JWE: its protected header, plaintext bytes and the key used."""

    header: dict[str, Any]
    plaintext: bytes
    key: Key


def _check_encryptions(encryptions: Collection[str] | None) -> frozenset[str]:
    if encryptions is None:
        return frozenset(CONTENT_ENCRYPTIONS)
    if isinstance(encryptions, str):
        raise ConfigurationError("encryptions is a collection of names, not one string")
    chosen = frozenset(encryptions)
    unknown = chosen - CONTENT_ENCRYPTIONS.keys()
    if unknown:
        raise ConfigurationError(
            f"unsupported content encryptions: {', '.join(sorted(unknown, key=str))}; choose "
            f"from {', '.join(CONTENT_ENCRYPTIONS)}"
        )
    if not chosen:
        raise ConfigurationError("no content encryption is allowed")
    return chosen


def _dir_fits(key: Key, enc: str) -> bool:
    jwk = key.jose_key
    return isinstance(jwk, OctKey) and len(jwk.raw_value) == CONTENT_ENCRYPTIONS[enc]


class _BoundedDeflate(JWEZipModel):
    """``zip: DEF`` (RFC 7516 §4.1.3: raw DEFLATE, RFC 1951) that inflates at most
    ``limit`` bytes: a few kilobytes of token must not become gigabytes of memory."""

    name = "DEF"
    description = "DEFLATE, bounded"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def compress(self, s: bytes) -> bytes:  # pragma: no cover - coatcheck never compresses
        raise ConfigurationError("coatcheck does not compress before encrypting (RFC 8725 §3.6)")

    def decompress(self, s: bytes) -> bytes:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            out = inflater.decompress(s, self.limit + 1)
        except zlib.error:
            raise MalformedToken("the compressed plaintext is not valid DEFLATE") from None
        if len(out) > self.limit or inflater.unconsumed_tail:
            raise MalformedToken(f"the plaintext inflates to more than {self.limit} bytes")
        if not inflater.eof or inflater.unused_data:
            raise MalformedToken("the compressed plaintext is not one complete DEFLATE stream")
        return out


class _Registry(JWERegistry):
    """joserfc's registry pinned to one algorithm pair and coatcheck's ``zip`` policy.

    Unknown header parameters are ignored, as RFC 7516 §4 asks; the dangerous ones never
    get here (``crit``, ``jku``, ``jwk`` ... are refused first).
    """

    def __init__(self, algorithms: list[str], zip_model: _BoundedDeflate | None) -> None:
        super().__init__(algorithms=algorithms, strict_check_header=False)
        self._zip = zip_model

    def get_zip(self, name: str) -> Any:
        if self._zip is None or name != "DEF":
            raise UnsupportedAlgorithmError(f"zip {name!r} is not allowed")
        return self._zip


def _newest_encryption_key(keys: Keys) -> Key:
    key = KeyRing.coerce(keys).signing_key(encryption=True)
    if not key.can_encrypt:
        raise ConfigurationError(f"key {key.kid!r}: its key_ops do not allow encrypting")
    return key


def encrypt_compact(
    plaintext: bytes,
    keys: Keys,
    *,
    enc: str = "A256GCM",
    header: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWE of ``plaintext`` for the ring's newest JWE key (a public key is
    enough for RSA-OAEP and ECDH-ES). ``alg``, ``enc`` and ``kid`` come from the key and
    ``enc``; ``header`` adds parameters such as ``typ`` or ``cty``.

    :raises ConfigurationError: no JWE key, an unknown ``enc``, a ``dir`` key whose size
        does not fit ``enc``, or a refused header parameter (``zip``, ``crit``, ...).
    :raises InputError: when the token would exceed the size coatcheck accepts.
    """
    key = _newest_encryption_key(keys)
    if enc not in CONTENT_ENCRYPTIONS:
        raise ConfigurationError(
            f"unsupported content encryption {enc!r}; choose from {', '.join(CONTENT_ENCRYPTIONS)}"
        )
    if key.alg == "dir" and not _dir_fits(key, enc):
        raise ConfigurationError(
            f"a 'dir' key for {enc} must be {CONTENT_ENCRYPTIONS[enc]} bytes"
        )
    extra = dict(header or {})
    refused = _REFUSED.intersection(extra)
    if refused:
        raise ConfigurationError(f"refused header parameter: {', '.join(sorted(refused))}")
    protected = {**extra, "alg": key.alg, "enc": enc, "kid": key.kid}
    registry = _Registry([key.alg, enc], None)
    token: str = jwe.encrypt_compact(protected, plaintext, key.jose_key, registry=registry)
    if len(token) > MAX_TOKEN_BYTES:
        raise InputError(f"the token would exceed {MAX_TOKEN_BYTES} bytes")
    return token


class CompactDecrypter:
    """Decrypts compact JWE with a ring: the token's ``alg`` must be allowed and be the
    algorithm of the key its ``kid`` names, its ``enc`` must be allowed.

    ``algorithms`` are the key-management algorithms (default: those of the ring's keys
    that can decrypt), ``encryptions`` the content encryptions (default: all six).
    ``zip: DEF`` is refused unless ``allow_zip``; then the plaintext may inflate to
    ``max_decompressed`` bytes. A missing ``kid`` is accepted when exactly one key of the
    token's algorithm exists.

    :raises ConfigurationError: for unknown or refused algorithms, nothing allowed, or no
        key that can decrypt.
    """

    __slots__ = ("_algorithms", "_encryptions", "_refused", "_ring", "_zip")

    def __init__(
        self,
        keys: Keys,
        *,
        algorithms: Collection[str] | None = None,
        encryptions: Collection[str] | None = None,
        allow_zip: bool = False,
        max_decompressed: int = MAX_DECOMPRESSED_BYTES,
    ) -> None:
        ring = KeyRing.coerce(keys)
        usable = frozenset(k.alg for k in ring if k.can_decrypt)
        if algorithms is None:
            allowed = usable
        else:
            if isinstance(algorithms, str):
                raise ConfigurationError("algorithms is a collection of names, not one string")
            allowed = frozenset(algorithms)
            unknown = allowed - ENCRYPTION_ALGORITHMS
            if unknown:
                reasons = "; ".join(refusal(str(name)) for name in sorted(unknown, key=str))
                raise ConfigurationError(f"unsupported JWE algorithms: {reasons}")
        if not allowed:
            raise ConfigurationError(
                "no JWE algorithm is allowed: the ring needs a key that can decrypt (a "
                "secret or a private key bound to a JWE algorithm)"
            )
        if max_decompressed < 1:
            raise ConfigurationError("max_decompressed must be positive")
        self._ring = ring
        self._algorithms = allowed
        self._encryptions = _check_encryptions(encryptions)
        self._zip = _BoundedDeflate(max_decompressed) if allow_zip else None
        self._refused = REFUSED_HEADERS if allow_zip else _REFUSED

    @property
    def algorithms(self) -> frozenset[str]:
        """The allowed key-management algorithms."""
        return self._algorithms

    @property
    def encryptions(self) -> frozenset[str]:
        """The allowed content encryptions."""
        return self._encryptions

    def decrypt(self, token: str) -> DecryptedJWE:
        """Decrypt ``token`` and return its header, plaintext bytes and key.

        :raises MalformedToken: size, segments, base64url, header JSON, or a ``zip``
            plaintext that inflates past the limit.
        :raises UnsupportedHeader: ``zip`` (unless allowed), ``crit``, ``jku``, ``jwk`` ...
        :raises UnsupportedAlgorithm: an ``alg`` or ``enc`` not allowed or not the key's.
        :raises UnknownKey: no key for the ``kid``.
        :raises InvalidEphemeralKey: an ECDH-ES ``epk`` off the key's curve or of low order.
        :raises DecryptionFailed: the token does not decrypt with the key.
        """
        if type(token) is not str:
            raise MalformedToken("a token is text")
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken("a token is ASCII") from None
        if len(raw) > MAX_TOKEN_BYTES:
            raise MalformedToken("token too large")
        segments = raw.split(b".")
        if len(segments) != 5:
            raise MalformedToken("a compact JWE has five segments")
        if len(segments[0]) > MAX_HEADER_BYTES:
            raise MalformedToken("header too large")
        header = loads_object(b64url_decode(segments[0]))
        for segment in segments[1:]:
            b64url_decode(segment)
        refused = self._refused.intersection(header)
        if refused:
            raise UnsupportedHeader(f"refused header parameter: {', '.join(sorted(refused))}")
        if "zip" in header and header["zip"] != "DEF":
            raise UnsupportedHeader("the only compression is 'DEF'")
        key = self._select_key(header)
        enc = header["enc"]
        if key.alg == "dir" and not _dir_fits(key, enc):
            # A dir key *is* the content key: its size fixes the encryptions it serves.
            raise UnsupportedAlgorithm("this 'dir' key's size does not fit this encryption")
        if key.alg in _ECDH:
            _check_epk(header.get("epk"), key)
        registry = _Registry([key.alg, enc], self._zip)
        try:
            plaintext = jwe.decrypt_compact(raw, key.jose_key, registry=registry).plaintext
        except TokenError:
            raise
        # joserfc and cryptography raise many types on hostile input (JoseError,
        # ValueError, InvalidTag, binascii.Error); a token that does not decrypt is all
        # they mean here.
        except Exception as exc:
            raise DecryptionFailed("the token does not decrypt with this key") from exc
        if plaintext is None:  # pragma: no cover - joserfc always sets it on success
            raise DecryptionFailed("the token does not decrypt with this key")
        return DecryptedJWE(header, plaintext, key)

    def _select_key(self, header: Mapping[str, Any]) -> Key:
        alg, enc, kid = header.get("alg"), header.get("enc"), header.get("kid")
        if type(alg) is not str or type(enc) is not str:
            raise MalformedToken("the header needs 'alg' and 'enc' strings")
        if alg not in self._algorithms:
            raise UnsupportedAlgorithm("key-management algorithm not allowed")
        if enc not in self._encryptions:
            raise UnsupportedAlgorithm("content encryption not allowed")
        if kid is None:
            candidates = [k for k in self._ring if k.alg == alg and k.can_decrypt]
            if len(candidates) != 1:
                raise UnknownKey("no kid and no single key for this algorithm")
            return candidates[0]
        if type(kid) is not str:
            raise MalformedToken("'kid' must be a string")
        key = self._ring.get(kid)
        if key is None:
            raise UnknownKey("no key with this kid")
        if not key.is_encryption or key.alg != alg:
            raise UnsupportedAlgorithm("the algorithm is not the one this key is bound to")
        if not key.can_decrypt:
            raise DecryptionFailed(
                "the key with this kid cannot decrypt (a public key, or key_ops forbid it)"
            )
        return key


def _check_epk(epk: object, key: Key) -> None:
    """The ephemeral public key of ECDH-ES must be a public key on the recipient key's
    curve (RFC 7518 §4.6.1.1); otherwise the shared secret leaks bits of the private key
    (the invalid-curve attack, as in CVE-2017-16007 of node-jose).

    :raises InvalidEphemeralKey: for anything else.
    """
    if type(epk) is not dict:
        raise InvalidEphemeralKey("ECDH-ES needs an 'epk' object in the header")
    recipient = key.jose_key
    if epk.get("kty") != recipient.key_type or epk.get("crv") != key.curve:
        raise InvalidEphemeralKey(f"the 'epk' is not a {key.curve} key like the recipient's")
    if PRIVATE_MEMBERS.intersection(epk):
        raise InvalidEphemeralKey("the 'epk' carries private key members")
    try:
        if isinstance(recipient, OKPKey):
            public = x25519.X25519PublicKey.from_public_bytes(b64_member(epk, "x", None))
            private = recipient.private_key
            if isinstance(private, x25519.X25519PrivateKey):
                # RFC 7748 §6.1: a low-order point makes the shared secret all zeros,
                # which cryptography refuses; find it here to name it.
                private.exchange(public)
        else:
            check_ec_point(epk, str(key.curve), None)
    except (KeyRefused, ValueError) as exc:
        raise InvalidEphemeralKey(
            f"the 'epk' is not a valid {key.curve} public key (off the curve, or of low "
            "order): the invalid-curve attack"
        ) from exc


def encrypt_jwt(
    claims: Mapping[str, Any],
    keys: Keys,
    *,
    enc: str = "A256GCM",
    ttl: float | None = None,
    policy: ClaimsPolicy = ClaimsPolicy(),  # noqa: B008 - frozen
    clock: Clock = SystemClock(),  # noqa: B008 - stateless
) -> str:
    """An encrypted JWT of ``claims`` plus ``iat``, ``exp``, ``jti`` and the policy's
    ``iss``/``aud``, for the ring's newest JWE key.

    :raises ConfigurationError: no JWE key, an unknown ``enc``, or a ``dir`` key whose
        size does not fit ``enc``.
    :raises InputError: claims that are not JSON-serialisable, or a token too large.
    """
    ttl_seconds = policy.ttl.total_seconds() if ttl is None else ttl
    body = _token_payload(claims, policy, int(clock.now()), ttl_seconds)
    return encrypt_compact(body, keys, enc=enc, header={"typ": "JWT"})


def decrypt_compact(
    token: str,
    keys: Keys,
    *,
    algorithms: Collection[str] | None = None,
    encryptions: Collection[str] | None = None,
    allow_zip: bool = False,
    max_decompressed: int = MAX_DECOMPRESSED_BYTES,
) -> DecryptedJWE:
    """Decrypt any compact JWE and return its header and plaintext bytes.

    The general JOSE decrypt, next to the JWT claim-set path of :func:`decrypt_jwt`; build
    a :class:`CompactDecrypter` once instead when decrypting many tokens.

    :raises ConfigurationError: as :class:`CompactDecrypter`.
    :raises TokenError: as :meth:`CompactDecrypter.decrypt`.
    """
    decrypter = CompactDecrypter(
        keys,
        algorithms=algorithms,
        encryptions=encryptions,
        allow_zip=allow_zip,
        max_decompressed=max_decompressed,
    )
    return decrypter.decrypt(token)


def decrypt_jwt(
    token: str,
    keys: Keys,
    *,
    algorithms: Collection[str] | None = None,
    encryptions: Collection[str] | None = None,
    allow_zip: bool = False,
    max_decompressed: int = MAX_DECOMPRESSED_BYTES,
    policy: ClaimsPolicy = ClaimsPolicy(),  # noqa: B008 - frozen
    clock: Clock = SystemClock(),  # noqa: B008 - stateless
) -> dict[str, Any]:
    """The verified claims of an encrypted JWT.

    :raises ConfigurationError: as :class:`CompactDecrypter`.
    :raises TokenError: as :meth:`CompactDecrypter.decrypt`, or a ClaimError (see
        :func:`validate_claims`).
    """
    decrypted = decrypt_compact(
        token,
        keys,
        algorithms=algorithms,
        encryptions=encryptions,
        allow_zip=allow_zip,
        max_decompressed=max_decompressed,
    )
    claims = loads_object(decrypted.plaintext)
    validate_claims(claims, policy, clock.now())
    return claims
