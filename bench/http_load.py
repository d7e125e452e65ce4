"""HTTP section: each variant under uvicorn in its own process, load from another process.

All servers start once (in parallel), each with ``users`` users logged in. Then, for
each regime (``many``, ``zipf``, ``one``; see :mod:`inprocess`), the variants are
interleaved: every round runs each variant in turn (order rotated each round), a
warm-up then a measured run of ``wrk -t1 -c32 --latency`` with ``wrk_cycle.lua``,
which sends each request with the next user's credential of the regime's order (or
``loadgen.py`` doing the same, without wrk). The load client is the same script for
every variant and regime, bare apps included (their credential file holds no header).

Before the first round each server must pass the gate over HTTP: the first, a middle
and the last user's credentials get 200 and that user's name, no credential and a
forged one get 401. Ratios are to the group's bare app in the same round and regime,
then the median over rounds. Around every measured run the runner reads the server's
cache counters (its stats port) for the hit rates, and the CPU the server and the load
client used, to show which one was the bottleneck.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fixtures import user_name
from harness import Progress, median
from inprocess import REGIMES, regime_sequence
from variants import BARE_OF_GROUP, VARIANTS

__all__ = ["HttpBudget", "load_tool", "run_http"]

HERE = Path(__file__).resolve().parent
_TICKS = os.sysconf("SC_CLK_TCK")


class HttpBudget:
    def __init__(self, *, rounds: int, duration: int, warmup: int, connections: int = 32) -> None:
        self.rounds = rounds
        self.duration = duration
        self.warmup = warmup
        self.connections = connections


def load_tool() -> str:
    return "wrk" if shutil.which("wrk") else "loadgen.py"


def _unit_ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not m:
        return float("nan")
    number, unit = float(m.group(1)), m.group(2)
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(output: str) -> dict[str, float]:
    result: dict[str, float] = {"non2xx": 0, "errors": 0}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", output):
        result["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in", output):
        result["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        if m := re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", output, re.MULTILINE):
            result[key] = _unit_ms(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        result["non2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors:(.*)", output):
        result["errors"] = sum(int(n) for n in re.findall(r"\d+", m.group(1)))
    return result


def _run_client(cmd: list[str], timeout: float) -> tuple[str, float]:
    """Run the load client; (its stdout, the CPU seconds it used)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return out.read(), usage.ru_utime + usage.ru_stime


def _load(
    port: int, credentials: Path, order: Path, seconds: int, connections: int
) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/me"
    if shutil.which("wrk"):
        cmd = [
            "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s",
            "-s", str(HERE / "wrk_cycle.lua"), url, "--", str(credentials), str(order),
        ]
        output, cpu = _run_client(cmd, seconds + 30)
        result = parse_wrk(output)
    else:
        cmd = [
            sys.executable, str(HERE / "loadgen.py"), "--port", str(port),
            "--duration", str(seconds), "--connections", str(connections),
            "--credentials", str(credentials), "--order", str(order),
        ]
        output, cpu = _run_client(cmd, seconds + 30)
        lines = output.strip().splitlines()
        result = json.loads(lines[-1]) if lines else {}
    result["client_cpu"] = cpu / seconds
    return result


