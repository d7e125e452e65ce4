"""``coatcheck keygen`` and ``coatcheck token decode|verify``.

Handlers return the exit code: 0 valid/done, 1 refused (the error code is printed),
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..clock import SystemClock
from ..errors import CoatcheckError, ConfigurationError, TokenError
from ..policies import ClaimsPolicy
from ..tokens import (
    ENCRYPTION_ALGORITHMS,
    SIGNING_ALGORITHMS,
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


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keygen`` and ``token`` (``decode``, ``verify``) to a ``coatcheck`` parser."""
    keygen = subparsers.add_parser(
        "keygen",
        help="make a new key and print it as a JWK",
        description="Print a new private JWK on stdout; for asymmetric algorithms the "
        "public JWK goes to stderr, or with --public both go to stdout as "
        '{"private": ..., "public": ...}.',
    )
    keygen.add_argument("--alg", default="HS256", choices=_ALGS, help="algorithm (HS256)")
    keygen.add_argument("--kid", help="key id (default: the RFC 7638 thumbprint)")
    keygen.add_argument("--public", action="store_true", help="print both JWKs on stdout")
    keygen.set_defaults(func=_keygen)

    token = subparsers.add_parser("token", help="decode or verify a JWT")
    actions = token.add_subparsers(dest="token_command", metavar="{decode,verify}", required=True)

    decode = actions.add_parser(
        "decode", help="show a token's header and claims WITHOUT verifying it"
    )
    decode.add_argument("token", help="the token ('-' reads it from stdin)")
    decode.set_defaults(func=_decode)

    verify = actions.add_parser("verify", help="verify a token and print its claims")
    verify.add_argument("token", help="the token ('-' reads it from stdin)")
    source = verify.add_mutually_exclusive_group(required=True)
    source.add_argument("--key", help="a JWK, JWKS or PEM: a file or the text itself")
    source.add_argument("--secret", help="an HMAC secret (or a 'dir' JWE key with --alg dir)")
    source.add_argument("--jwks", help="a JWKS file")
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


def _read_token(value: str) -> str:
    return (sys.stdin.read() if value == "-" else value).strip()


def _keygen(args: argparse.Namespace) -> int:
    try:
        key = Key.generate(args.alg, kid=args.kid)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    private = key.to_jwk(private=True)
    public = key.public_jwk()
    if args.public:
        print(json.dumps({"private": private, "public": public}, indent=2))
        return 0
    print(json.dumps(private, indent=2))
    if public is not None:
        print("public JWK:", file=sys.stderr)
        print(json.dumps(public, indent=2), file=sys.stderr)
    return 0


def _relative(seconds: float) -> str:
    ahead = seconds >= 0
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if span >= size:
            amount = f"{span / size:.1f}".removesuffix(".0") + f" {unit}"
            break
    else:
        amount = f"{span:.0f} s"
    return f"in {amount}" if ahead else f"{amount} ago"


def _describe_times(claims: dict[str, Any], now: float) -> list[str]:
    lines = []
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if type(value) is not int and type(value) is not float:
            continue
        try:
            when = datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
        except (OverflowError, OSError, ValueError):
            when = "out of range"
        lines.append(f"{name}: {value} = {when} ({_relative(value - now)})")
    return lines


def _decode(args: argparse.Namespace) -> int:
    token = _read_token(args.token)
    print("UNVERIFIED: nothing below has been checked; do not trust it.")
    try:
        if token.count(".") == 4:
            print("encrypted token (JWE); header:")
            print(json.dumps(unverified_header(token), indent=2))
            return 0
        header, claims = unverified_parts(token)
    except TokenError as exc:
        print(f"{exc.code}: this is not a readable compact JWS", file=sys.stderr)
        return 1
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


def _load_ring(args: argparse.Namespace, token: str) -> KeyRing:
    alg = args.alg[0] if args.alg else None
    if args.secret is not None:
        return KeyRing([Key.from_secret(args.secret, alg=alg or "HS256", kid=_token_kid(token))])
    source = args.jwks if args.jwks is not None else args.key
    text = source
    if not source.lstrip().startswith(("{", "-----BEGIN")):
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the key file {source!r}") from exc
    if args.jwks is not None:
        return KeyRing.from_jwks(text)
    return load_keys(text, alg=alg, kid=_token_kid(token))


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
        codec = None
        if token.count(".") != 4:
            codec = JWTCodec(ring, algorithms=algorithms, policy=policy)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        claims = decrypt_jwt(token, ring, policy=policy) if codec is None else codec.decode(token)
    except CoatcheckError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(claims, indent=2))
    for line in _describe_times(claims, SystemClock().now()):
        print(line)
    return 0
