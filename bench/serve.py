"""Serve one variant under uvicorn (one worker, uvloop, httptools) for the HTTP section.

Run by ``http_load.py``, one process per variant:
``python bench/serve.py --variant NAME --users N --credentials FILE``. It builds the app
inside the serving loop with ``N`` users logged in, writes their credential headers to
``FILE`` (one ``Name: value`` line per user, user ``i`` on line ``i``; an empty line for
a bare app), binds a free loopback port and prints one JSON line on stdout:
``{"status": "ready", "port": P, "stats_port": Q, "credential": [header, value],
"forged": [...], "users": N}`` (or ``"unavailable"`` / ``"failed"``), then serves until
SIGTERM.

``stats_port`` answers every connection with one JSON line, ``{cache: [hits, misses]}``
for the variant's caches, and closes it: the runner reads it before and after each
measured run. It is its own socket, so the measured app pays nothing for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import warnings
from pathlib import Path

import uvicorn
import uvloop
from fixtures import BenchKeys, Services
from harness import Unavailable
from variants import BuildContext, Built, by_name, cache_counts


def _say(payload: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # listening before "ready", so the parent's first request connects
    return sock


async def _stats_server(built: Built) -> tuple[asyncio.AbstractServer, int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counts = {label: cache_counts(cache) for label, cache in built.caches().items()}
        writer.write(json.dumps(counts).encode() + b"\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, sock=_listen())
    return server, server.sockets[0].getsockname()[1]


async def _serve(name: str, users: int, credentials: Path, tmp: Path) -> int:
    ctx = BuildContext(BenchKeys.generate(), Services.from_env(), tmp, users=users)
    try:
        built = await by_name(name).build(ctx)
    except Unavailable as exc:
        _say({"status": "unavailable", "reason": str(exc)})
        return 0
    except Exception as exc:
        _say({"status": "failed", "reason": repr(exc)})
        return 1
    lines = [f"{k}: {v}" for k, v in built.credentials] or [""]
    credentials.write_text("\n".join(lines) + "\n")
    sock = _listen()
    stats, stats_port = await _stats_server(built)
    config = uvicorn.Config(
        built.app,
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=2048,
    )
    server = uvicorn.Server(config)
    _say(
        {
            "status": "ready",
            "port": sock.getsockname()[1],
            "stats_port": stats_port,
            "credential": built.credential,
            "forged": built.forged,
            "users": len(built.credentials),
        }
    )
    try:
        await server.serve(sockets=[sock])
    finally:
        stats.close()
        await built.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--credentials", type=Path, required=True)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with (
        tempfile.TemporaryDirectory(prefix="coatcheck-serve-") as tmp,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        return runner.run(_serve(args.variant, args.users, args.credentials, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
