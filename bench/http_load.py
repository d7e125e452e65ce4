"""HTTP section: each variant under uvicorn in its own process, load from another process.

All servers start once (in parallel), then the variants are interleaved: every round runs
each variant in turn (order rotated each round), a warm-up then a measured run of
``wrk -t1 -c32 --latency`` with the credential header (or ``loadgen.py`` without wrk).
Before the first round each server must pass the gate over HTTP: 200 with the name for
the credential, 401 without it and with a forged one. Ratios are to the group's bare app
in the same round, then the median over rounds.
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
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fixtures import USER_NAME
from harness import Progress, median
from variants import BARE_OF_GROUP, VARIANTS

__all__ = ["HttpBudget", "load_tool", "run_http"]

HERE = Path(__file__).resolve().parent


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


def _load(port: int, header: list[str] | None, seconds: int, connections: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/me"
    if shutil.which("wrk"):
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
        if header:
            cmd += ["-H", f"{header[0]}: {header[1]}"]
        out = subprocess.run(
            [*cmd, url], capture_output=True, text=True, timeout=seconds + 20, check=False
        )
        return parse_wrk(out.stdout)
    cmd = [
        sys.executable, str(HERE / "loadgen.py"), "--port", str(port),
        "--duration", str(seconds), "--connections", str(connections),
    ]
    if header:
        cmd += ["--header", f"{header[0]}: {header[1]}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 20, check=False)
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}


def _get(port: int, header: list[str] | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/me", headers=dict([header]) if header else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _http_gate(role: str, port: int, info: dict[str, Any]) -> str | None:
    status, body = _get(port, info["credential"])
    if status != 200 or USER_NAME.encode() not in body:
        return f"credential got {status}"
    if role != "limit":
        for what, header in (("no credential", None), ("forged", info["forged"])):
            status, _ = _get(port, header)
            if status != 401:
                return f"{what} got {status}, not 401"
    return None


class _Servers(contextlib.AbstractContextManager["_Servers"]):
    """One uvicorn child per variant; every one is stopped on exit, by its own pid."""

    def __init__(self, names: list[str], progress: Progress, timeout: float = 60.0) -> None:
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.info: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        for name in names:
            self.procs[name] = subprocess.Popen(
                [sys.executable, str(HERE / "serve.py"), "--variant", name],
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
            progress.say(f"http: {len(self.procs) - len(waiting)}/{len(self.procs)} servers up")
        for name in waiting:
            self.status[name] = "server did not start in time"

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def run_http(budget: HttpBudget, progress: Progress, names: list[str]) -> dict[str, Any]:
    """Requests/s, p50 and p99 per variant; ratio to the group's bare app, per round."""
    rows: dict[str, dict[str, Any]] = {}
    progress.say(f"http: starting {len(names)} servers (uvicorn, 1 worker, uvloop + httptools)")
    with _Servers(names, progress) as servers:
        status = dict(servers.status)
        live: list[str] = []
        for name in names:
            info = servers.info.get(name)
            if info is None:
                continue
            role = next(v.role for v in VARIANTS if v.name == name)
            try:
                reason = _http_gate(role, info["port"], info)
            except OSError as exc:
                reason = f"could not connect ({exc})"
            if reason:
                status[name] = f"failed the gate: {reason}"
                progress.say(f"http: {name} failed the gate: {reason}")
            else:
                live.append(name)
                rows[name] = {"rounds": []}
        for r in range(budget.rounds):
            k = r % len(live) if live else 0
            for name in [*live[k:], *live[:k]]:
                info = servers.info[name]
                if budget.warmup:
                    _load(info["port"], info["credential"], budget.warmup, budget.connections)
                result = _load(
                    info["port"], info["credential"], budget.duration, budget.connections
                )
                rows[name]["rounds"].append(result)
                progress.say(
                    f"http: round {r + 1}/{budget.rounds} {name}: "
                    f"{result.get('rps', float('nan')):,.0f} req/s"
                )
    for r in range(budget.rounds):
        for variant in VARIANTS:
            row = rows.get(variant.name)
            bare = rows.get(BARE_OF_GROUP[variant.group])
            if row is None or bare is None or r >= len(row["rounds"]) or r >= len(bare["rounds"]):
                continue
            base = bare["rounds"][r].get("rps", float("nan"))
            row["rounds"][r]["ratio"] = row["rounds"][r].get("rps", float("nan")) / base
            base_p99 = bare["rounds"][r].get("p99_ms", float("nan"))
            row["rounds"][r]["p99_ratio"] = row["rounds"][r].get("p99_ms", float("nan")) / base_p99
    for row in rows.values():
        rounds = row["rounds"]
        for key in ("rps", "p50_ms", "p99_ms", "ratio", "p99_ratio"):
            values = [x[key] for x in rounds if key in x]
            row[key] = median(values)
            if key == "ratio" and values:
                row["ratio_range"] = [min(values), max(values)]
        row["non2xx"] = sum(x.get("non2xx", 0) for x in rounds)
        row["errors"] = sum(x.get("errors", 0) for x in rounds)
    return {"rows": rows, "status": status, "tool": load_tool()}
