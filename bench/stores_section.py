"""Stores and scale: delegated to ``bench/bench_stores.py`` (helper D's), never duplicated.

Its command line is used (``--json``, ``--skip``, ``--scale``, ``--quick``), each part in
its own child process with its own timeout, so a slow part cannot sink the others:

* Redis bytes per session (a private redis-server, ``used_memory`` delta);
* 10 thousand against ``scale`` live sessions (1 million in a full run), Redis and
  PostgreSQL, interleaved.

Its part 1 (validate per store) is skipped here: the micro section already measures
``SessionManager.validate`` per store, interleaved with ``store.get``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import Progress

__all__ = ["run_stores", "stores_markdown"]

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "bench_stores.py"


def _part(
    part: str, extra: list[str], timeout: float, progress: Progress, postgres_url: str
) -> dict[str, Any]:
    others = [p for p in ("validate", "memory", "scale") if p != part]
    with tempfile.TemporaryDirectory(prefix="coatcheck-stores-") as tmp:
        out_json = Path(tmp) / "out.json"
        cmd = [sys.executable, str(SCRIPT), "--json", str(out_json), "--postgres", postgres_url]
        for other in others:
            cmd += ["--skip", other]
        cmd += extra
        shown = " ".join(cmd[2:]).replace(str(out_json), "OUT.json")
        progress.say(f"stores: bench_stores.py {shown} (timeout {timeout:.0f} s)")
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"status": f"did not finish within {timeout:.0f} s"}
        if done.returncode != 0 or not out_json.exists():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {"status": f"failed (exit {done.returncode}): {tail[:200]}"}
        data = json.loads(out_json.read_text())
        return {"status": "ok", "data": data.get(part), "args": data.get("args")}


def run_stores(
    quick: bool,
    progress: Progress,
    *,
    timeouts: tuple[float, float],
    scale: int | None,
    postgres_url: str,
) -> dict[str, Any]:
    """Redis bytes/session always; the scale part only when ``scale`` is given."""
    if not SCRIPT.exists():
        return {"status": "not available yet: bench/bench_stores.py has not landed"}
    flags = ["--quick"] if quick else []
    out: dict[str, Any] = {"status": "ok"}
    out["memory"] = _part("memory", flags, timeouts[0], progress, postgres_url)
    if scale is None:
        out["scale"] = {"status": "skipped in --quick (a full run measures 10k vs 1M)"}
    else:
        out["scale"] = _part(
            "scale", [*flags, "--scale", str(scale)], timeouts[1], progress, postgres_url
        )
    return out


def stores_markdown(stores: dict[str, Any]) -> str:
    lines: list[str] = []
    memory = stores.get("memory", {})
    lines += ["### Redis memory per session (private redis-server, `used_memory` delta)", ""]
    if memory.get("status") == "ok" and isinstance(memory.get("data"), list):
        lines += ["| layout | sessions | stored value B | bytes per session |", "|---|---|---|---|"]
        for row in memory["data"]:
            lines.append(
                f"| {row.get('layout')} | {row.get('sessions'):,} | {row.get('value_bytes')} | "
                f"{row.get('bytes_per_session')} |"
            )
    else:
        lines.append(f"_{memory.get('status', 'not run')}_")
    lines.append("")
    scale = stores.get("scale", {})
    lines += ["### `SessionManager.validate` with 10k against many live sessions", ""]
    data = scale.get("data")
    if scale.get("status") == "ok" and isinstance(data, dict):
        lines += ["| store, live sessions | median µs | p99 µs | calls |", "|---|---|---|---|"]
        for name, row in data.items():
            if isinstance(row, dict) and "median_us" in row:
                lines.append(
                    f"| {name} | {row['median_us']:.1f} | {row['p99_us']:.1f} | "
                    f"{row.get('n', '')} |"
                )
        names = [n for n, r in data.items() if isinstance(r, dict) and "median_us" in r]
        for small, large in zip(names[::2], names[1::2], strict=False):
            ratio = data[large]["median_us"] / data[small]["median_us"]
            lines.append(f"\n{large} / {small}: median {ratio:.2f}x")
        if "load" in data:
            lines.append(f"\nbulk load: {data['load']}")
    else:
        lines.append(f"_{scale.get('status', 'not run')}_")
    return "\n".join(lines)
