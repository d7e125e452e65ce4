"""``coatcheck demo``: run the demo app under uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from datetime import timedelta
from typing import Any

__all__ = ["register"]

_DEFAULT_STORE = "sqlite:///coatcheck.db"
_MODES = ("session", "jwt", "hybrid")


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="run the demo app (sessions or JWTs, cookie and bearer)",
        description="Run the coatcheck demo app on a local address and print its URL.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument(
        "--mode", choices=_MODES, default="session", help="authentication mode (session)"
    )
    parser.add_argument(
        "--store",
        default=_DEFAULT_STORE,
        metavar="URL",
        help=f"session store URL ({_DEFAULT_STORE}, in the working folder); also memory://, "
        "sqlite:////absolute/path.db, redis://127.0.0.1:6379/0, "
        "redis+cluster://h1:7000,h2:7001/, redis+sentinel://h1:26379,h2:26379/mymaster/0, "
        "postgresql://user@host/db",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes on one port (1); they share sessions, login limits and "
        "revocations through the store, so it must not be memory://",
    )
    parser.add_argument(
        "--alg",
        default="ES256",
        choices=("ES256", "Ed25519", "RS256", "HS256"),
        help="JWT signing algorithm in jwt and hybrid modes (ES256; HS256 leaves the JWKS empty)",
    )
    parser.add_argument(
        "--access-ttl",
        type=int,
        default=300,
        metavar="SECONDS",
        help="hybrid mode: access-token lifetime, at least 11 (longer than the 10 s grace "
        "for a replaced refresh token) (300; try 30 to watch refreshes)",
    )
    parser.add_argument(
        "--feed",
        default=None,
        metavar="URL",
        help="hybrid mode: revocation feed, redis[+cluster|+sentinel]://... or postgresql://... "
        "(default: the "
        "store's server when it is Redis or PostgreSQL; 'none' to disable)",
    )
    parser.add_argument(
        "--bound-ttl",
        type=int,
        default=120,
        metavar="SECONDS",
        help="session mode: lifetime of the DBSC bound cookie for browsers that bind a "
        "device key (120); hybrid mode binds the access token (--access-ttl)",
    )
    parser.add_argument(
        "--no-dbsc",
        action="store_true",
        help="do not offer Device Bound Session Credentials to browsers",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="serve Prometheus metrics at /metrics (logins, sessions, refreshes, CSRF "
        "refusals, store latency, feed lag, cookie sizes); with --workers, summed over them",
    )
    parser.add_argument(
        "--https-proxy",
        action="store_true",
        help="served over HTTPS by a TLS proxy: Secure cookies with the __Host- prefix",
    )
    dpop = parser.add_argument_group("DPoP (RFC 9449) on the API; on by default")
    dpop.add_argument(
        "--no-dpop", action="store_true", help="ignore DPoP proofs: only plain bearer tokens"
    )
    dpop.add_argument(
        "--dpop-required",
        action="store_true",
        help="issue only DPoP-bound tokens and refuse unbound bearer tokens",
    )
    dpop.add_argument(
        "--dpop-nonce", action="store_true", help="proofs must carry a server nonce (DPoP-Nonce)"
    )
    dpop.add_argument(
        "--public-origin",
        default=None,
        metavar="ORIGIN",
        help="scheme://host[:port] browsers and API clients use when a proxy stands in front: "
        "the CSRF Origin check's own origin, and the one DPoP proofs name (default: the "
        "request's own scheme and Host)",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        type=_trusted_proxies,
        default=(),
        metavar="IPS",
        help="comma-separated addresses or networks of the proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto are trusted ('*' for any), as uvicorn's option (default: "
        "none; the client IP is the TCP peer, so behind a proxy name it here or every "
        "client shares the proxy's login-throttling budget)",
    )
    parser.set_defaults(func=_run)


def _trusted_proxies(value: str) -> tuple[str, ...]:
    entries = tuple(part.strip() for part in value.split(",") if part.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not an IP address or network: {entry!r} (e.g. 127.0.0.1,10.0.0.0/8)"
            ) from None
    return entries


def _run(args: argparse.Namespace) -> int:
    try:
        from ..demo import DemoConfig, create_app, serve
        from ..demo.app import check_workers, describe_store
    except ModuleNotFoundError as exc:
        print(
            f"coatcheck demo needs the demo extra ({exc.name} is missing): "
            "pip install 'coatcheck[demo]'",
            file=sys.stderr,
        )
        return 2
    if not 0 < args.port < 65536:
        print("coatcheck demo: --port must be between 1 and 65535", file=sys.stderr)
        return 2
    if args.bound_ttl < 1:
        print("coatcheck demo: --bound-ttl must be at least 1 second", file=sys.stderr)
        return 2
    if args.access_ttl < 11:
        print(
            "coatcheck demo: --access-ttl must be at least 11 seconds (longer than the 10 s "
            "in which a replaced refresh token is still honoured)",
            file=sys.stderr,
        )
        return 2
    if args.workers < 1:
        print("coatcheck demo: --workers must be at least 1", file=sys.stderr)
        return 2
    config = DemoConfig(
        mode=args.mode, store_url=args.store, https=args.https_proxy, alg=args.alg,
        access_ttl=timedelta(seconds=args.access_ttl), feed_url=args.feed,
        dpop=not args.no_dpop, dpop_required=args.dpop_required,
        dpop_nonce=args.dpop_nonce, public_origin=args.public_origin,
        dbsc=not args.no_dbsc, bound_ttl=timedelta(seconds=args.bound_ttl),
        metrics=args.metrics,
    )  # fmt: skip
    app = create_app(config)  # a bad --store or --public-origin fails here, before the banner
    check_workers(config, args.workers)
    host = f"[{args.host}]" if ":" in args.host else args.host
    behind = " (behind your HTTPS proxy)" if args.https_proxy else ""
    trusted = args.forwarded_allow_ips
    forwarded = (
        f"; X-Forwarded-For trusted from {', '.join(trusted)}" if trusted
        else "; X-Forwarded-For ignored (no --forwarded-allow-ips)"
    )  # fmt: skip
    workers = f", {args.workers} workers" if args.workers > 1 else ""
    metrics = f"; metrics at http://{host}:{args.port}/metrics" if args.metrics else ""
    # The store as the page shows it: a network URL's password never reaches the terminal.
    banner = (
        f"coatcheck demo ({args.mode} mode, store {describe_store(args.store)}{workers}) "
        f"serving on http://{host}:{args.port}/{behind}{forwarded}{metrics}"
    )
    # Printed once the port listens (a taken port is a ConfigurationError: exit 2).
    serve(
        app, host=args.host, port=args.port, forwarded_allow_ips=trusted, workers=args.workers,
        config=config, announce=lambda: print(banner, flush=True),
    )  # fmt: skip
    return 0
