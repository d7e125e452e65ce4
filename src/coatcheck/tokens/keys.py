"""JOSE keys bound to one algorithm and one ``kid``, and the :class:`KeyRing` that rotates them.

Each :class:`Key` is parsed once into ``cryptography`` key objects plus two prepared
callables, ``sign`` and ``verify``, so the per-token path never re-parses or re-vets a
key. Binding a key to exactly one algorithm is what rules out algorithm confusion
(RFC 8725 §3.1): an RS256 public key can never act as an HMAC secret because no token
algorithm but RS256 ever reaches it. (``EdDSA`` and ``Ed25519`` are two names of one
algorithm over an Ed25519 key, RFC 9864 §2, so a key bound to either verifies both.)

A key is vetted when it is made: its type and curve must fit the algorithm, ``use`` and
``key_ops`` must allow it (RFC 7517 §4.2, §4.3), RSA moduli must have at least 2048 bits,
an odd public exponent of at least 3 and no ROCA fingerprint (CVE-2017-15361), EC points
must lie on their curve. A JWKS read as verification keys holds public keys only, each
``kid`` once. Every refusal is a :class:`~coatcheck.errors.KeyRefused` with its own code.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OctKey, OKPKey, RSAKey
from joserfc.jwk import Key as JoseKey

from ..errors import (
    ConfigurationError,
    DuplicateKid,
    KeyRefused,
    KeyUseConflict,
    MalformedKey,
    WeakKey,
)
from ..secret import Secret
from ._algorithms import CONTENT_ENCRYPTIONS, ENCRYPTION, SIGNING, Spec, refusal
from ._jwk import (
    EC_CURVES,
    MIN_RSA_BITS,
    b64_member,
    check_ec_point,
    check_okp_halves,
    check_public_only,
    check_rsa,
    check_rsa_exponent_member,
    infer_alg,
    key_operations,
    named,
    raw_public,
)
from ._primitives import (
    Signer,
    Verifier,
    ecdsa_pair,
    eddsa_pair,
    hmac_pair,
    refuse_signing,
    refuse_verifying,
    rsa_pair,
)

__all__ = [
    "ENCRYPTION_ALGORITHMS",
    "SIGNING_ALGORITHMS",
    "Key",
    "KeyRing",
    "load_keys",
]

#: JWS algorithms a key can be bound to (RFC 7518 §3.1, RFC 8037 §3.1, RFC 9864 §2;
#: ``Ed25519``/``Ed448`` are the fully-specified names, ``EdDSA`` the older polymorphic one).
SIGNING_ALGORITHMS = frozenset(SIGNING)
#: JWE key-management algorithms a key can be bound to (RFC 7518 §4.1, less RSA1_5 and
#: PBES2, which are refused by design).
ENCRYPTION_ALGORITHMS = frozenset(ENCRYPTION)

_SPECS = {**SIGNING, **ENCRYPTION}
_GENERATED_RSA_BITS = 2048
_EDDSA = frozenset({"EdDSA", "Ed25519", "Ed448"})
_ALL_OPERATIONS = {"sig": frozenset({"sign", "verify"}), "enc": frozenset({"encrypt", "decrypt"})}
# Material that is a public key, not a secret (RFC 8725 §3.1; PyJWT CVE-2022-29217).
_KEY_MARKERS = (
    b"-----BEGIN", b"---- BEGIN", b"ssh-rsa", b"ssh-ed25519", b"ssh-dss", b"ecdsa-sha2-", b'"kty"'
)
# Members coatcheck reads itself; the rest of a JWK goes to joserfc.
_OWN_MEMBERS = ("alg", "kid", "use", "key_ops")


def _spec(alg: object) -> Spec:
    if not isinstance(alg, str) or alg not in _SPECS:
        shown = alg if isinstance(alg, str) else repr(alg)
        raise ConfigurationError(
            f"{refusal(str(shown))}; choose one of {', '.join(sorted(_SPECS))}"
        )
    return _SPECS[alg]


def _looks_like_public_key(secret: bytes) -> bool:
    if any(marker in secret for marker in _KEY_MARKERS):
        return True
    try:
        serialization.load_der_public_key(secret)
    except (ValueError, TypeError):
        return False
    return True


def _check_secret(secret: bytes, spec: Spec, kid: str | None) -> None:
    who = named(kid)
    if spec.use == "sig":
        need = spec.secret_sizes[0]
        if len(secret) < need:
            # RFC 7518 §3.2: the key must be at least as long as the hash output.
            raise WeakKey(f"{who}: {spec.name} secrets must be at least {need} bytes", kid=kid)
    elif len(secret) not in spec.secret_sizes:
        sizes = " or ".join(str(size) for size in spec.secret_sizes)
        raise MalformedKey(f"{who}: a {spec.name} key must be {sizes} bytes", kid=kid)
    if _looks_like_public_key(secret):
        raise MalformedKey(f"{who}: this looks like a public key or PEM, not a secret", kid=kid)


def _eddsa_names(alg: str, curve: str) -> frozenset[str]:
    # RFC 9864 §2: EdDSA over Ed25519 *is* Ed25519; the names differ, the algorithm not.
    return frozenset({"EdDSA", curve}) if alg in _EDDSA else frozenset({alg})


class Key:
    """One JWK bound to one algorithm and one ``kid``.

    Build it with :meth:`generate`, :meth:`from_secret`, :meth:`from_jwk`,
    :meth:`from_public_jwk` or :meth:`from_pem`; the ``kid`` defaults to the RFC 7638
    thumbprint.

    :raises ConfigurationError: for an unknown or refused algorithm.
    :raises KeyRefused: for a key that does not fit its algorithm or fails a check (the
        subclass says which: MalformedKey, WeakKey, VulnerableKey, PointNotOnCurve,
        KeyUseConflict).
    """

    __slots__ = (
        "_jwk",
        "_operations",
        "_sign",
        "_spec",
        "_verify",
        "alg",
        "jws_algorithms",
        "kid",
    )

    alg: str
    kid: str
    #: The ``alg`` names of JWS tokens this key verifies: its own (for an Ed25519 or
    #: Ed448 key, ``EdDSA`` too), or none when it may not verify.
    jws_algorithms: frozenset[str]

    def __init__(self, jwk: JoseKey, *, alg: str, kid: str | None = None) -> None:
        spec = _spec(alg)
        if kid is not None and (not isinstance(kid, str) or not kid):
            raise MalformedKey("kid must be a non-empty string")
        self._vet(jwk, spec, kid)
        self._jwk = jwk
        self._spec = spec
        self.alg = alg
        if kid is None:
            kid = jwk.kid or jwk.thumbprint()
        self.kid = kid
        self._allow(_ALL_OPERATIONS[spec.use])

    @staticmethod
    def _vet(jwk: JoseKey, spec: Spec, kid: str | None) -> None:
        who = named(kid)
        if jwk.key_type not in spec.ktys:
            raise MalformedKey(
                f"{who}: {spec.name} needs a {' or '.join(spec.ktys)} key, not {jwk.key_type}",
                kid=kid,
            )
        if isinstance(jwk, OctKey):
            _check_secret(jwk.raw_value, spec, kid)
        elif isinstance(jwk, RSAKey):
            check_rsa(jwk.public_key, kid)
        elif isinstance(jwk, ECKey | OKPKey):
            if jwk.curve_name not in spec.curves:
                raise MalformedKey(
                    f"{who}: {spec.name} needs a {' or '.join(spec.curves)} key, "
                    f"not {jwk.curve_name}",
                    kid=kid,
                )
            if isinstance(jwk, OKPKey) and jwk.is_private and jwk.private_key is not None:
                check_okp_halves(jwk.dict_value, raw_public(jwk.private_key.public_key()), kid)

    def _allow(self, operations: frozenset[str]) -> None:
        """Prepare sign/verify for the operations ``use``/``key_ops`` permit."""
        self._operations = operations
        spec, jwk = self._spec, self._jwk
        if spec.use == "enc":
            self._sign = refuse_signing(f"{self.alg} is a JWE algorithm: this key does not sign")
            self._verify = refuse_verifying()
            self.jws_algorithms = frozenset()
            return
        sign, verify = _prepare(jwk, spec)
        if "sign" not in operations:
            sign = refuse_signing("this key's key_ops do not allow 'sign'")
        if "verify" in operations:
            curve = jwk.curve_name if isinstance(jwk, OKPKey) else ""
            self.jws_algorithms = _eddsa_names(self.alg, curve)
        else:
            verify = refuse_verifying()
            self.jws_algorithms = frozenset()
        self._sign, self._verify = sign, verify

    # -- construction -------------------------------------------------------------

    @classmethod
    def generate(cls, alg: str = "Ed25519", *, kid: str | None = None,
                 curve: str | None = None) -> Key:
        """A new random key for ``alg``: HMAC and AES keys of the algorithm's size, RSA
        2048 bits, EC on the algorithm's curve. ``curve`` picks it where the algorithm
        allows several (``EdDSA``: Ed25519 or Ed448; ``ECDH-ES*``: P-256, P-384, P-521
        or X25519; default the first).

        :raises ConfigurationError: for an unknown algorithm or a curve it does not take.
        """
        spec = _spec(alg)
        if curve is not None and curve not in spec.curves:
            choices = ", ".join(spec.curves) or "none (its curve is fixed)"
            raise ConfigurationError(f"{alg} takes the curves {choices}, not {curve!r}")
        chosen = curve or (spec.curves[0] if spec.curves else "")
        jwk: JoseKey
        if spec.ktys == ("oct",):
            size = 32 if alg == "dir" else spec.secret_sizes[0]
            jwk = OctKey(secrets.token_bytes(size), None)
        elif spec.ktys == ("RSA",):
            jwk = RSAKey(rsa.generate_private_key(65537, _GENERATED_RSA_BITS), None)
        elif chosen in EC_CURVES:
            jwk = ECKey(ec.generate_private_key(EC_CURVES[chosen][0]), None)
        else:
            jwk = OKPKey(OKPKey.binding.generate_private_key(chosen), None)  # type: ignore[arg-type]
        return cls(jwk, alg=alg, kid=kid)

    @classmethod
    def from_secret(
        cls, secret: str | bytes | Secret, *, alg: str = "HS256", kid: str | None = None
    ) -> Key:
        """A symmetric key (HMAC; ``dir``, ``A*KW`` or ``A*GCMKW`` for JWE) from raw bytes.

        :raises ConfigurationError: for an algorithm that takes no secret.
        :raises WeakKey: an HMAC secret shorter than its hash.
        :raises MalformedKey: a JWE key of the wrong size, or a secret shaped like a key.
        """
        spec = _spec(alg)
        if spec.ktys != ("oct",):
            raise ConfigurationError(f"{alg} is not a symmetric algorithm; use from_pem/from_jwk")
        raw = secret.reveal() if isinstance(secret, Secret) else secret
        raw = raw.encode() if isinstance(raw, str) else bytes(raw)
        _check_secret(raw, spec, kid)
        return cls(OctKey(raw, None), alg=alg, kid=kid)

    @classmethod
    def from_jwk(cls, data: Mapping[str, Any] | str, *, alg: str | None = None) -> Key:
        """A key from a JWK (a mapping or its JSON text), private or public.

        The algorithm is the JWK's ``alg``, else ``alg=``, else inferred from the key type,
        curve and use (oct: HS256; RSA: RS256; P-256/384/521: ES256/384/512; Ed25519 and
        Ed448: the algorithm of that name; X25519, or ``use: enc``: ECDH-ES, RSA-OAEP-256,
        dir). ``use`` and ``key_ops`` are honoured (RFC 7517 §4.2, §4.3).

        :raises ConfigurationError: for an unknown or refused algorithm.
        :raises KeyRefused: an invalid JWK, one that does not fit the algorithm, or one
            that fails a key check (see :class:`Key`).
        """
        return cls._from_mapping(_as_mapping(data), alg=alg, public_only=None)

    @classmethod
    def from_public_jwk(cls, data: Mapping[str, Any] | str, *, alg: str) -> Key:
        """A verify-only (or encrypt-only) key from a *public* JWK, bound to ``alg``.

        For keys that arrive from outside (a JWKS, a DPoP proof's ``jwk`` header): a
        secret or any private member is refused, and so is a JWK whose own ``alg``,
        ``use`` or ``key_ops`` forbid ``alg``.

        :raises ConfigurationError: for an unknown or refused ``alg``.
        :raises NotAPublicKey: an ``oct`` key or private members.
        :raises KeyRefused: as :meth:`from_jwk`.
        """
        return cls._from_mapping(_as_mapping(data), alg=alg, public_only="this public JWK")

    @classmethod
    def _from_mapping(
        cls, data: Mapping[str, Any], *, alg: str | None, public_only: str | None
    ) -> Key:
        kid = data.get("kid")
        if kid is not None and (not isinstance(kid, str) or not kid):
            raise MalformedKey("the JWK 'kid' must be a non-empty string")
        if alg is not None:
            _spec(alg)  # an unknown or refused algorithm says so first
        if public_only is not None:
            check_public_only(data, kid, public_only)
        chosen = _choose_alg(data, alg, kid)
        spec = _spec(chosen)
        operations = key_operations(data, spec, kid)
        _precheck(data, spec, kid)
        clean = {k: v for k, v in data.items() if k not in _OWN_MEMBERS}
        try:
            jwk = JWKRegistry.import_key(clean)
        except (ValueError, TypeError, KeyError, JoseError) as exc:
            raise MalformedKey(f"{named(kid)}: not a valid {spec.name} JWK", kid=kid) from exc
        key = cls(jwk, alg=chosen, kid=kid)
        if operations != _ALL_OPERATIONS[spec.use]:
            key._allow(operations)
        return key

    @classmethod
    def from_pem(cls, data: str | bytes, *, alg: str, kid: str | None = None) -> Key:
        """A key from a PEM private key (PKCS#8 or traditional) or public key
        (SubjectPublicKeyInfo).

        :raises ConfigurationError: for an unknown algorithm or one that takes a secret.
        :raises KeyRefused: when the PEM cannot be read, does not fit ``alg`` or fails a
            key check.
        """
        spec = _spec(alg)
        if spec.ktys == ("oct",):
            raise ConfigurationError(f"{alg} takes a secret, not a PEM key")
        raw = data.encode() if isinstance(data, str) else bytes(data)
        native: Any
        try:
            if b"PRIVATE KEY-----" in raw:
                native = serialization.load_pem_private_key(raw, password=None)
            else:
                native = serialization.load_pem_public_key(raw)
        except (ValueError, TypeError) as exc:
            raise MalformedKey(f"cannot read this PEM as a key for {alg}", kid=kid) from exc
        jwk: JoseKey
        if isinstance(native, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            jwk = RSAKey(native, None)
        elif isinstance(native, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            if native.curve.name not in {c.name for c, _ in EC_CURVES.values()}:
                raise MalformedKey(f"the curve {native.curve.name} is not supported", kid=kid)
            jwk = ECKey(native, None)
        elif isinstance(native, _OKP_TYPES):
            jwk = OKPKey(native, None)
        else:
            raise MalformedKey(f"this PEM holds a key type {alg} cannot use", kid=kid)
        return cls(jwk, alg=alg, kid=kid)

    # -- use ------------------------------------------------------------------------

    @property
    def is_symmetric(self) -> bool:
        """True for HMAC and AES keys (never published)."""
        return self._jwk.key_type == "oct"

    @property
    def is_private(self) -> bool:
        """True when the key holds a private part (or is a secret)."""
        return self.is_symmetric or bool(self._jwk.is_private)

    @property
    def can_sign(self) -> bool:
        """True for a JWS key with a private part (or a secret) that may sign."""
        return self._spec.use == "sig" and "sign" in self._operations and self.is_private

    @property
    def can_verify(self) -> bool:
        """True for a JWS key that may verify signatures."""
        return bool(self.jws_algorithms)

    @property
    def is_encryption(self) -> bool:
        """True when the key is bound to a JWE key-management algorithm."""
        return self._spec.use == "enc"

    @property
    def can_encrypt(self) -> bool:
        """True for a JWE key that may encrypt (a public key is enough)."""
        return self.is_encryption and "encrypt" in self._operations

    @property
    def can_decrypt(self) -> bool:
        """True for a JWE key with a private part (or a secret) that may decrypt."""
        return self.is_encryption and "decrypt" in self._operations and self.is_private

    @property
    def curve(self) -> str | None:
        """The curve (``crv``) of an EC or OKP key; None for the others."""
        jwk = self._jwk
        return jwk.curve_name if isinstance(jwk, ECKey | OKPKey) else None

    @property
    def jose_key(self) -> JoseKey:
        """The underlying joserfc key (for JWE and other rare operations)."""
        return self._jwk

    def sign(self, data: bytes) -> bytes:
        """The raw JWS signature of ``data`` (RFC 7518 form, e.g. R || S for ES256).

        :raises ConfigurationError: when the key holds no private part, is a JWE key, or
            its ``key_ops`` do not allow signing.
        """
        return self._sign(data)

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's valid JWS signature over ``data`` (always
        False for a key that may not verify)."""
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
            if not self.is_private:
                raise ConfigurationError("this key has no private part")
            return self._decorate(dict(self._jwk.as_dict(private=True)))
        public = self.public_jwk()
        if public is None:
            raise ConfigurationError("a symmetric key has no public form")
        return public

    def _decorate(self, data: dict[str, Any]) -> dict[str, Any]:
        for member in _OWN_MEMBERS:
            data.pop(member, None)
        data["kid"] = self.kid
        data["alg"] = self.alg
        data["use"] = self._spec.use
        return data

    def __repr__(self) -> str:
        return f"Key(alg={self.alg!r}, kid={self.kid!r})"


_OKP_TYPES = (
    ed25519.Ed25519PrivateKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PrivateKey,
    ed448.Ed448PublicKey,
    x25519.X25519PrivateKey,
    x25519.X25519PublicKey,
)


def _prepare(jwk: JoseKey, spec: Spec) -> tuple[Signer, Verifier]:
    if isinstance(jwk, OctKey):
        return hmac_pair(jwk.raw_value, spec.hash)
    if isinstance(jwk, ECKey):
        ec_private = jwk.private_key
        return ecdsa_pair(
            ec_private if isinstance(ec_private, ec.EllipticCurvePrivateKey) else None,
            jwk.public_key,
            spec.hash,
        )
    if isinstance(jwk, OKPKey):
        public, private = jwk.public_key, jwk.private_key
        if not isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            raise MalformedKey(f"{spec.name} needs an Ed25519 or Ed448 key")  # pragma: no cover
        signer = (
            private
            if isinstance(private, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
            else None
        )
        return eddsa_pair(signer, public)
    if isinstance(jwk, RSAKey):
        return rsa_pair(jwk.private_key, jwk.public_key, spec.hash, pss=spec.name[:2] == "PS")
    raise MalformedKey(f"unsupported key type {jwk.key_type}")  # pragma: no cover


def _as_mapping(data: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise MalformedKey("the JWK is not valid JSON") from exc
    if not isinstance(data, Mapping):
        raise MalformedKey("a JWK must be a JSON object")
    return data


def _choose_alg(data: Mapping[str, Any], alg: str | None, kid: str | None) -> str:
    jwk_alg = data.get("alg")
    if jwk_alg is not None and not isinstance(jwk_alg, str):
        raise MalformedKey(f"{named(kid)}: the JWK 'alg' must be a string", kid=kid)
    if jwk_alg in CONTENT_ENCRYPTIONS:
        # A direct-encryption key labelled with its content encryption, as in RFC 7520
        # §5.6: it is a 'dir' key (its size must then fit that encryption).
        jwk_alg = "dir"
    if jwk_alg is not None and alg is not None and jwk_alg != alg:
        # RFC 7517 §4.4: the JWK names the one algorithm it is for. EdDSA and Ed25519
        # (or Ed448) over the same curve are one algorithm (RFC 9864 §2).
        same = {jwk_alg, alg} <= _EDDSA and data.get("crv") in ({jwk_alg, alg} - {"EdDSA"})
        if not same:
            raise KeyUseConflict(
                f"{named(kid)}: the JWK is bound to {jwk_alg!r}, not {alg!r}", kid=kid
            )
        return alg
    chosen = alg or jwk_alg or infer_alg(data)
    if chosen is None:
        raise MalformedKey(
            f"{named(kid)}: cannot infer the algorithm of this JWK "
            f"(kty {data.get('kty')!r}, crv {data.get('crv')!r}); give alg=",
            kid=kid,
        )
    return chosen


def _precheck(data: Mapping[str, Any], spec: Spec, kid: str | None) -> None:
    """Name the reason for refusals that ``cryptography`` would only report as invalid."""
    kty = data.get("kty")
    if kty not in spec.ktys:
        raise MalformedKey(
            f"{named(kid)}: {spec.name} needs a {' or '.join(spec.ktys)} key, not {kty!r}",
            kid=kid,
        )
    if kty == "RSA":
        check_rsa_exponent_member(data, kid)
        bits = int.from_bytes(b64_member(data, "n", kid), "big").bit_length()
        if bits < MIN_RSA_BITS:
            raise WeakKey(
                f"{named(kid)}: RSA keys must be at least {MIN_RSA_BITS} bits, this one has "
                f"{bits}",
                kid=kid,
            )
    elif kty in ("EC", "OKP"):
        crv = data.get("crv")
        # An algorithm may take both kinds (ECDH-ES: P-256 ... and X25519): the curve must
        # still be one of its own key type's.
        if crv not in spec.curves or (kty == "EC") != (crv in EC_CURVES):
            raise MalformedKey(
                f"{named(kid)}: {spec.name} needs a {' or '.join(spec.curves)} key, "
                f"not {crv!r}",
                kid=kid,
            )
        if kty == "EC":
            check_ec_point(data, str(crv), kid)
    else:
        _check_secret(b64_member(data, "k", kid), spec, kid)


def _not_understood(data: Mapping[str, Any]) -> str | None:
    """Why a published JWK is one coatcheck does not understand (RFC 7517 §5), or None.

    Only what coatcheck cannot use at all: a key type, or an algorithm, it does not
    support or refuses by design. A key it understands but that is broken is refused
    by :meth:`Key.from_jwk`, never ignored.
    """
    kty = data.get("kty")
    if kty not in ("RSA", "EC", "OKP", "oct"):
        return f"key type {kty!r} is not supported"
    jwk_alg = data.get("alg")
    if isinstance(jwk_alg, str) and jwk_alg not in _SPECS and jwk_alg not in CONTENT_ENCRYPTIONS:
        return refusal(jwk_alg)
    if jwk_alg is None and infer_alg(data) is None:
        return f"no supported algorithm fits kty {kty!r}, crv {data.get('crv')!r}"
    return None


class KeyRing:
    """Keys in rotation, oldest first: the last signing key signs, every key verifies.

    To rotate, append a new key and keep the old one until every token it signed has
    expired; then drop it (its tokens then fail with ``unknown_key``).

    :raises ConfigurationError: when empty or holding something other than keys.
    :raises DuplicateKid: when two keys share a ``kid``.
    """

    __slots__ = ("_by_kid", "_ignored", "_keys")

    def __init__(self, keys: Sequence[Key]) -> None:
        ring = tuple(keys)
        if not ring:
            raise ConfigurationError("a KeyRing needs at least one key")
        by_kid: dict[str, Key] = {}
        for key in ring:
            if not isinstance(key, Key):
                raise ConfigurationError("a KeyRing holds coatcheck.tokens.Key objects")
            if key.kid in by_kid:
                raise DuplicateKid(
                    f"two keys share the kid {key.kid!r}: a token naming it could not say "
                    "which key it means; give each key its own kid",
                    kid=key.kid,
                )
            by_kid[key.kid] = key
        self._keys = ring
        self._by_kid = by_kid
        self._ignored: tuple[str, ...] = ()

    @classmethod
    def coerce(cls, value: KeyRing | Key | Sequence[Key]) -> KeyRing:
        """Accept a ring, one key, or a sequence of keys (oldest first)."""
        if isinstance(value, KeyRing):
            return value
        if isinstance(value, Key):
            return cls([value])
        return cls(value)

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any] | str, *, private: bool = False) -> KeyRing:
        """A ring from a JWKS document (``{"keys": [...]}``), as a mapping or JSON text.

        By default the set is read as *verification* keys, the way a JWKS is published
        (RFC 7517 §5): a secret (``oct``) or a key with private members is refused, naming
        the key, and so are two keys with one ``kid``. ``private=True`` reads a set of
        your own keys, which may hold secrets and private keys.

        A published set may list keys coatcheck does not understand: a key type, curve or
        algorithm it does not support (``ES256K``, ``X448``, an ``RSA1_5`` encryption key
        beside the signing keys). As RFC 7517 §5 asks, those are ignored, never used, and
        named with the reason in :attr:`ignored`; a set with no usable key is refused.
        A key coatcheck does understand but that fails a check (weak, ROCA, off its curve,
        malformed) still refuses the whole set.

        :raises MalformedKey: when the document is not a JWKS.
        :raises NotAPublicKey: a secret or private key in a verification set.
        :raises DuplicateKid: two keys with the same ``kid``.
        :raises KeyRefused: a key that fails its checks (see :class:`Key`).
        """
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise MalformedKey("the JWKS is not valid JSON") from exc
        items = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(items, list) or not items:
            raise MalformedKey("a JWKS is an object with a non-empty 'keys' list")
        keys = []
        ignored: list[str] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            where = f"the JWKS (keys[{index}])"
            if not isinstance(item, Mapping):
                raise MalformedKey(f"{where}: each key is a JSON object")
            kid = item.get("kid")
            if isinstance(kid, str) and kid in seen:
                raise DuplicateKid(
                    f"keys[{seen[kid]}] and keys[{index}] of the JWKS share the kid {kid!r}: "
                    "a token naming it could not say which key it means",
                    kid=kid,
                )
            if isinstance(kid, str):
                seen[kid] = index
            if not private:
                check_public_only(item, kid if isinstance(kid, str) else None, where)
                reason = _not_understood(item)
                if reason is not None:
                    shown = f"key {kid!r}" if isinstance(kid, str) else "a key"
                    ignored.append(f"{shown} at keys[{index}]: {reason}")
                    continue
            try:
                keys.append(Key.from_jwk(item))
            except KeyRefused as exc:
                raise type(exc)(f"{where}: {exc.message}", kid=exc.kid) from exc
            except ConfigurationError as exc:
                raise ConfigurationError(f"{where}: {exc.message}") from exc
        if not keys:
            raise MalformedKey(
                "no key in the JWKS is one coatcheck can use (" + "; ".join(ignored) + ")"
            )
        ring = cls(keys)
        ring._ignored = tuple(ignored)
        return ring

    @property
    def ignored(self) -> tuple[str, ...]:
        """Keys of the JWKS this ring was read from that were not understood, and why."""
        return self._ignored

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


def load_keys(
    data: str | bytes, *, alg: str | None = None, kid: str | None = None, private: bool = False
) -> KeyRing:
    """Read keys from text: a JWKS document, one JWK, or a PEM key (``alg`` needed).

    A JWKS is read as verification keys (public only) unless ``private=True``; see
    :meth:`KeyRing.from_jwks`.

    :raises ConfigurationError: when the text is none of these.
    :raises KeyRefused: when a key is invalid or refused.
    """
    text = data.decode() if isinstance(data, bytes) else data
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except ValueError as exc:
            raise MalformedKey("the key file is not valid JSON") from exc
        if isinstance(document, dict) and "keys" in document:
            return KeyRing.from_jwks(document, private=private)
        return KeyRing([Key.from_jwk(document, alg=alg)])
    if "-----BEGIN" in stripped:
        if alg is None:
            raise ConfigurationError("a PEM key needs its algorithm (alg=)")
        return KeyRing([Key.from_pem(stripped, alg=alg, kid=kid)])
    raise MalformedKey("expected a JWKS, a JWK or a PEM key")
