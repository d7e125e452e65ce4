"""``coatcheck keygen`` and ``coatcheck token decode|verify|sign``.

Handlers return the exit code: 0 valid/done, 1 refused (the error code is printed),
2 usage or configuration error. Keys are read from files or the command line only:
coatcheck never fetches a key over the network (a ``jku``-style fetch would let
whoever names the URL choose the key), so a JWKS URL is refused with a hint.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..clock import SystemClock
from ..errors import (
    CoatcheckError,
    ConfigurationError,
    DuplicateKid,
    TokenError,
    UnsupportedAlgorithm,
)
from ..inspect.report import time_info
from ..policies import ClaimsPolicy
from ..tokens import (
    ENCRYPTION_ALGORITHMS,
    SIGNING_ALGORITHMS,
    CompactDecrypter,
    JWTCodec,
    Key,
    KeyRing,
    decrypt_jwt,
    load_keys,
    unverified_header,
    unverified_parts,
)

__all__ = ["register"]

_ALGS = sorted(SIGNING_ALGORITHMS | ENCRYPTION_ALGORITHMS)
_TIME_CLAIMS = ("iat", "nbf", "exp")
_UNVERIFIED = "UNVERIFIED: nothing below has been checked; do not trust it."


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keygen`` and ``token`` (``decode``, ``verify``, ``sign``) to a parser."""
    keygen = subparsers.add_parser(
        "keygen",
        help="make a new key and print it as a JWK",
        description="Print a new private JWK on stdout. For asymmetric algorithms the "
        "public JWK goes to stderr; --jwks FILE adds it to the public JWK Set in FILE "
        "instead (created if missing: the file `token verify --jwks` reads); --public "
        'prints both on stdout as {"private": ..., "public": ...}.',
    )
    keygen.add_argument(
        "--alg",
        default="Ed25519",
        metavar="ALG",
        help=f"algorithm (Ed25519, RFC 9864): {', '.join(_ALGS)}",
    )
    keygen.add_argument(
        "--curve",
        help="curve, where the algorithm allows several (EdDSA: Ed25519, Ed448; ECDH-ES*: "
        "P-256, P-384, P-521, X25519)",
    )
    keygen.add_argument("--kid", help="key id (default: the RFC 7638 thumbprint)")
    output = keygen.add_mutually_exclusive_group()
    output.add_argument("--public", action="store_true", help="print both JWKs on stdout")
    output.add_argument(
        "--jwks",
        metavar="FILE",
        help="add the public JWK to the JWK Set in FILE (created if missing; old keys kept "
        "for rotation)",
    )
    keygen.set_defaults(func=_keygen)

    token = subparsers.add_parser("token", help="decode, verify or sign a JWT")
    actions = token.add_subparsers(
        dest="token_command", metavar="{decode,verify,sign}", required=True
    )

    decode = actions.add_parser(
        "decode", help="show a token's header and claims WITHOUT verifying it"
    )
    decode.add_argument("token", help="the token ('-' reads it from stdin)")
    decode.set_defaults(func=_decode)

    verify = actions.add_parser("verify", help="verify a token and print its claims")
    verify.add_argument("token", help="the token ('-' reads it from stdin)")
    source = verify.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--key", help="your JWK, JWKS (private keys allowed) or PEM: a file or the text itself"
    )
    source.add_argument("--secret", help="an HMAC secret (or a 'dir' JWE key with --alg dir)")
    source.add_argument(
        "--jwks", help="a published JWKS file, public keys only (never a URL: nothing is fetched)"
    )
    verify.add_argument(
        "--alg", action="append", choices=_ALGS, help="allowed algorithm (repeatable)"
    )
    verify.add_argument("--iss", help="required issuer")
    verify.add_argument("--aud", help="required audience")
    verify.add_argument(
        "--require",
        action="append",
        metavar="CLAIM",
        help="claims that must be present (repeatable; default: exp)",
    )
    verify.add_argument("--leeway", type=float, default=10.0, help="clock skew in seconds (10)")
    verify.set_defaults(func=_verify)

    sign = actions.add_parser(
        "sign",
        help="sign claims with a private JWK (from keygen) and print the token",
        description="Print a signed JWT of --claims plus iat, exp (now + --ttl) and jti.",
    )
    sign.add_argument(
        "--key", required=True, help="a private JWK (keygen's output): a file or the text itself"
    )
    sign.add_argument(
        "--claims", required=True, help='the claims, a JSON object: \'{"sub": "u1"}\''
    )
    sign.add_argument("--ttl", type=float, default=None, help="lifetime in seconds (900)")
    sign.set_defaults(func=_sign)


def _read_token(value: str) -> str:
    return (sys.stdin.read() if value == "-" else value).strip()


