"""MkDocs hooks for the coatcheck site: pages generated at build time, never typed by hand.

- ``<!-- bench:NAME -->`` in a page becomes a table rendered from the newest results file
  in ``bench/results`` (NAME: ``source``, ``machine``, ``inprocess``, ``http``,
  ``stores``, ``targets``). The tables are built from the JSON's own rows and regimes, so
  a new variant or a new load regime shows up without a change here.
- ``cli.md`` is rendered from ``coatcheck.cli.main.build_parser()``.
- ``api/*.md`` hold one mkdocstrings directive per public module (a module with
  ``__all__``), so a new module gets its page.
- ``security.md`` and ``changelog.md`` are SECURITY.md and CHANGELOG.md as they are.

The functions are plain and importable: ``tests/docs/test_hooks.py`` checks them.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PACKAGE = ROOT / "src" / "coatcheck"

#: Results files kept by ``./dev bench``: ``YYYY-MM-DD.json`` (a second run of a day may
#: add ``-N``); quick and partial runs are smoke checks and never shown.
_RESULT_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:-(\d+))?\.json$")

#: Subpackages and modules that are no library API (the demo and CLI are applications).
_NOT_API = ("coatcheck.demo", "coatcheck.cli", "coatcheck.__main__")


# -- benchmark results ------------------------------------------------------------------------


def newest_results(folder: Path = RESULTS) -> Path | None:
    """The newest full results file in ``folder`` (by the date in its name), or None."""
    found = []
    for path in folder.glob("*.json"):
        match = _RESULT_NAME.match(path.name)
        if match:
            found.append(((match.group(1), int(match.group(2) or 0)), path))
    return max(found)[1] if found else None


#: A cell with no number: a dash that cannot be misread as a minus sign.
_NONE = "\N{EN DASH}"


def _num(value: Any, digits: int = 1) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _NONE if value is None else str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(cell).replace("|", "\\|").replace("\n", " ") for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def regimes_of(section: Mapping[str, Any]) -> list[str]:
    """The load regimes a section measured; ``[]`` for a single-regime (older) file."""
    regimes = section.get("regimes")
    return [str(r) for r in regimes] if isinstance(regimes, list) else []


def regime_label(regime: str, users: object) -> str:
    """``many`` -> ``20,000 users``; names the file does not explain are kept as they are."""
    if regime == "many":
        return f"{users:,} distinct users" if isinstance(users, int) else "many users"
    return {"zipf": "Zipf-popular users", "one": "one credential"}.get(regime, regime)


def metrics_of(row: Mapping[str, Any], regime: str | None) -> Mapping[str, Any]:
    """A row's numbers in ``regime``: ``row["regimes"][r]``, ``row[r]``, or the row itself."""
    if regime is None:
        return row
    nested = row.get("regimes")
    if isinstance(nested, Mapping) and isinstance(nested.get(regime), Mapping):
        return nested[regime]
    value = row.get(regime)
    return value if isinstance(value, Mapping) else {}


def _columns(section: Mapping[str, Any], users: object) -> list[tuple[str | None, str]]:
    regimes = regimes_of(section)
    if not regimes:
        # Files from before issue 18 measured one repeated credential only.
        return [(None, "one credential (repeated)")]
    return [(r, regime_label(r, users)) for r in regimes]


def describe_variant(name: str) -> str:
    """A reader's name for a benchmark row: ``coatcheck-session-redis`` -> session mode
    on Redis. Unknown names are shown as they are, so a new row needs no code."""
    stores = {"memory": "memory", "sqlite": "SQLite", "redis": "Redis",
              "postgresql": "PostgreSQL", "postgres": "PostgreSQL"}  # fmt: skip
    parts = name.split("-")
    if parts[0] == "coatcheck" and len(parts) >= 2:
        rest = parts[1:]
        where = ""
        if rest[0] in ("fastapi", "mw"):
            where = " (FastAPI dependency)" if rest[0] == "fastapi" else ""
            if rest[0] == "mw":
                where = " (FastAPI, middleware)"
                rest = rest[2:] if len(rest) > 2 and rest[1] == "fastapi" else rest[1:]
            else:
                rest = rest[1:]
        if rest and rest[0] in stores:
            rest = ["session", *rest]
        mode = rest[0] if rest else "?"
        store = f" on {stores[rest[1]]}" if len(rest) > 1 and rest[1] in stores else ""
        # Whatever else the name says (a control such as "nocache") is kept, not dropped.
        extra = [part for part in rest[1:] if part not in stores]
        variant = f" ({' '.join(extra)})" if extra else ""
        return f"**coatcheck** {mode} mode{store}{where}{variant}"
    return _PEERS.get(name, name)


