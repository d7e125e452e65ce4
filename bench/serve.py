"""Serve one variant under uvicorn (one worker, uvloop, httptools) for the HTTP section.

Run by ``http_load.py``, one process per variant:
``python bench/serve.py --variant NAME``. It builds the app inside the serving loop, binds
a free loopback port and prints one JSON line on stdout: ``{"status": "ready", "port": P,
"credential": [header, value], "forged": [...]}`` (or ``"unavailable"`` / ``"failed"``),
then serves until SIGTERM.
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
from variants import BuildContext, by_name


def _say(payload: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def _serve(name: str, tmp: Path) -> int:
    ctx = BuildContext(BenchKeys.generate(), Services.from_env(), tmp)
    try:
        built = await by_name(name).build(ctx)
    except Unavailable as exc:
        _say({"status": "unavailable", "reason": str(exc)})
        return 0
    except Exception as exc:
        _say({"status": "failed", "reason": repr(exc)})
        return 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # listening before "ready", so the parent's first request connects
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
            "credential": built.credential,
            "forged": built.forged,
        }
    )
    try:
        await server.serve(sockets=[sock])
    finally:
        await built.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with (
        tempfile.TemporaryDirectory(prefix="coatcheck-serve-") as tmp,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        return runner.run(_serve(args.variant, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