def _get(port: int, header: list[str] | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/me", headers=dict([header]) if header else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _credential(credentials: Path, i: int) -> list[str] | None:
    with credentials.open() as lines:
        for n, line in enumerate(lines):
            if n == i:
                name, _, value = line.rstrip("\n").partition(": ")
                return [name, value] if name else None
    return None


def _http_gate(role: str, port: int, info: dict[str, Any], credentials: Path) -> str | None:
    users = max(1, int(info.get("users") or 1))
    for i in sorted({0, users // 2, users - 1}):
        status, body = _get(port, _credential(credentials, i))
        if status != 200 or user_name(i if info.get("users") else 0).encode() not in body:
            return f"user {i}'s credential got {status}"
    if role != "limit":
        for what, header in (("no credential", None), ("forged", info["forged"])):
            status, _ = _get(port, header)
            if status != 401:
                return f"{what} got {status}, not 401"
    return None


def _stats(port: int) -> dict[str, list[int]]:
    """The server's cache counters, ``{cache: [hits, misses]}`` (empty if it has none)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU a process used so far (Linux /proc), or NaN."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return float("nan")


class _Servers(contextlib.AbstractContextManager["_Servers"]):
    """One uvicorn child per variant; every one is stopped on exit, by its own pid."""

    def __init__(
        self, names: list[str], users: int, folder: Path, progress: Progress,
        timeout: float = 240.0,
    ) -> None:
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.info: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}
        self.credentials = {name: folder / f"{name}.credentials" for name in names}
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        for name in names:
            self.procs[name] = subprocess.Popen(
                [sys.executable, str(HERE / "serve.py"), "--variant", name,
                 "--users", str(users), "--credentials", str(self.credentials[name])],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
        deadline = time.monotonic() + timeout
        waiting = dict(self.procs)
        while waiting and time.monotonic() < deadline:
            ready, _, _ = select.select([p.stdout for p in waiting.values()], [], [], 1.0)
            for name, proc in list(waiting.items()):
                if proc.stdout in ready:
                    line = proc.stdout.readline() if proc.stdout else ""
                    del waiting[name]
                    info = json.loads(line) if line.strip() else {"status": "failed"}
                    if info.get("status") == "ready":
                        self.info[name] = info
                    elif info.get("status") == "unavailable":
                        self.status[name] = f"not available yet: {info.get('reason')}"
                    else:
                        self.status[name] = f"server failed: {info.get('reason', 'no output')}"
                    progress.say(
                        f"http: {len(self.procs) - len(waiting)}/{len(self.procs)} servers up"
                    )
        for name in waiting:
            self.status[name] = "server did not start in time"

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _orders(folder: Path, users: int) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for regime in REGIMES:
        path = folder / f"order-{regime}.txt"
        path.write_text("\n".join(map(str, regime_sequence(regime, users))) + "\n")
        out[regime] = path
    return out


def _rate_deltas(before: dict[str, list[int]], after: dict[str, list[int]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, (hits, misses) in after.items():
        h0, m0 = before.get(label, [0, 0])
        out[label] = {"hits": hits - h0, "misses": misses - m0}
    return out


def _ratio(a: float | None, b: float | None) -> float:
    return a / b if a and b else float("nan")


def _summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"rounds": rounds}
    for key in ("rps", "p50_ms", "p99_ms", "ratio", "p99_ratio", "client_cpu", "server_cpu"):
        values = [x[key] for x in rounds if key in x]
        row[key] = median(values)
        if key == "ratio" and values:
            row["ratio_range"] = [min(values), max(values)]
    row["non2xx"] = sum(x.get("non2xx", 0) for x in rounds)
    row["errors"] = sum(x.get("errors", 0) for x in rounds)
    caches: dict[str, dict[str, float]] = {}
    for x in rounds:
        for label, c in x.get("caches", {}).items():
            total = caches.setdefault(label, {"hits": 0, "misses": 0})
            total["hits"] += c["hits"]
            total["misses"] += c["misses"]
    for c in caches.values():
        looked = c["hits"] + c["misses"]
        c["rate"] = c["hits"] / looked if looked else float("nan")
    row["caches"] = caches
    return row


def run_http(
    budget: HttpBudget, progress: Progress, names: list[str], users: int
) -> dict[str, Any]:
    """Requests/s, p50 and p99 per variant and regime; ratio to the group's bare app."""
    names = [n for n in names if next(v for v in VARIANTS if v.name == n).http]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    progress.say(
        f"http: starting {len(names)} servers (uvicorn, 1 worker, uvloop + httptools), "
        f"{users:,} users each"
    )
    with (
        tempfile.TemporaryDirectory(prefix="coatcheck-http-") as tmp,
        _Servers(names, users, Path(tmp), progress) as servers,
    ):
        folder = Path(tmp)
        orders = _orders(folder, users)
        status = dict(servers.status)
        live: list[str] = []
        for name in names:
            info = servers.info.get(name)
            if info is None:
                continue
            role = next(v.role for v in VARIANTS if v.name == name)
            try:
                reason = _http_gate(role, info["port"], info, servers.credentials[name])
            except OSError as exc:
                reason = f"could not connect ({exc})"
            if reason:
                status[name] = f"failed the gate: {reason}"
                progress.say(f"http: {name} failed the gate: {reason}")
            else:
                live.append(name)
                raw[name] = {regime: [] for regime in REGIMES}
        for regime in REGIMES:
            for r in range(budget.rounds):
                k = r % len(live) if live else 0
                for name in [*live[k:], *live[:k]]:
                    info = servers.info[name]
                    creds, pid = servers.credentials[name], servers.procs[name].pid
                    if budget.warmup and r == 0:
                        # A server keeps its caches between its runs: once per regime.
                        _load(info["port"], creds, orders[regime], budget.warmup,
                              budget.connections)
                    before = _stats(info["stats_port"])
                    cpu0 = _cpu_seconds(pid)
                    result = _load(
                        info["port"], creds, orders[regime], budget.duration, budget.connections
                    )
                    result["server_cpu"] = (_cpu_seconds(pid) - cpu0) / budget.duration
                    result["caches"] = _rate_deltas(before, _stats(info["stats_port"]))
                    raw[name][regime].append(result)
                    progress.say(
                        f"http: {regime} round {r + 1}/{budget.rounds} {name}: "
                        f"{result.get('rps', float('nan')):,.0f} req/s"
                    )
    rows: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        mine = raw.get(variant.name)
        bare = raw.get(BARE_OF_GROUP[variant.group])
        if mine is None:
            continue
        rows[variant.name] = {}
        for regime in REGIMES:
            rounds = mine[regime]
            for r, result in enumerate(rounds):
                if bare is None or r >= len(bare[regime]):
                    continue
                base = bare[regime][r]
                result["ratio"] = _ratio(result.get("rps"), base.get("rps"))
                result["p99_ratio"] = _ratio(result.get("p99_ms"), base.get("p99_ms"))
            rows[variant.name][regime] = _summarise(rounds)
    return {"rows": rows, "status": status, "tool": load_tool(), "users": users,
            "regimes": list(REGIMES)}
