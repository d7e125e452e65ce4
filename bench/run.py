"""coatcheck's benchmarks, side by side with the peers, in one command.

    .venv/bin/python bench/run.py            # full run, about 15 minutes
    .venv/bin/python bench/run.py --quick    # two or three minutes, noisy: checks it works

Every HTTP and in-process variant runs in three regimes: ``many`` (20,000 users, each
request the next user's credential: more users than any cache holds; the headline),
``zipf`` (the same users with skewed popularity) and ``one`` (one credential repeated).

Writes ``bench/results/<YYYY-MM-DD>.md`` (``<date>-quick.md`` in quick mode) with the
machine and its load described, every table with cache hit rates, the targets of issues
7 and 18 computed from this run (and issue 15's scale rows, bench/scale.py, which
need the cluster of .ci/services), profiles of many-users requests (tables, and flame
graphs as ``<date>-flame-<variant>.svg``), a PNG chart and the raw JSON beside it. Needs
Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (``COATCHECK_BENCH_REDIS`` /
``COATCHECK_BENCH_POSTGRES`` override the URLs; Redis db 13 and database
``coatcheck_bench`` by default) and, for the HTTP section, Debian's ``wrk`` (a bounded
Python load client is used without it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import uvloop
from dbsc import run_dbsc
from dpop import markdown as dpop_markdown
from dpop import run_dpop
from fixtures import BenchKeys, Services
from harness import Budget, Progress
from http_load import HttpBudget, load_tool, run_http
from inprocess import run_inprocess
from micro import run_jws_algorithms, run_jwt, run_sessions
from profiles import run_profiles
from report import load_now, machine, write_chart, write_markdown
from session_data import markdown as session_data_markdown
from session_data import run_session_data
from stores_section import run_stores
from targets import compute_targets
from variants import VARIANTS, BuildContext

HERE = Path(__file__).resolve().parent
SECTIONS = (
    "jwt", "sessions", "inprocess", "profile", "dbsc", "stores", "http", "dpop",
    "session_data", "scale", "django",
)


def _budgets(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "jwt": Budget(rounds=3, batch_seconds=0.008, group_seconds=1.0),
            "sessions": Budget(rounds=3, batch_seconds=0.02, group_seconds=2.0),
            "session_count": 200,
            # Fewer users than the token cache holds: a smoke check, not a measurement.
            "users": 2_000,
            "dbsc_browsers": 500,
            "inprocess": Budget(rounds=3, batch_seconds=0.02, group_seconds=3.0),
            "warmup": (2_000, 0.3),
            "profile": (2_000, 1.0),
            "stores_timeouts": (15.0, 0.0),
            "http": HttpBudget(rounds=1, duration=1, warmup=0),
            "session_data": Budget(rounds=3, batch_seconds=0.02, group_seconds=3.0),
            "session_data_many": 2_000,
        }
    return {
        "jwt": Budget(rounds=12, batch_seconds=0.04, group_seconds=8.0, min_rounds=5),
        "sessions": Budget(rounds=10, batch_seconds=0.1, group_seconds=20.0, min_rounds=5),
        "session_count": 2000,
        "users": 20_000,
        # Batches of a quarter second: about one pass over the users for the fast variants.
        "inprocess": Budget(rounds=5, batch_seconds=0.25, group_seconds=30.0, min_rounds=5),
        "warmup": (10_000, 1.0),
        "profile": (20_000, 5.0),
        "dbsc_browsers": 5000,
        "stores_timeouts": (60.0, 200.0),
        "http": HttpBudget(rounds=2, duration=2, warmup=1),  # about 5 minutes
        "session_data": Budget(rounds=8, batch_seconds=0.1, group_seconds=30.0, min_rounds=5),
        "session_data_many": 20_000,
    }


def _clean(value: Any) -> Any:
    """JSON without NaN (not valid JSON): NaN becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


