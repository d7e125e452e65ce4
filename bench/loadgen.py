"""A bounded HTTP/1.1 keep-alive load client, used when Debian's wrk is not installed.

``python bench/loadgen.py --port P --credentials FILE --order FILE --duration 4
--connections 32 --max-requests 200000`` prints one JSON line: requests, rps, p50/p99 (ms),
non-2xx responses and socket errors. Like ``wrk_cycle.lua``, it sends each request with
the next user's header line from the credentials file, in the order the order file gives
(user indexes, one per line), with every request prebuilt. It runs in its own process
(and so on its own core as far as the OS allows); it is heavier than wrk, so absolute
req/s read lower with it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import uvloop


async def _connection(
    port: int,
    following: Callable[[], bytes],
    deadline: float,
    budget: list[int],
    lat: list[float],
    bad: list[int],
) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        bad[1] += 1
        return
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            t0 = time.perf_counter()
            writer.write(following())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if not 200 <= status < 400:
                bad[0] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        bad[1] += 1
    finally:
        writer.close()


def _requests(args: argparse.Namespace) -> Callable[[], bytes]:
    head = [f"GET {args.path} HTTP/1.1", f"Host: 127.0.0.1:{args.port}"]
    built = []
    for line in Path(args.credentials).read_text().split("\n")[:-1]:
        lines = [*head, line] if line else head
        built.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    # A bare app's file holds one empty line: that request for every index.
    order = [built[int(i) if len(built) > 1 else 0] for i in Path(args.order).read_text().split()]
    return itertools.cycle(order).__next__


async def _run(args: argparse.Namespace) -> dict[str, float]:
    following = _requests(args)
    latencies: list[float] = []
    bad = [0, 0]
    budget = [args.max_requests]
    start = time.perf_counter()
    deadline = start + args.duration
    await asyncio.wait_for(
        asyncio.gather(
            *(
                _connection(args.port, following, deadline, budget, latencies, bad)
                for _ in range(args.connections)
            )
        ),
        timeout=args.duration + 10,
    )
    elapsed = time.perf_counter() - start
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "non2xx": bad[0],
        "errors": bad[1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/me")
    parser.add_argument("--credentials", required=True, help="one header line per user")
    parser.add_argument("--order", required=True, help="user indexes, one per line")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--max-requests", type=int, default=500_000)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(_run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
