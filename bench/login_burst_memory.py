"""Peak memory of the real demo process under a burst of unknown-user logins (issue 12).

Standalone::

    .venv/bin/python bench/login_burst_memory.py                      # this checkout
    .venv/bin/python bench/login_burst_memory.py --compare-ref 8523f20  # and an older one
    .venv/bin/python bench/login_burst_memory.py --logins 100 --one-address

Each run starts ``python -m coatcheck demo`` (session mode, SQLite, argon2-cffi's default
parameters: 64 MiB per hash) in a fresh folder, waits until it answers, reads its
resident memory, then sends ``--logins`` concurrent ``POST /api/login`` for distinct
unknown usernames, each from its own loopback source address (127.0.0.2, 127.0.0.3 ...:
an attacker with many addresses, so the per-address limit does not hide the hashing
cost; ``--one-address`` sends them all from 127.0.0.1). The peak is the kernel's
high-water mark of the process's resident set (``VmHWM`` in ``/proc/<pid>/status``), so
no short spike is missed between samples. Linux only.

``--compare-ref`` extracts ``src/`` of that git revision into a temporary folder and runs
the same burst against it first, with the same interpreter and packages, so both numbers
come from one run on one machine and the ratio is meaningful.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
_START_TIMEOUT = 30.0


@dataclass
class Result:
    label: str
    idle_mib: float
    peak_mib: float
    statuses: Counter[int]
    seconds: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def _wait_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the demo exited before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the demo did not start listening in time")


async def _burst(port: int, logins: int, one_address: bool) -> Counter[int]:
    async def login(i: int) -> int:
        # A client of its own per source address: the server sees distinct client IPs.
        source = "127.0.0.1" if one_address else f"127.0.{2 + i // 250}.{2 + i % 250}"
        transport = httpx.AsyncHTTPTransport(local_address=source)
        async with httpx.AsyncClient(transport=transport, timeout=120.0) as client:
            response = await client.post(
                f"http://127.0.0.1:{port}/api/login",
                json={"username": f"nobody{i}", "password": "wrong password"},
            )
            return response.status_code

    return Counter(await asyncio.gather(*(login(i) for i in range(logins))))


def run_one(label: str, src: Path, logins: int, one_address: bool) -> Result:
    """One demo process from ``src``: idle RSS, then the burst and its peak RSS."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(src)}
    with tempfile.TemporaryDirectory(prefix="coatcheck-burst-") as folder:
        command = [
            sys.executable, "-m", "coatcheck", "demo", "--port", str(port),
            "--store", f"sqlite:///{Path(folder) / 'x.db'}",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            _wait_listening(process, port)
            httpx.get(f"http://127.0.0.1:{port}/", timeout=30.0)  # warm: first page rendered
            time.sleep(0.5)
            idle = _status_kib(process.pid, "VmRSS")
            started = time.monotonic()
            statuses = asyncio.run(_burst(port, logins, one_address))
            seconds = time.monotonic() - started
            peak = _status_kib(process.pid, "VmHWM")
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return Result(label, idle / 1024, peak / 1024, statuses, seconds)


def _extract(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=100)
    parser.add_argument("--one-address", action="store_true")
    parser.add_argument("--compare-ref", help="also measure this git revision, first")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="coatcheck-ref-") as old:
        if args.compare_ref:
            src = _extract(args.compare_ref, Path(old))
            results.append(run_one(args.compare_ref, src, args.logins, args.one_address))
        results.append(run_one("this checkout", ROOT / "src", args.logins, args.one_address))
    where = "one address" if args.one_address else "one address each"
    print(f"{args.logins} concurrent unknown-user logins ({where}), demo in session mode")
    print("| code | idle RSS MiB | peak RSS MiB | burst s | answers |")
    print("|---|---|---|---|---|")
    for r in results:
        answers = ", ".join(f"{n} x {code}" for code, n in sorted(r.statuses.items()))
        row = [r.label, f"{r.idle_mib:.0f}", f"{r.peak_mib:.0f}", f"{r.seconds:.1f}", answers]
        print("| " + " | ".join(row) + " |")
    if len(results) == 2:
        ratio = results[1].peak_mib / results[0].peak_mib
        print(f"peak ratio (this checkout / {results[0].label}): {ratio:.2f}")


if __name__ == "__main__":
    main()