async def _async_sections(
    wanted: set[str], budgets: dict[str, Any], progress: Progress, services: Services,
    keys: BenchKeys, variants: list[str], out_dir: Path, stem: str, loads: dict[str, Any],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "sessions" in wanted:
        loads["sessions"] = load_now()
        out["sessions"] = await run_sessions(
            services, budgets["sessions"], progress, sessions=budgets["session_count"]
        )
    if "dpop" in wanted:
        out["dpop"] = await run_dpop(services, progress, quick=budgets["session_count"] < 1000)
    if "session_data" in wanted:
        out["session_data"] = await run_session_data(
            services.redis_url, budgets["session_data"], progress,
            many=budgets["session_data_many"],
        )
    if "inprocess" in wanted:
        loads["inprocess"] = load_now()
        with tempfile.TemporaryDirectory(prefix="coatcheck-bench-") as tmp:
            ctx = BuildContext(keys, services, Path(tmp), users=budgets["users"])
            out["inprocess"] = await run_inprocess(
                ctx, budgets["inprocess"], progress, variants, warmup=budgets["warmup"]
            )
    if "profile" in wanted:
        loads["profile"] = load_now()
        requests, seconds = budgets["profile"]
        with tempfile.TemporaryDirectory(prefix="coatcheck-bench-") as tmp:
            ctx = BuildContext(keys, services, Path(tmp), users=budgets["users"])
            out["profile"] = await run_profiles(
                ctx, progress, out_dir, stem, requests=requests, sample_seconds=seconds
            )
    if "dbsc" in wanted:
        out["dbsc"] = await run_dbsc(
            budgets["inprocess"], progress, browsers=budgets["dbsc_browsers"]
        )
    return out


def run_django(quick: bool, users: int, progress: Progress) -> dict[str, Any]:
    """bench/django_bench.py in a child process; its JSON results."""
    import subprocess

    progress.say("django: DRF and session requests (bench/django_bench.py)")
    with tempfile.TemporaryDirectory(prefix="coatcheck-djbench-") as tmp:
        out = Path(tmp) / "django.json"
        command = [sys.executable, str(HERE / "django_bench.py"), "--json", str(out),
                   "--users", str(users)] + (["--quick"] if quick else [])  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        data: dict[str, Any] = json.loads(out.read_text())
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a run under a minute (noisy)")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--variants", default="", help="comma-separated HTTP/in-process variants")
    parser.add_argument(
        "--scale", type=int, default=1_000_000,
        help="live sessions for the stores scale part (full runs only; default 1000000)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results directory")
    parser.add_argument(
        "--users", type=int, default=0,
        help="users logged in per variant (default: 20000, 2000 with --quick)",
    )
    args = parser.parse_args(argv)
    wanted = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = wanted - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    variants = [v.name for v in VARIANTS]
    if args.variants:
        variants = [v for v in args.variants.split(",") if v]
        unknown = set(variants) - {v.name for v in VARIANTS}
        if unknown:
            parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    warnings.simplefilter("ignore")  # joserfc's EdDSA deprecation, once per run is noise
    budgets = _budgets(args.quick)
    if args.users:
        budgets["users"] = args.users
    progress = Progress()
    services = Services.from_env()
    keys = BenchKeys.generate()
    started = time.monotonic()
    date = dt.date.today().isoformat()
    stem = f"{date}-quick" if args.quick else date
    if wanted != set(SECTIONS) or args.variants:
        stem += "-partial"  # never overwrite a whole run's results with a subset
    command = "bench/run.py" + (" --quick" if args.quick else "")
    if args.sections != ",".join(SECTIONS):
        command += f" --sections {args.sections}"
    if args.variants:
        command += f" --variants {args.variants}"
    results: dict[str, Any] = {
        "meta": {"date": date, "quick": args.quick, "command": f".venv/bin/python {command}",
                 "sections": sorted(wanted)},
    }
    results["meta"]["users"] = budgets["users"]
    chosen = ", ".join(s for s in SECTIONS if s in wanted)
    progress.say(f"coatcheck bench ({'quick' if args.quick else 'full'}): {chosen}")
    loads: dict[str, Any] = {"start": load_now()}
    results["meta"]["load"] = loads
    results["machine"] = machine(services.redis_url, services.postgres_url)
    args.out.mkdir(parents=True, exist_ok=True)
    if "jwt" in wanted:
        loads["jwt"] = load_now()
        results["jwt"] = run_jwt(keys, budgets["jwt"], progress)
        others = run_jws_algorithms(budgets["jwt"], progress)
        results["jwt"]["verify"].update(others["verify"])
        results["jwt"]["notes"] += others["notes"]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results.update(
            runner.run(
                _async_sections(
                    wanted, budgets, progress, services, keys, variants, args.out, stem, loads
                )
            )
        )
    if "stores" in wanted:
        loads["stores"] = load_now()
        results["stores"] = run_stores(
            args.quick,
            progress,
            timeouts=budgets["stores_timeouts"],
            scale=None if args.quick else args.scale,
            postgres_url=services.postgres_url,
        )
    if "http" in wanted:
        loads["http"] = load_now()
        hb: HttpBudget = budgets["http"]
        results["http"] = {
            **run_http(hb, progress, variants, budgets["users"]),
            "rounds": hb.rounds, "duration": hb.duration, "warmup": hb.warmup,
            "connections": hb.connections, "tool": load_tool(),
        }
    if "scale" in wanted:
        # Issue 15's rows (bench/scale.py): the cluster, PostgreSQL's driver, workers.
        from scale import render as render_scale
        from scale import run_scale

        results["scale"] = run_scale(args.quick, args.scale)
    if "django" in wanted:
        # Issue 14's rows (bench/django_bench.py) in a process of their own: Django's
        # settings are process-wide.
        loads["django"] = load_now()
        results["django"] = run_django(args.quick, budgets["users"], progress)
    loads["end"] = load_now()
    results["meta"]["seconds"] = time.monotonic() - started
    results["targets"] = [t.__dict__ if not hasattr(t, "__slots__") else
                          {s: getattr(t, s) for s in t.__slots__} for t in compute_targets(results)]
    chart = args.out / f"{stem}.png"
    has_chart = write_chart(chart, results)
    md = args.out / f"{stem}.md"
    write_markdown(md, results, chart if has_chart else None)
    if "dpop" in results:
        md.write_text(md.read_text() + "\n".join(dpop_markdown(results["dpop"])))
    if "session_data" in results:  # issue 13's section appends its own tables
        with md.open("a") as out:
            out.write("\n" + "\n".join(session_data_markdown(results["session_data"])) + "\n")
    if "scale" in results:  # issue 15's section appends its own tables
        with md.open("a") as out:
            out.write("\n" + render_scale(results["scale"]))
    if "django" in results:  # issue 14's section appends its own tables
        from django_bench import render as render_django

        with md.open("a") as out:
            out.write("\n" + render_django(results["django"]))
    (args.out / f"{stem}.json").write_text(json.dumps(_clean(results), indent=1) + "\n")
    shown = md.relative_to(Path.cwd()) if md.is_relative_to(Path.cwd()) else md
    progress.say(f"done in {results['meta']['seconds']:.0f} s: {shown}")
    for t in results["targets"]:
        line = (
            f"  {t['status']:>12}  [{t['regime']}] {t['what']}  ({t['measured']}; "
            f"{t['threshold']})"
        )
        print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