def _keygen(args: argparse.Namespace) -> int:
    try:
        key = Key.generate(args.alg, kid=args.kid, curve=args.curve)
        if args.jwks is not None:
            count = _add_to_jwks(Path(args.jwks), key)
    except ConfigurationError as exc:
        print(f"coatcheck: {exc}", file=sys.stderr)
        return 2
    private = key.to_jwk(private=True)
    public = key.public_jwk()
    if args.public:
        print(json.dumps({"private": private, "public": public}, indent=2))
        return 0
    print(json.dumps(private, indent=2))
    if args.jwks is not None:
        print(f"public JWK added to {args.jwks} ({count} keys)", file=sys.stderr)
    elif public is not None:
        print("public JWK:", file=sys.stderr)
        print(json.dumps(public, indent=2), file=sys.stderr)
    return 0


def _add_to_jwks(path: Path, key: Key) -> int:
    """Append ``key``'s public JWK to the JWK Set at ``path`` (new if missing); the
    number of keys in it afterwards. Written to a temporary file and renamed, so a
    reader never sees half a set.

    :raises ConfigurationError: a symmetric key, a file that is not a public JWK Set, or
        a kid already in it.
    """
    public = key.public_jwk()
    if public is None:
        raise ConfigurationError(
            f"a {key.alg} key is a secret: it has no public form to publish in a JWK Set"
        )
    if path.exists():
        try:
            text = path.read_text()
            ring = KeyRing.from_jwks(text)
        except OSError as exc:
            raise ConfigurationError(f"cannot read {str(path)!r}") from exc
        except ConfigurationError as exc:
            raise ConfigurationError(f"{str(path)!r} is not a public JWK Set: {exc}") from exc
        existing = json.loads(text)["keys"]
        if ring.get(key.kid) is not None or any(
            isinstance(k, dict) and k.get("kid") == key.kid for k in existing
        ):
            raise DuplicateKid(f"{str(path)!r} already has a key with the kid {key.kid!r}")
        # The set as it was, keys coatcheck ignores included: appending loses nothing.
        document = {**json.loads(text), "keys": existing}
    else:
        document = {"keys": []}
    document["keys"].append(public)
    text = json.dumps(document, indent=2) + "\n"
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        raise ConfigurationError(f"cannot write {str(path)!r}: {exc.strerror}") from exc
    return len(document["keys"])


def _describe_times(claims: dict[str, Any], now: float) -> list[str]:
    lines = []
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if type(value) is not int and type(value) is not float:
            continue
        # The inspector's format (coatcheck inspect, the demo): one way to say a time.
        info = time_info(name, value, now)
        when = "out of range" if info is None else f"{info.iso} ({info.relative})"
        lines.append(f"{name}: {value} = {when}")
    return lines


def _decode(args: argparse.Namespace) -> int:
    token = _read_token(args.token)
    try:
        if token.count(".") == 4:
            jwe_header = unverified_header(token)
            print(_UNVERIFIED)
            print("encrypted token (JWE); header:")
            print(json.dumps(jwe_header, indent=2))
            return 0
        header, claims = unverified_parts(token)
    except TokenError as exc:
        # Only the error: a banner over nothing would suggest something was read.
        print(f"{exc.code}: this is not a readable compact JWS", file=sys.stderr)
        return 1
    print(_UNVERIFIED)
    print("header:")
    print(json.dumps(header, indent=2))
    print("payload:")
    print(json.dumps(claims, indent=2))
    for line in _describe_times(claims, SystemClock().now()):
        print(line)
    return 0


def _token_kid(token: str) -> str | None:
    # A bare secret or PEM has no kid of its own; give it the token's so that the
    # signature, not a kid mismatch, decides.
    try:
        kid = unverified_header(token).get("kid")
    except TokenError:
        return None
    return kid if isinstance(kid, str) and kid else None


def _key_text(source: str) -> str:
    """The key text itself, or the content of the file it names.

    :raises ConfigurationError: for a URL (never fetched) or an unreadable file.
    """
    if source.lstrip().startswith(("{", "-----BEGIN")):
        return source
    if source.strip().lower().startswith(("http://", "https://")):
        raise ConfigurationError(
            "coatcheck never fetches keys from the network (offline by design): save the "
            "JWKS to a file (e.g. curl -o jwks.json URL) and pass that file"
        )
    try:
        return Path(source).read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the key file {source!r}") from exc


