"""Each getting-started page is a program: its ``python`` blocks run, in order, as one
module, against the real framework's test client (the pages end in "Try it" blocks
that assert what a reader would see).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted((DOCS / "getting-started").glob("*.md"))
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def python_blocks(page: Path) -> list[str]:
    return _BLOCK.findall(page.read_text())


def test_every_framework_has_a_page() -> None:
    names = {page.stem for page in PAGES}
    assert {"starlette-fastapi", "flask", "asgi-wsgi"} <= names
    if (DOCS.parent / "src" / "coatcheck" / "adapters" / "django").exists():
        # Django's page may live beside the others or as docs/django.md (its own guide).
        assert "django" in names or (DOCS / "django.md").exists()


@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(page)
    assert len(blocks) >= 3, "a page shows setup, the app and a try-it block"
    assert any("assert " in block for block in blocks), "the try-it block checks the answers"
    monkeypatch.chdir(tmp_path)  # sqlite:///sessions.db lands in a fresh folder
    source = "\n\n".join(blocks)
    if "settings.configure(" in source:
        # Django's settings are once per process (and this one may hold the adapter
        # tests'): the page runs as the one-file program it is, in an interpreter of its own.
        script = tmp_path / f"docs_{page.stem}.py"  # not django.py: it would shadow Django
        script.write_text(source)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "COATCHECK_"))}
        command = [sys.executable, "-W", "ignore::DeprecationWarning", str(script)]
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return
    code = compile(source, str(page), "exec")
    # A registered module, as an import makes one: pydantic resolves FastAPI's models there.
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        exec(code, module.__dict__)  # noqa: S102 - the page's own code, the point of the test


def test_every_python_block_in_the_docs_compiles() -> None:
    for page in sorted(DOCS.rglob("*.md")):
        for number, block in enumerate(python_blocks(page)):
            compile(block, f"{page.relative_to(DOCS)} block {number + 1}", "exec")
