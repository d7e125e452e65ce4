"""``coatcheck theft``: the stolen-token walk-through against a running demo, over HTTP.

It registers a throwaway user (or uses ``--username``/``--password``), logs in twice
through ``/api/login``, once as a plain bearer client and once with a DPoP key, then
plays the owner and a thief who copied both tokens (the same steps as the demo's
``/theft`` page, :func:`coatcheck.demo.theft.dpop_theft`) and prints what the server
answered each time. Both sessions are logged out at the end.
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
        help="show a copied API token refused with DPoP, and working without (needs a demo)",
        description="Against a running `coatcheck demo`: copy a bearer token and a DPoP-bound "
        "token to a thief and show what the server says.",
    )
    parser.add_argument(
        "--url", default="http://127.0.0.1:8000", help="the demo's URL (http://127.0.0.1:8000)"
    )
    parser.add_argument("--username", default=None, help="an existing user (default: a new one)")
    parser.add_argument("--password", default=None, help="that user's password")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
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