def _load_ring(args: argparse.Namespace, token: str) -> KeyRing:
    alg = args.alg[0] if args.alg else None
    if args.secret is not None:
        if alg is None:
            alg = "dir" if token.count(".") == 4 else "HS256"
        return KeyRing([Key.from_secret(args.secret, alg=alg, kid=_token_kid(token))])
    text = _key_text(args.jwks if args.jwks is not None else args.key)
    if args.jwks is not None:
        return KeyRing.from_jwks(text)
    # --key is the user's own key material (a private JWKS can decrypt); --jwks is a
    # published set, read as public keys only.
    return load_keys(text, alg=alg, kid=_token_kid(token), private=True)


def _verify(args: argparse.Namespace) -> int:
    token = _read_token(args.token)
    try:
        ring = _load_ring(args, token)
        policy = ClaimsPolicy(
            issuer=args.iss,
            audience=args.aud,
            leeway=timedelta(seconds=args.leeway),
            require=tuple(args.require or ("exp",)),
        )
        algorithms = [a for a in args.alg or () if a in SIGNING_ALGORITHMS] or None
        jwe_algorithms = [a for a in args.alg or () if a in ENCRYPTION_ALGORITHMS] or None
        encrypted = token.count(".") == 4
        codec = JWTCodec(ring, algorithms=algorithms, policy=policy) if not encrypted else None
        if encrypted:
            CompactDecrypter(ring, algorithms=jwe_algorithms)  # configuration errors: exit 2
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    for ignored in ring.ignored:
        print(f"note: ignored {ignored}", file=sys.stderr)
    try:
        if codec is None:
            claims = decrypt_jwt(token, ring, algorithms=jwe_algorithms, policy=policy)
            matched = _describe_jwe_key(token)
        else:
            decoded = codec.decode_complete(token)
            claims = decoded.claims
            matched = f"signature verified with key kid={decoded.key.kid} (alg {decoded.key.alg})"
    except UnsupportedAlgorithm as exc:
        print(f"refused: {_explain_algorithm(exc, token, ring, args.alg)}", file=sys.stderr)
        return 1
    except CoatcheckError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"valid: {matched}")
    print(json.dumps(claims, indent=2))
    for line in _describe_times(claims, SystemClock().now()):
        print(line)
    return 0


def _describe_jwe_key(token: str) -> str:
    # decrypt_jwt picked the key by the header's kid and alg, and it decrypted.
    header = unverified_header(token)
    kid, alg, enc = header.get("kid"), header.get("alg"), header.get("enc")
    named = f"key kid={kid}" if isinstance(kid, str) else "the key"
    return f"decrypted with {named} (alg {alg}, enc {enc})"


def _explain_algorithm(
    exc: UnsupportedAlgorithm, token: str, ring: KeyRing, allowed: list[str] | None
) -> str:
    """Say *why* an algorithm was refused when the token's own header tells."""
    try:
        alg = unverified_header(token).get("alg")
    except TokenError:
        return str(exc)
    if not isinstance(alg, str):
        return str(exc)
    if allowed and alg not in allowed:
        return f"{exc.code}: the token uses {alg}, not an allowed algorithm ({', '.join(allowed)})"
    algs = sorted({key.alg for key in ring})
    if not any(alg in key.jws_algorithms or alg == key.alg for key in ring):
        return (
            f"{exc.code}: the token is signed with {alg}, but the key given is for "
            f"{', '.join(algs)}: that key does not fit this token's algorithm"
        )
    return str(exc)


def _signing_jwk(text: str) -> KeyRing:
    """The private key of keygen's output (a JWK, or ``--public``'s pair).

    :raises ConfigurationError: for anything else.
    """
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError("the key is not valid JSON: give keygen's private JWK") from exc
    if isinstance(document, dict) and isinstance(document.get("private"), dict):
        document = document["private"]
    if not isinstance(document, dict) or "keys" in document:
        raise ConfigurationError("give one private JWK (keygen's output), not a JWKS")
    return KeyRing([Key.from_jwk(document)])


def _sign(args: argparse.Namespace) -> int:
    try:
        claims = json.loads(args.claims)
    except ValueError:
        print("coatcheck: --claims is not valid JSON", file=sys.stderr)
        return 2
    if not isinstance(claims, dict):
        print('coatcheck: --claims must be a JSON object, e.g. \'{"sub": "u1"}\'', file=sys.stderr)
        return 2
    if args.ttl is not None and args.ttl <= 0:
        print("coatcheck: --ttl must be positive", file=sys.stderr)
        return 2
    try:
        ring = _signing_jwk(_key_text(args.key))
        key = ring.signing_key()
        if not key.can_sign:
            raise ConfigurationError("this is a public key: signing needs the private JWK")
        token = JWTCodec(ring).encode(claims, ttl=args.ttl)
    except ConfigurationError as exc:
        print(f"coatcheck: {exc}", file=sys.stderr)
        return 2
    except CoatcheckError as exc:
        print(f"coatcheck: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0