#: Readers' names of the peers and floors measured so far; a new row shows its own name.
_PEERS = {
    "bare": "bare endpoint", "fastapi-bare": "bare FastAPI endpoint",
    "floor-hs256": "hand-written HS256 check (floor)", "pyjwt": "PyJWT", "joserfc": "joserfc",
    "starlette-session": "Starlette SessionMiddleware (signed cookie)",
    "starsessions-redis": "starsessions on Redis", "manual-redis": "hand-written Redis lookup",
    "fastapi-users-jwt": "fastapi-users, JWT", "fastapi-users-redis": "fastapi-users, Redis",
}  # fmt: skip


def render_inprocess(results: Mapping[str, Any]) -> str:
    """Auth CPU added per request over the bare endpoint, per variant and regime."""
    section = results.get("inprocess")
    if not isinstance(section, Mapping) or not isinstance(section.get("rows"), Mapping):
        return "*This results file has no in-process section.*\n"
    users = section.get("users", results.get("meta", {}).get("users"))
    columns = _columns(section, users)
    rows = []
    for name, row in section["rows"].items():
        if name == "bare" or not isinstance(row, Mapping):
            continue
        cells = [describe_variant(name), f"`{name}`"]
        for regime, _ in columns:
            added = metrics_of(row, regime).get("added_cpu_us")
            cells.append(f"{_num(added)} µs" if isinstance(added, int | float) else _NONE)
        rows.append(cells)
    header = ["", "row", *(f"CPU added, {label}" for _, label in columns)]
    return _table(header, rows)


def render_http(results: Mapping[str, Any]) -> str:
    """Throughput as a share of the bare endpoint (and p99), per variant and regime."""
    section = results.get("http")
    if not isinstance(section, Mapping) or not isinstance(section.get("rows"), Mapping):
        return "*This results file has no HTTP section.*\n"
    users = section.get("users", results.get("meta", {}).get("users"))
    columns = _columns(section, users)
    rows = []
    for name, row in section["rows"].items():
        if not isinstance(row, Mapping):
            continue
        cells = [describe_variant(name), f"`{name}`"]
        for regime, _ in columns:
            numbers = metrics_of(row, regime)
            ratio, rps = numbers.get("ratio"), numbers.get("rps")
            if isinstance(ratio, int | float):
                p99 = _num(numbers.get("p99_ms"), 2)
                cells.append(f"{ratio:.2f} ({_num(rps)} req/s, p99 {p99} ms)")
            else:
                cells.append(_NONE)
        rows.append(cells)
    header = ["", "row", *(f"share of bare, {label}" for _, label in columns)]
    return _table(header, rows)


def render_stores(results: Mapping[str, Any]) -> str:
    """``SessionManager.validate`` per store: wall and CPU time, and the bare ``get``."""
    section = results.get("sessions")
    stores = section.get("stores") if isinstance(section, Mapping) else None
    if not isinstance(stores, Mapping):
        return "*This results file has no session-store section.*\n"
    rows = []
    for name, store in stores.items():
        if not isinstance(store, Mapping) or store.get("status", "ok") != "ok":
            rows.append([name, "not measured", "", "", ""])
            continue
        validate, get = store.get("validate", {}), store.get("store.get", {})
        rows.append([
            name,
            f"{_num(validate.get('wall_us'))} µs", f"{_num(validate.get('cpu_us'))} µs",
            f"{_num(get.get('wall_us'))} µs", _num(store.get("writes_per_validate"), 2),
        ])  # fmt: skip
    cycled = section.get("sessions") if isinstance(section, Mapping) else None
    note = f"\nEach validate reads one of {cycled:,} sessions in turn.\n" if isinstance(
        cycled, int) else ""  # fmt: skip
    header = ["store", "validate, wall", "validate, CPU", "store.get alone, wall",
              "writes per validate"]  # fmt: skip
    return _table(header, rows) + note


