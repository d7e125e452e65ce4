"""``coatcheck theft``: walk through a cookie theft, with and without a binding.

``coatcheck theft dbsc`` runs the demo in this process on a simulated clock: a browser
with Device Bound Session Credentials and one without log in, malware copies their
cookies, and the copies are replayed before and after the bound cookie's lifetime, in
session and hybrid mode. It exits 0 when every step went as DBSC promises.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``theft`` subcommand."""
    parser = subparsers.add_parser(
        "theft",
        help="walk through a cookie theft against device-bound sessions (DBSC)",
        description="Replay stolen cookies against the demo, in process, on a simulated "
        "clock: a DBSC-bound browser next to one without DBSC.",
    )
    parser.add_argument("kind", choices=("dbsc",), help="the binding to demonstrate")
    parser.add_argument(
        "--mode", choices=("session", "hybrid", "both"), default="both", help="mode (both)"
    )
    parser.add_argument(
        "--bound-ttl",
        type=int,
        default=120,
        metavar="SECONDS",
        help="session mode: the bound cookie's lifetime (120); hybrid mode uses its "
        "access-token lifetime (300)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        from ..demo import create_app
        from ..demo.theft_dbsc import walk_through
    except ModuleNotFoundError as exc:
        print(
            f"coatcheck theft needs the demo extra ({exc.name} is missing): "
            "pip install 'coatcheck[demo]'",
            file=sys.stderr,
        )
        return 2
    if args.bound_ttl < 1:
        print("coatcheck theft: --bound-ttl must be at least 1 second", file=sys.stderr)
        return 2
    modes = ("session", "hybrid") if args.mode == "both" else (args.mode,)
    ok = walk_through(modes, make_app=create_app, bound_ttl=args.bound_ttl, emit=print)
    print("every step went as DBSC promises" if ok else "a step did NOT go as expected")
    return 0 if ok else 1
