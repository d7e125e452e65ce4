"""The documentation site builds in strict mode (a broken link, a missing page or an
unresolved reference fails), and its generated pages say what the sources say."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coatcheck.cli.main import build_parser

from .test_hooks import hooks

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.read_text()))


def test_decision_guide_renders_the_newest_results(site: Path) -> None:
    newest = hooks.newest_results()
    assert newest is not None
    results = json.loads(newest.read_text())
    text = _text(site / "decision-guide" / "index.html")
    assert f"bench/results/{newest.name}" in text
    for section in ("inprocess", "http"):
        for row in results[section]["rows"]:
            assert row in text, (section, row)
    assert "<!-- bench:" not in (site / "decision-guide" / "index.html").read_text()


def test_cli_reference_covers_every_command(site: Path) -> None:
    text = _text(site / "cli" / "index.html")
    for name, sub in hooks._subparsers(build_parser()):
        assert f"coatcheck {name}" in text
        for option in (o for a in sub._actions for o in a.option_strings if o != "-h"):
            assert option in text, (name, option)


def test_api_reference_has_every_public_module(site: Path) -> None:
    for module in hooks.public_modules():
        page = site / "api" / module.split(".")[1] / "index.html"
        assert f'id="{module}"' in page.read_text(), module
    # Docstrings' Sphinx roles are shown as code, not as raw ":func:" text.
    assert ":func:" not in _text(site / "api" / "auth" / "index.html")


def test_security_and_changelog_are_the_repository_files(site: Path) -> None:
    security = _text(site / "security" / "index.html")
    for heading in re.findall(r"^## (.+)$", (ROOT / "SECURITY.md").read_text(), re.M):
        assert heading.replace("`", "") in security, heading
    assert "0.2.0" in _text(site / "changelog" / "index.html")
