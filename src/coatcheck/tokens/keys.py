"""JOSE keys bound to one algorithm and one ``kid``, and the :class:`KeyRing` that rotates them.

Each :class:`Key` is parsed once (through joserfc's JWK import) into ``cryptography``
key objects plus two prepared callables, ``sign`` and ``verify``, so the per-token path
never re-parses or re-vets a key. Binding a key to exactly one algorithm is what rules
out algorithm confusion (RFC 8725 §3.1): an RS256 public key can never act as an HMAC
secret because no token algorithm but RS256 ever reaches it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OctKey, OKPKey, RSAKey
from joserfc.jwk import Key as JoseKey

from ..errors import ConfigurationError
from ..secret import Secret
from ._primitives import (
    Signer,
    Verifier,
    eddsa_pair,
    es256_pair,
    hmac_pair,
    refuse_signing,
    rsa_pair,
)

__all__ = [
    "ENCRYPTION_ALGORITHMS",
    "SIGNING_ALGORITHMS",
    "Key",
    "KeyRing",
    "load_keys",
]

#: JWS algorithms a key can be bound to (RFC 7518 §3, RFC 8037 §3.1; ``Ed25519`` is the
#: fully-specified name of RFC 9864, ``EdDSA`` the older one most libraries still expect).
SIGNING_ALGORITHMS = frozenset(
    {"HS256", "HS384", "HS512", "ES256", "EdDSA", "Ed25519", "RS256", "PS256"}
)
#: JWE key-management algorithms a key can be bound to (RFC 7518 §4).
ENCRYPTION_ALGORITHMS = frozenset({"dir", "ECDH-ES", "RSA-OAEP-256"})

_HMAC = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}
_KTY = {
    "HS256": "oct",
    "HS384": "oct",
    "HS512": "oct",
    "dir": "oct",
    "ES256": "EC",
    "ECDH-ES": "EC",
    "EdDSA": "OKP",
    "Ed25519": "OKP",
    "RS256": "RSA",
    "PS256": "RSA",
    "RSA-OAEP-256": "RSA",
}
_MIN_RSA_BITS = 2048
_GENERATED_RSA_BITS = 2048
# A256GCM needs exactly 32 bytes, A256CBC-HS512 64 (RFC 7518 §5.2.5, §5.3).
_DIR_KEY_SIZES = (32, 64)
# Material that is a public key, not a secret (RFC 8725 §3.1; PyJWT CVE-2022-29217).
_KEY_MARKERS = (b"-----BEGIN", b"ssh-rsa", b"ssh-ed25519", b"ssh-dss", b"ecdsa-sha2-", b'"kty"')

def _looks_like_public_key(secret: bytes) -> bool:
    if any(marker in secret for marker in _KEY_MARKERS):
        return True
    try:
        serialization.load_der_public_key(secret)
    except (ValueError, TypeError):
        return False
    return True


def _check_alg(alg: str) -> None:
    if alg not in _KTY:
        raise ConfigurationError(
            f"unsupported key algorithm {alg!r}; choose one of {', '.join(sorted(_KTY))}"
        )


def _check_secret(secret: bytes, alg: str) -> None:
    if alg == "dir":
        if len(secret) not in _DIR_KEY_SIZES:
            raise ConfigurationError("a 'dir' key must be 32 bytes (A256GCM) or 64 (A256CBC-HS512)")
    else:
        need = hashlib.new(_HMAC[alg]).digest_size
        if len(secret) < need:
            # RFC 7518 §3.2: the key must be at least as long as the hash output.
            raise ConfigurationError(f"{alg} secrets must be at least {need} bytes")
    if _looks_like_public_key(secret):
        raise ConfigurationError("this looks like a public key or PEM, not an HMAC secret")


class Key:
    """One JWK bound to one algorithm and one ``kid``.

    Build it with :meth:`generate`, :meth:`from_secret`, :meth:`from_jwk` or
    :meth:`from_pem`; the ``kid`` defaults to the RFC 7638 thumbprint.

    :raises ConfigurationError: for an unknown algorithm, a key that does not fit its
        algorithm, an HMAC secret shorter than the hash or shaped like a public key,
        or an RSA key under 2048 bits.
    """

    __slots__ = ("_jwk", "_sign", "_verify", "alg", "kid")

    alg: str
    kid: str

    def __init__(self, jwk: JoseKey, *, alg: str, kid: str | None = None) -> None:
        _check_alg(alg)
        if jwk.key_type != _KTY[alg]:
            raise ConfigurationError(f"{alg} needs a {_KTY[alg]} key, not {jwk.key_type}")
        self._jwk = jwk
        self.alg = alg
        self._sign, self._verify = self._prepare(jwk, alg)
        if kid is None:
            kid = jwk.kid or jwk.thumbprint()
        if not isinstance(kid, str) or not kid:
            raise ConfigurationError("kid must be a non-empty string")
        self.kid = kid

    @staticmethod
    def _prepare(jwk: JoseKey, alg: str) -> tuple[Signer, Verifier]:
        if isinstance(jwk, OctKey):
            secret = jwk.raw_value
            _check_secret(secret, alg)
            if alg == "dir":
                return refuse_signing(), lambda data, signature: False
            return hmac_pair(secret, _HMAC[alg])
        if isinstance(jwk, ECKey):
            if jwk.curve_name != "P-256":
                raise ConfigurationError(f"{alg} needs a P-256 key, not {jwk.curve_name}")
            return es256_pair(jwk.private_key, jwk.public_key)
        if isinstance(jwk, OKPKey):
            public = jwk.public_key
            if not isinstance(public, ed25519.Ed25519PublicKey):
                raise ConfigurationError(f"{alg} needs an Ed25519 key")
            private = jwk.private_key
            return eddsa_pair(
                private if isinstance(private, ed25519.Ed25519PrivateKey) else None, public
            )
        if isinstance(jwk, RSAKey):
            if jwk.public_key.key_size < _MIN_RSA_BITS:
                raise ConfigurationError(f"RSA keys must be at least {_MIN_RSA_BITS} bits")
            return rsa_pair(jwk.private_key, jwk.public_key, alg)
        raise ConfigurationError(f"unsupported key type {jwk.key_type}")  # pragma: no cover

    # -- construction -------------------------------------------------------------

    @classmethod
    def generate(cls, alg: str = "HS256", *, kid: str | None = None) -> Key:
        """A new random key for ``alg`` (HMAC: hash-sized secret; RSA: 2048 bits).

        :raises ConfigurationError: for an unknown algorithm.
        """
        _check_alg(alg)
        jwk: JoseKey
        if alg in _HMAC:
            jwk = OctKey.import_key(secrets.token_bytes(hashlib.new(_HMAC[alg]).digest_size))
        elif alg == "dir":
            jwk = OctKey.import_key(secrets.token_bytes(32))
        elif alg in ("ES256", "ECDH-ES"):
            jwk = ECKey.generate_key("P-256")
        elif alg in ("EdDSA", "Ed25519"):
            jwk = OKPKey.generate_key("Ed25519")
        else:
            jwk = RSAKey.generate_key(_GENERATED_RSA_BITS)
        return cls(jwk, alg=alg, kid=kid)

    @classmethod
    def from_secret(
        cls, secret: str | bytes | Secret, *, alg: str = "HS256", kid: str | None = None
    ) -> Key:
        """A symmetric key (HMAC, or ``dir`` for JWE) from raw secret bytes.

        :raises ConfigurationError: when the secret is too short or looks like a key.
        """
        _check_alg(alg)
        if _KTY[alg] != "oct":
            raise ConfigurationError(f"{alg} is not a symmetric algorithm; use from_pem/from_jwk")
        raw = secret.reveal() if isinstance(secret, Secret) else secret
        raw = raw.encode() if isinstance(raw, str) else bytes(raw)
        _check_secret(raw, alg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # our own checks above are stricter
            try:
                jwk = OctKey.import_key(raw)
            except (ValueError, JoseError) as exc:
                raise ConfigurationError("invalid secret") from exc
        return cls(jwk, alg=alg, kid=kid)

    @classmethod
    def from_jwk(cls, data: Mapping[str, Any] | str, *, alg: str | None = None) -> Key:
        """A key from a JWK (a mapping or its JSON text).

        The algorithm is the JWK's ``alg``, else ``alg=``, else inferred from the key
        type (oct: HS256, P-256: ES256, Ed25519: EdDSA, RSA: RS256).

        :raises ConfigurationError: on invalid JWK or a mismatched algorithm.
        """
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise ConfigurationError("the JWK is not valid JSON") from exc
        if not isinstance(data, Mapping):
            raise ConfigurationError("a JWK must be a JSON object")
        jwk_alg = data.get("alg")
        if jwk_alg is not None and alg is not None and jwk_alg != alg:
            raise ConfigurationError(f"the JWK is bound to {jwk_alg!r}, not {alg!r}")
        chosen = jwk_alg or alg or _infer_alg(data)
        if not isinstance(chosen, str):
            raise ConfigurationError("the JWK 'alg' must be a string")
        _check_alg(chosen)
        clean = {k: v for k, v in data.items() if k not in ("alg", "kid", "use", "key_ops")}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                jwk = JWKRegistry.import_key(clean)
            except (ValueError, TypeError, KeyError, JoseError) as exc:
                raise ConfigurationError("invalid JWK") from exc
        kid = data.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise ConfigurationError("the JWK 'kid' must be a string")
        return cls(jwk, alg=chosen, kid=kid)

    @classmethod
    def from_pem(cls, data: str | bytes, *, alg: str, kid: str | None = None) -> Key:
        """A key from a PEM private key or public key (SubjectPublicKeyInfo).

        :raises ConfigurationError: when the PEM cannot be read or does not fit ``alg``.
        """
        _check_alg(alg)
        kty = _KTY[alg]
        if kty == "oct":
            raise ConfigurationError(f"{alg} takes a secret, not a PEM key")
        raw = data.encode() if isinstance(data, str) else bytes(data)
        jwk: JoseKey
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc warns on small RSA; we refuse below
            try:
                if kty == "EC":
                    jwk = ECKey.import_key(raw)
                elif kty == "OKP":
                    jwk = OKPKey.import_key(raw)
                else:
                    jwk = RSAKey.import_key(raw)
            except (ValueError, TypeError, JoseError) as exc:
                raise ConfigurationError(f"cannot read this PEM as a {kty} key for {alg}") from exc
        return cls(jwk, alg=alg, kid=kid)

    # -- use ------------------------------------------------------------------------

    @property
    def is_symmetric(self) -> bool:
        """True for HMAC and ``dir`` keys (never published)."""
        return _KTY[self.alg] == "oct"

    @property
    def can_sign(self) -> bool:
        """True when the key holds a private part (or is a secret)."""
        return self.is_symmetric or self._jwk.is_private

    @property
    def is_encryption(self) -> bool:
        """True when the key is bound to a JWE key-management algorithm."""
        return self.alg in ENCRYPTION_ALGORITHMS

    @property
    def jose_key(self) -> JoseKey:
        """The underlying joserfc key (for JWE and other rare operations)."""
        return self._jwk

    def sign(self, data: bytes) -> bytes:
        """The raw JWS signature of ``data`` (RFC 7518 form, e.g. R || S for ES256).

        :raises ConfigurationError: when the key holds no private part.
        """
        return self._sign(data)

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's valid JWS signature over ``data``."""
        return self._verify(data, signature)

    def thumbprint(self) -> str:
        """The RFC 7638 JWK thumbprint (SHA-256, base64url)."""
        return self._jwk.thumbprint()

    def public_jwk(self) -> dict[str, Any] | None:
        """The public JWK with ``kid``, ``alg`` and ``use``; None for symmetric keys."""
        if self.is_symmetric:
            return None
        return self._decorate(dict(self._jwk.as_dict(private=False)))

    def to_jwk(self, *, private: bool) -> dict[str, Any]:
        """The JWK with ``kid``, ``alg`` and ``use``.

        :raises ConfigurationError: when asked for a part the key does not have.
        """
        if private:
            if not self.can_sign:
                raise ConfigurationError("this key has no private part")
            return self._decorate(dict(self._jwk.as_dict(private=True)))
        public = self.public_jwk()
        if public is None:
            raise ConfigurationError("a symmetric key has no public form")
        return public

    def _decorate(self, data: dict[str, Any]) -> dict[str, Any]:
        data["kid"] = self.kid
        data["alg"] = self.alg
        data["use"] = "enc" if self.is_encryption else "sig"
        return data

    def __repr__(self) -> str:
        return f"Key(alg={self.alg!r}, kid={self.kid!r})"