def render_targets(results: Mapping[str, Any]) -> str:
    """The targets the run computed, with every column the file gives."""
    targets = results.get("targets")
    if not isinstance(targets, list) or not targets:
        return "*This results file computes no targets.*\n"
    keys: list[str] = []
    for target in targets:
        for key in target:
            if key not in keys:
                keys.append(key)
    order = ["what", "regime", "threshold", "measured", "status", "source"]
    keys = [k for k in order if k in keys] + [k for k in keys if k not in order]
    return _table(keys, ([str(t.get(k, "")) for k in keys] for t in targets))


def render_machine(results: Mapping[str, Any]) -> str:
    machine = results.get("machine")
    if not isinstance(machine, Mapping):
        return ""
    return _table(["", ""], ([key.replace("_", " "), str(value)] for key, value in
                             machine.items()))  # fmt: skip


def render_source(results: Mapping[str, Any], path: Path) -> str:
    meta = results.get("meta", {})
    users = meta.get("users")
    many = f", {users:,} distinct users in the many-users regime" if isinstance(users, int) else ""
    return (
        f"Rendered from `bench/results/{path.name}` (`{meta.get('command', './dev bench')}`, "
        f"{meta.get('date', path.stem)}{many}), the newest results file when this site was "
        "built.\n"
    )


BENCH_SECTIONS = {
    "inprocess": render_inprocess,
    "http": render_http,
    "stores": render_stores,
    "targets": render_targets,
    "machine": render_machine,
}

_MARKER = re.compile(r"<!--\s*bench:([a-z]+)\s*-->")


def expand_bench(markdown: str, path: Path | None) -> str:
    """Replace every ``<!-- bench:NAME -->`` marker with its table.

    Raises ValueError for an unknown NAME (a typo must fail the strict build).
    """
    if not _MARKER.search(markdown):
        return markdown
    if path is None:
        return _MARKER.sub("*No benchmark results in bench/results: run `./dev bench`.*", markdown)
    results = json.loads(path.read_text())

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "source":
            return render_source(results, path)
        if name not in BENCH_SECTIONS:
            raise ValueError(f"unknown bench table {name!r}; known: {sorted(BENCH_SECTIONS)}")
        return BENCH_SECTIONS[name](results)

    return _MARKER.sub(one, markdown)


# -- the CLI reference --------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:  # argparse keeps them only there
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


def _option_row(action: argparse.Action) -> list[str] | None:
    if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
        return None
    if action.option_strings:
        names = ", ".join(f"`{o}`" for o in action.option_strings)
        if action.nargs != 0:
            names += f" `{action.metavar or action.dest.upper()}`"
    else:
        names = f"`{action.metavar or action.dest}`"
    text = (action.help or "").replace("%(default)s", str(action.default))
    if action.choices and not isinstance(action.choices, Mapping):
        text += " Choices: " + ", ".join(f"`{c}`" for c in action.choices) + "."
    return [names, text]


def cli_reference(parser: argparse.ArgumentParser) -> str:
    """Markdown for every command and subcommand of ``parser``, from its own help."""
    out = ["# Command line reference", "",
           "Generated from the `coatcheck` command's own parser when this site was built; "
           "`coatcheck COMMAND --help` prints the same.", ""]  # fmt: skip

    def walk(p: argparse.ArgumentParser, name: str, depth: int) -> None:
        out.append(f"{'#' * depth} `{name}`")
        out.append("")
        if p.description:
            out.append(p.description)
            out.append("")
        usage = p.format_usage().strip().removeprefix("usage: ")
        out.append("```text\n" + usage + "\n```")
        out.append("")
        rows = [row for action in p._actions if (row := _option_row(action)) is not None]
        if rows:
            out.append(_table(["argument", "meaning"], rows))
        for sub_name, sub in _subparsers(p):
            walk(sub, f"{name} {sub_name}", min(depth + 1, 4))

    for sub_name, sub in _subparsers(parser):
        walk(sub, f"coatcheck {sub_name}", 2)
    return "\n".join(out) + "\n"


# -- the API reference --------------------------------------------------------------------------


