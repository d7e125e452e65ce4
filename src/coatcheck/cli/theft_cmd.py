"""``coatcheck theft``: the stolen-token walk-through against a running demo, over HTTP.

It registers a throwaway user (or uses ``--username``/``--password``), logs in twice
through ``/api/login``, once as a plain bearer client and once with a DPoP key, then
plays the owner and a thief who copied both tokens (the same steps as the demo's
``/theft`` page, :func:`coatcheck.demo.theft.dpop_theft`) and prints what the server
answered each time. Both sessions are logged out at the end.

``coatcheck theft --dbsc`` tells the browser side instead, in this process on a simulated
clock (:func:`coatcheck.demo.theft_dbsc.walk_through`): a browser with Device Bound
Session Credentials and one without log in, malware copies their cookies, and the copies
are replayed before and after the bound cookie's lifetime, in session and hybrid mode.
It exits 0 when every step went as DBSC promises.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``theft`` subcommand."""
    parser = subparsers.add_parser(
        "theft",
        help="show a copied API token refused with DPoP, and working without (needs a "
        "demo); --dbsc: a copied browser cookie against DBSC",
        description="Against a running `coatcheck demo`: copy a bearer token and a DPoP-bound "
        "token to a thief and show what the server says.",
    )
    parser.add_argument(
        "--url", default="http://127.0.0.1:8000", help="the demo's URL (http://127.0.0.1:8000)"
    )
    parser.add_argument("--username", default=None, help="an existing user (default: a new one)")
    parser.add_argument("--password", default=None, help="that user's password")
    dbsc = parser.add_argument_group("browsers: DBSC (instead of the API walk-through)")
    dbsc.add_argument(
        "--dbsc",
        action="store_true",
        help="a copied browser cookie against Device Bound Session Credentials, in process "
        "on a simulated clock (no demo needed)",
    )
    dbsc.add_argument(
        "--mode", choices=("session", "hybrid", "both"), default="both", help="mode (both)"
    )
    dbsc.add_argument(
        "--bound-ttl",
        type=int,
        default=120,
        metavar="SECONDS",
        help="session mode: the bound cookie's lifetime (120); hybrid mode uses its "
        "access-token lifetime (300)",
    )
    parser.set_defaults(func=_run)


def _run_dbsc(args: argparse.Namespace) -> int:
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


def _run(args: argparse.Namespace) -> int:
    if args.dbsc:
        return _run_dbsc(args)
    try:
        import httpx

        from ..demo.theft import Minted, TheftStep, dpop_theft
        from ..dpop_client import DPoPAuth
    except ModuleNotFoundError as exc:
        print(
            f"coatcheck theft needs the demo extra ({exc.name} is missing): "
            "pip install 'coatcheck[demo]'",
            file=sys.stderr,
        )
        return 2
    if (args.username is None) != (args.password is None):
        print("coatcheck theft: give both --username and --password, or neither", file=sys.stderr)
        return 2

    async def walk() -> tuple[str, list[TheftStep]]:
        async with httpx.AsyncClient(base_url=args.url.rstrip("/"), timeout=10.0) as client:
            username, password = args.username, args.password
            if username is None:
                username, password = f"theft-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
                await client.post("/api/register", json={
                    "username": username, "password": password, "name": "Theft Demo"})
            credentials = {"username": username, "password": password, "remember": False}
            first = await client.post("/api/login", json=credentials)
            owner = DPoPAuth()
            second = await client.post("/api/login", json=credentials, auth=owner)
            for response in (first, second):
                if response.status_code not in (200, 400):
                    raise RuntimeError(f"login failed: {response.status_code} {response.text}")
            mode = second.json().get("mode", "?")
            plain = None
            if first.status_code == 200:
                body = first.json()
                plain = Minted(body["token"], body["token_type"], body.get("refresh_token"))
            body = second.json()
            if body.get("token_type") != "DPoP":
                raise RuntimeError("this demo does not bind tokens (started with --no-dpop?)")
            bound = Minted(body["token"], body["token_type"], body.get("refresh_token"))
            try:
                steps = await dpop_theft(client, plain=plain, bound=bound, owner=owner)
            finally:
                await client.post("/api/logout", auth=owner)
                if plain is not None:
                    await client.post(
                        "/api/logout", headers={"Authorization": f"Bearer {plain.token}"}
                    )
            return mode, steps

    try:
        mode, steps = asyncio.run(walk())
    except (httpx.HTTPError, RuntimeError, ValueError) as exc:
        print(f"coatcheck theft: {exc} (is `coatcheck demo` running at {args.url}?)",
              file=sys.stderr)
        return 1
    print(f"The demo at {args.url} ({mode} mode): a copied API token, with and without DPoP\n")
    for s in steps:
        verdict = "" if s.thief_got_in is None else (
            "  <- the theft works" if s.thief_got_in else "  <- refused"
        )
        print(f"[{s.binding:>4}] {s.actor:<5} {s.action}")
        print(f"        sends {s.sent}")
        print(f"        {s.status} {s.answer}{verdict}")
    stolen = [s for s in steps if s.thief_got_in]
    refused = [s for s in steps if s.thief_got_in is False]
    print(f"\n{len(stolen)} theft(s) worked, all without binding; {len(refused)} refused.")
    return 0