def _infer_alg(data: Mapping[str, Any]) -> str:
    kty = data.get("kty")
    crv = data.get("crv")
    if kty == "oct":
        return "HS256"
    if kty == "EC" and crv == "P-256":
        return "ES256"
    if kty == "OKP" and crv == "Ed25519":
        return "EdDSA"
    if kty == "RSA":
        return "RS256"
    raise ConfigurationError("cannot infer the algorithm of this JWK; give alg=")


class KeyRing:
    """Keys in rotation, oldest first: the last signing key signs, every key verifies.

    To rotate, append a new key and keep the old one until every token it signed has
    expired; then drop it (its tokens then fail with ``unknown_key``).

    :raises ConfigurationError: when empty or when two keys share a ``kid``.
    """

    __slots__ = ("_by_kid", "_keys")

    def __init__(self, keys: Sequence[Key]) -> None:
        ring = tuple(keys)
        if not ring:
            raise ConfigurationError("a KeyRing needs at least one key")
        by_kid: dict[str, Key] = {}
        for key in ring:
            if not isinstance(key, Key):
                raise ConfigurationError("a KeyRing holds coatcheck.tokens.Key objects")
            if key.kid in by_kid:
                raise ConfigurationError(f"two keys share the kid {key.kid!r}")
            by_kid[key.kid] = key
        self._keys = ring
        self._by_kid = by_kid

    @classmethod
    def coerce(cls, value: KeyRing | Key | Sequence[Key]) -> KeyRing:
        """Accept a ring, one key, or a sequence of keys (oldest first)."""
        if isinstance(value, KeyRing):
            return value
        if isinstance(value, Key):
            return cls([value])
        return cls(value)

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any] | str) -> KeyRing:
        """A ring from a JWKS document (``{"keys": [...]}``), as a mapping or JSON text.

        :raises ConfigurationError: when the document or one of its keys is invalid.
        """
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise ConfigurationError("the JWKS is not valid JSON") from exc
        keys = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(keys, list):
            raise ConfigurationError("a JWKS is an object with a 'keys' list")
        return cls([Key.from_jwk(item) for item in keys])

    def get(self, kid: str) -> Key | None:
        """The key with this ``kid``, or None."""
        return self._by_kid.get(kid)

    @property
    def keys(self) -> tuple[Key, ...]:
        """Every key, oldest first."""
        return self._keys

    def signing_key(self, *, encryption: bool = False) -> Key:
        """The newest key of the kind asked for (JWS by default, JWE with ``encryption``).

        :raises ConfigurationError: when the ring has no such key.
        """
        for key in reversed(self._keys):
            if key.is_encryption == encryption:
                return key
        raise ConfigurationError(f"the KeyRing has no {'JWE' if encryption else 'JWS'} key")

    def jwks(self) -> dict[str, Any]:
        """The JWKS document (RFC 7517 §5) of the public keys; secrets never appear."""
        found = (key.public_jwk() for key in self._keys)
        return {"keys": [jwk for jwk in found if jwk is not None]}

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing({', '.join(repr(k) for k in self._keys)})"


def load_keys(data: str | bytes, *, alg: str | None = None, kid: str | None = None) -> KeyRing:
    """Read keys from text: a JWKS document, one JWK, or a PEM key (``alg`` needed).

    :raises ConfigurationError: when the text is none of these or a key is invalid.
    """
    text = data.decode() if isinstance(data, bytes) else data
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except ValueError as exc:
            raise ConfigurationError("the key file is not valid JSON") from exc
        if isinstance(document, dict) and "keys" in document:
            return KeyRing.from_jwks(document)
        return KeyRing([Key.from_jwk(document, alg=alg)])
    if "-----BEGIN" in stripped:
        if alg is None:
            raise ConfigurationError("a PEM key needs its algorithm (alg=)")
        return KeyRing([Key.from_pem(stripped, alg=alg, kid=kid)])
    raise ConfigurationError("expected a JWKS, a JWK or a PEM key")
