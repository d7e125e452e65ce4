"""Where the time goes: profiles of many-users requests, written next to the results.

For each profiled variant (coatcheck jwt and session requests by default), built with
the run's users and driven in the ``many`` regime in process (as the in-process section
does), two views:

* the top frames by own time, from :mod:`cProfile` over a fixed number of requests
  (deterministic, so the call counts per request are exact; it slows small functions
  down more than big ones, so read the shares, not the microseconds);
* a flame graph (SVG), from a sampling profiler: a CPU-time timer (``ITIMER_PROF``)
  interrupts the loop every millisecond and the Python stack is recorded. Only the
  standard library is used; C functions show as the Python frame that called them.
"""

from __future__ import annotations

import cProfile
import html
import pstats
import signal
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any

from harness import Progress
from inprocess import _caller, _warm, regime_sequence
from variants import BuildContext, by_name

__all__ = ["PROFILED", "profile_markdown", "run_profiles"]

#: The variants profiled: a JWT request and a session request on each local store.
PROFILED = ("coatcheck-jwt", "coatcheck-session-sqlite", "coatcheck-session-redis")
_TOP = 25


async def _drive(call: Callable[[], Awaitable[object]], n: int) -> None:
    for _ in range(n):
        await call()


def _top_frames(profile: cProfile.Profile, requests: int) -> list[dict[str, Any]]:
    stats = pstats.Stats(profile)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in raw.items():
        rows.append(
            {
                "function": function,
                "where": _short(filename, line),
                "calls_per_request": calls / requests,
                "own_share": own / total,
                "cumulative_share": cumulative / total,
            }
        )
    rows.sort(key=lambda r: r["own_share"], reverse=True)
    return rows[:_TOP]