def public_modules(package: Path = PACKAGE) -> list[str]:
    """Dotted names of the modules with an ``__all__`` (the public API), sorted."""
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        dotted = ".".join(parts)
        if dotted.startswith(_NOT_API) or dotted == "coatcheck":
            continue
        tree = ast.parse(path.read_text())
        if any(isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
               for node in tree.body):  # fmt: skip
            names.append(dotted)
    return names


def api_pages(modules: Sequence[str]) -> dict[str, str]:
    """One page per top-level part (``coatcheck.auth`` and its modules on ``api/auth.md``).

    A package's page shows its docstring only, then each module in full: names that a
    package re-exports are documented once, where they are defined.
    """
    groups: dict[str, list[str]] = {}
    for name in modules:
        top = name.split(".")[1]
        groups.setdefault(top, []).append(name)
    pages = {}
    for top, names in sorted(groups.items()):
        lines = [f"# coatcheck.{top}", ""]
        for name in names:
            is_package = (PACKAGE / Path(*name.split(".")[1:]) / "__init__.py").exists()
            lines.append(f"::: {name}")
            if is_package:
                lines.append("    options:")
                lines.append("      members: false")
            lines.append("")
        pages[f"api/{top}.md"] = "\n".join(lines)
    return pages


# -- MkDocs events ------------------------------------------------------------------------------


def api_nav(modules: Sequence[str]) -> list[dict[str, str]]:
    return [{f"coatcheck.{uri[4:-3]}": uri} for uri in api_pages(modules)]


def on_config(config: Any) -> Any:
    """The nav's ``API: generated`` entry becomes one entry per generated API page."""

    def fill(items: list[Any]) -> None:
        for index, item in enumerate(items):
            if isinstance(item, dict):
                for title, value in item.items():
                    if title == "API" and value == "generated":
                        items[index] = {"API": api_nav(public_modules())}
                    elif isinstance(value, list):
                        fill(value)

    fill(config["nav"])
    return config


def nav_paths(nav: Any) -> set[str]:
    """Every page path a MkDocs ``nav`` names."""
    found: set[str] = set()
    if isinstance(nav, str):
        found.add(nav)
    elif isinstance(nav, list):
        for item in nav:
            found |= nav_paths(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            found |= nav_paths(value)
    return found


def unlisted(nav: Any, pages: Iterable[str]) -> list[str]:
    """The Markdown pages the nav does not name, sorted: a guide added to docs/ by other
    work (a framework's page) is listed under "More guides" instead of failing the
    strict build as an orphan."""
    named = nav_paths(nav)
    return sorted(p for p in pages if p.endswith(".md") and p not in named)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    from coatcheck.cli.main import build_parser

    generated = {
        "cli.md": cli_reference(build_parser()),
        "security.md": (ROOT / "SECURITY.md").read_text(),
        "changelog.md": (ROOT / "CHANGELOG.md").read_text(),
        **api_pages(public_modules()),
    }
    for uri, content in generated.items():
        files.append(File.generated(config, uri, content=content))
    extra = unlisted(config["nav"], (f.src_uri for f in files.documentation_pages()))
    if extra:
        config["nav"].append({"More guides": extra})
    return files


_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")


def outside_links_as_paths(markdown: str, page_path: str) -> str:
    """Links from a page to repository files outside ``docs/`` (``../bench/...``) become
    the text and the path in code: the site has no copy of those files, while the page
    keeps its working link when read in the repository."""
    folder = Path(page_path).parent

    def one(match: re.Match[str]) -> str:
        text, target = match.group(1), match.group(2)
        if "://" in target or target.startswith(("#", "mailto:")):
            return match.group(0)
        resolved = os.path.normpath(folder / target.partition("#")[0])
        if not resolved.startswith(".."):
            return match.group(0)
        return f"{text} (`{resolved.lstrip('./').replace('../', '')}`)"

    return _LINK.sub(one, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    markdown = outside_links_as_paths(markdown, page.file.src_uri)
    return expand_bench(markdown, newest_results())


# Sphinx-style roles in docstrings (:func:`x`, :class:`~a.B`): shown as code.
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj|const):(<code>)~?")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    return _ROLE.sub(r"\1", html)
