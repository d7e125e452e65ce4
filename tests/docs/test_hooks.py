"""docs/hooks.py: the tables come from whatever the results file holds."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from coatcheck.cli.main import build_parser

HOOKS = Path(__file__).resolve().parents[2] / "docs" / "hooks.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("coatcheck_docs_hooks", HOOKS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hooks = _load()

#: The layout before issue 18: one regime, the numbers on the row itself.
OLD = {
    "meta": {"date": "2026-11-27", "command": "bench/run.py"},
    "inprocess": {"rows": {"bare": {"added_cpu_us": 0.0},
                           "coatcheck-jwt": {"added_cpu_us": 4.6},
                           "somepeer": {"added_cpu_us": 37.5}}},
    "http": {"rows": {"bare": {"ratio": 1.0, "rps": 30000, "p99_ms": 1.9},
                      "coatcheck-session-redis": {"ratio": 0.54, "rps": 19000, "p99_ms": 4.8}}},
}  # fmt: skip

#: Issue 18's layout: regimes named by the section, numbers per regime.
NEW = {
    "meta": {"date": "2026-12-03", "users": 20000},
    "inprocess": {"users": 20000, "regimes": ["many", "one"],
                  "rows": {"coatcheck-hybrid": {"regimes": {"many": {"added_cpu_us": 13.7},
                                                            "one": {"added_cpu_us": 3.6}}},
                           "brand-new-peer": {"regimes": {"many": {"added_cpu_us": 99.0}}}}},
    "http": {"users": 20000, "regimes": ["many", "zipf"],
             "rows": {"coatcheck-jwt": {"many": {"ratio": 0.4, "rps": 9153, "p99_ms": 116.7},
                                        "zipf": {"ratio": 0.89, "rps": 17363, "p99_ms": 42.9}}}},
    "targets": [{"what": "jwt CPU / floor", "threshold": "<= 1.30x", "measured": "1.05x",
                 "status": "met", "regime": "many users", "new_column": "kept"}],
}  # fmt: skip


def test_newest_results_is_the_latest_full_run(tmp_path: Path) -> None:
    for name in ("2026-11-27.json", "2026-12-03.json", "2026-12-03-2.json",
                 "2026-12-09-quick.json", "2026-12-10-partial.json", "notes.json"):
        (tmp_path / name).write_text("{}")
    newest = hooks.newest_results(tmp_path)
    assert newest is not None
    assert newest.name == "2026-12-03-2.json"
    assert hooks.newest_results(tmp_path / "nothing-here") is None


def test_single_regime_files_render_as_one_credential() -> None:
    table = hooks.render_inprocess(OLD)
    assert "one credential (repeated)" in table
    assert "| **coatcheck** jwt mode | `coatcheck-jwt` | 4.6 µs |" in table
    assert "| somepeer | `somepeer` | 37.5 µs |" in table  # an unknown row keeps its name
    assert "`bare`" not in table
    http = hooks.render_http(OLD)
    assert "| **coatcheck** session mode on Redis | `coatcheck-session-redis` | 0.54 " in http


def test_regimes_become_columns_and_new_rows_appear() -> None:
    table = hooks.render_inprocess(NEW)
    assert "CPU added, 20,000 distinct users" in table
    assert "CPU added, one credential" in table
    assert "| **coatcheck** hybrid mode | `coatcheck-hybrid` | 13.7 µs | 3.6 µs |" in table
    assert "| brand-new-peer | `brand-new-peer` | 99.0 µs | \N{EN DASH} |" in table
    http = hooks.render_http(NEW)
    assert "share of bare, Zipf-popular users" in http
    assert "0.89 (17,363 req/s, p99 42.90 ms)" in http
    targets = hooks.render_targets(NEW)
    assert targets.splitlines()[0] == (
        "| what | regime | threshold | measured | status | new_column |")


def test_markers_expand_and_unknown_ones_fail(tmp_path: Path) -> None:
    path = tmp_path / "2026-12-03.json"
    path.write_text(json.dumps(NEW))
    page = hooks.expand_bench("<!-- bench:source -->\n\n<!-- bench:inprocess -->", path)
    assert "`bench/results/2026-12-03.json`" in page
    assert "20,000 distinct users" in page
    with pytest.raises(ValueError, match="unknown bench table 'htpp'"):
        hooks.expand_bench("<!-- bench:htpp -->", path)
    missing = hooks.expand_bench("<!-- bench:http -->", None)
    assert "./dev bench" in missing
    assert hooks.render_stores(OLD).startswith("*This results file has no")


def test_cli_reference_is_the_parser() -> None:
    page = hooks.cli_reference(build_parser())
    assert "## `coatcheck demo`" in page
    assert "### `coatcheck token decode`" in page
    assert "`--forwarded-allow-ips` `IPS`" in page
    assert "Choices: `session`, `jwt`, `hybrid`." in page


def test_public_modules_are_the_ones_with_all() -> None:
    modules = hooks.public_modules()
    assert "coatcheck.auth.authenticator" in modules
    assert "coatcheck.tokens" in modules
    assert not [m for m in modules if m.startswith(("coatcheck.demo", "coatcheck.cli"))]
    assert not [m for m in modules if "._" in m]
    pages = hooks.api_pages(modules)
    assert "::: coatcheck.auth.authenticator" in pages["api/auth.md"]
    # A package shows only its docstring: its re-exports are documented where defined.
    assert "::: coatcheck.auth\n    options:\n      members: false" in pages["api/auth.md"]


def test_links_out_of_the_docs_become_paths() -> None:
    page = "see [the run](../bench/results/x.md), [deploy](deployment.md#a), [w](https://x.y)"
    shown = hooks.outside_links_as_paths(page, "deployment.md")
    assert "the run (`bench/results/x.md`)" in shown
    assert "[deploy](deployment.md#a)" in shown
    assert "[w](https://x.y)" in shown
    assert hooks.outside_links_as_paths("[r](../../README.md)", "migration/x.md") == (
        "r (`README.md`)")


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ("coatcheck-jwt", "**coatcheck** jwt mode"),
        ("coatcheck-session-redis", "**coatcheck** session mode on Redis"),
        ("coatcheck-redis", "**coatcheck** session mode on Redis"),
        ("coatcheck-jwt-nocache", "**coatcheck** jwt mode (nocache)"),
        ("coatcheck-mw-fastapi-redis", "**coatcheck** session mode on Redis (FastAPI, middleware)"),
        ("pyjwt", "PyJWT"),
        ("something-new", "something-new"),
    ],
)
def test_row_names_read_as_words(row: str, said: str) -> None:
    assert hooks.describe_variant(row) == said


def test_pages_the_nav_does_not_name_are_listed() -> None:
    nav = [{"Home": "index.md"}, {"Guides": [{"A": "a.md"}, "b.md"]}, {"API": [{"x": "api/x.md"}]}]
    pages = ["index.md", "a.md", "b.md", "api/x.md", "django.md", "zz/new.md", "img.png"]
    assert hooks.unlisted(nav, pages) == ["django.md", "zz/new.md"]