def _short(filename: str, line: int) -> str:
    if filename == "~":
        return "(built-in)"
    parts = Path(filename).parts
    for anchor in ("coatcheck", "site-packages", "bench", "lib"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            return f"{'/'.join(parts[i + (anchor != 'coatcheck'):])}:{line}"
    return f"{Path(filename).name}:{line}"


class _Sampler:
    """Every ``interval`` CPU seconds, record the Python stack (main thread)."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.stacks: Counter[tuple[str, ...]] = Counter()

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        stack: list[str] = []
        while frame is not None:
            code = frame.f_code
            stack.append(f"{code.co_name} ({_short(code.co_filename, code.co_firstlineno)})")
            frame = frame.f_back
        self.stacks[tuple(reversed(stack))] += 1

    def __enter__(self) -> _Sampler:
        self._previous = signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, self._previous)


def _trim(stacks: Counter[tuple[str, ...]], anchor: str) -> Counter[tuple[str, ...]]:
    """Start each stack at the request (the first frame whose name has ``anchor``)."""
    out: Counter[tuple[str, ...]] = Counter()
    for stack, n in stacks.items():
        for i, name in enumerate(stack):
            if name.startswith(anchor):
                out[stack[i:]] += n
                break
    return out


def flame_svg(stacks: Counter[tuple[str, ...]], title: str) -> str:
    """A flame graph: one box per frame, as wide as its share of the samples."""
    tree: dict[str, Any] = {"n": 0, "kids": {}}
    for stack, n in stacks.items():
        node = tree
        node["n"] += n
        for name in stack:
            node = node["kids"].setdefault(name, {"n": 0, "kids": {}})
            node["n"] += n
    total = tree["n"] or 1
    width, row, top = 1200.0, 17, 40
    depth = max((len(s) for s in stacks), default=1)
    height = top + row * depth + 20
    boxes: list[str] = []

    def walk(node: dict[str, Any], x: float, level: int) -> None:
        for name, kid in sorted(node["kids"].items(), key=lambda kv: -kv[1]["n"]):
            w = width * kid["n"] / total
            if w >= 0.5:
                y = height - 20 - row * (level + 1)
                share = 100 * kid["n"] / total
                hue = 20 + zlib.crc32(name.split(" ")[0].encode()) % 40
                label = html.escape(name if w > 7 * len(name) else name[: int(w / 7)])
                boxes.append(
                    f'<g><title>{html.escape(name)}: {share:.1f}% of samples</title>'
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" '
                    f'fill="hsl({hue},80%,60%)" rx="2"/>'
                    f'<text x="{x + 3:.1f}" y="{y + 12}" font-size="11" '
                    f'font-family="monospace">{label if w > 21 else ""}</text></g>'
                )
                walk(kid, x, level + 1)
            x += w

    walk(tree, 0.0, 0)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
        f'viewBox="0 0 {width:.0f} {height}">'
        f'<rect width="100%" height="100%" fill="#fff"/>'
        f'<text x="6" y="20" font-size="15" font-family="sans-serif">{html.escape(title)}'
        f" ({total} samples; hover a box for its share)</text>"
        + "".join(boxes)
        + "</svg>\n"
    )


async def run_profiles(
    ctx: BuildContext,
    progress: Progress,
    out_dir: Path,
    stem: str,
    *,
    requests: int,
    sample_seconds: float,
    names: tuple[str, ...] = PROFILED,
) -> dict[str, Any]:
    """Profile each variant in the ``many`` regime; write the flame graphs; the tables."""
    result: dict[str, Any] = {"users": ctx.users, "requests": requests, "variants": {}}
    sequence = regime_sequence("many", ctx.users)
    for name in names:
        try:
            built = await by_name(name).build(ctx)
        except Exception as exc:
            result["variants"][name] = {"status": f"not profiled: {exc!r}"}
            continue
        try:
            call = _caller(built, sequence, [0])
            await _warm(call)
            progress.say(f"profile: {name}, {requests:,} requests under cProfile")
            profile = cProfile.Profile()
            profile.enable()
            await _drive(call, requests)
            profile.disable()
            top = _top_frames(profile, requests)
            progress.say(f"profile: {name}, sampling for {sample_seconds:.0f} s")
            with _Sampler() as sampler:
                deadline = time.monotonic() + sample_seconds
                while time.monotonic() < deadline:
                    await _drive(call, 500)
            stacks = _trim(sampler.stacks, "call (")
            svg = out_dir / f"{stem}-flame-{name}.svg"
            svg.write_text(
                flame_svg(stacks, f"{name}, {ctx.users:,} users in turn (in process)")
            )
            result["variants"][name] = {
                "status": "ok", "top": top, "flame_graph": svg.name,
                "samples": sum(stacks.values()),
            }
        finally:
            await built.close()
    return result


def profile_markdown(profiles: dict[str, Any]) -> list[str]:
    lines = [
        "## Where the time goes (profiles of many-users requests)",
        "",
        f"In process, {profiles.get('users', 0):,} users in turn. Top frames by own time "
        f"under cProfile over {profiles.get('requests', 0):,} requests (shares of the "
        "profiled time, which includes the bench's own request loop and Starlette; "
        "cProfile inflates small functions, so compare shares, not µs), and a flame graph "
        "from a 1 ms CPU-time sampler.",
        "",
    ]
    for name, data in profiles.get("variants", {}).items():
        lines += [f"### `{name}`", ""]
        if data.get("status") != "ok":
            lines += [f"_{data.get('status')}_", ""]
            continue
        lines += [
            f"Flame graph: [{data['flame_graph']}]({data['flame_graph']}) "
            f"({data['samples']:,} samples).",
            "",
            "| function | where | calls per request | own time | cumulative |",
            "|---|---|---|---|---|",
        ]
        for row in data["top"]:
            lines.append(
                f"| `{row['function']}` | {row['where']} | {row['calls_per_request']:.2f} | "
                f"{100 * row['own_share']:.1f}% | {100 * row['cumulative_share']:.1f}% |"
            )
        lines.append("")
    return lines
