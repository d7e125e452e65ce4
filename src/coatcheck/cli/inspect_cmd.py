"""``coatcheck inspect VALUE``: say what a token or cookie is, offline.

Exit codes, so that it can gate CI: 0 the value was read and is clean (whatever it
is; a JWT read without a key is marked "signature not verified"), 1 a given secret
or key did not verify or decrypt it, or a Set-Cookie line has lint errors (what a
browser refuses, e.g. SameSite=None without Secure), 2 usage (including an unreadable
key file). A value that cannot be read is described as such; there is never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ConfigurationError
from ..inspect import KeyMaterial, inspect_value, render_json, render_text, use_colour

__all__ = ["register", "run"]

_MAX_STDIN = 1 << 20


def register(subparsers: Any) -> None:
    """Add the ``inspect`` subcommand."""
    parser = subparsers.add_parser(
        "inspect",
        help="say what a token, cookie or Set-Cookie line is, and verify it offline",
        description=(
            "Read a JWT (JWS/JWE), an Auth.js session token, an express-session, Flask, "
            "Starlette or Django cookie, an opaque id, a Cookie header or a Set-Cookie "
            "line (linted). Nothing is sent anywhere. Exit status: 0 read and clean, 1 "
            "verification failed or Set-Cookie lint errors, 2 usage."
        ),
    )
    parser.add_argument("value", metavar="VALUE", help="the value to read; '-' reads stdin")
    parser.add_argument(
        "--secret", action="append", default=[], metavar="S",
        help="a secret to verify or decrypt with (repeatable; Auth.js, HMAC, framework secrets)",
    )
    parser.add_argument(
        "--key", action="append", default=[], metavar="FILE",
        help="a PEM or JWK key file (repeatable)",
    )
    parser.add_argument("--jwks", metavar="FILE", help="a JWKS document to verify with")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Inspect ``args.value``; the exit code."""
    value: str = args.value
    if value == "-":
        value = sys.stdin.read(_MAX_STDIN + 1)
        if len(value) > _MAX_STDIN:
            print("coatcheck: the input on stdin is over 1 MiB", file=sys.stderr)
            return 2
    try:
        material = KeyMaterial.load(secrets=args.secret, key_files=args.key, jwks_file=args.jwks)
    except ConfigurationError as exc:
        print(f"coatcheck: {exc}", file=sys.stderr)
        return 2
    report = inspect_value(value, material=material)
    if args.json:
        sys.stdout.write(render_json(report) + "\n")
    else:
        sys.stdout.write(render_text(report, colour=use_colour(sys.stdout)))
    return 1 if report.verification_failed or report.lint_failed else 0
