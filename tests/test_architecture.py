"""The shape holds: frameworks only in adapters/ and demo/, drivers only in stores/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import coatcheck

PACKAGE = Path(coatcheck.__file__).parent
FRAMEWORKS = {"starlette", "fastapi", "flask", "werkzeug", "uvicorn", "django", "quart"}
DRIVERS = {"redis", "psycopg", "psycopg_pool", "asyncpg", "hiredis"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value.split(".")[0])
    return found


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_frameworks_and_drivers_stay_in_their_packages(path: Path) -> None:
    top = path.relative_to(PACKAGE).parts[0]
    imported = _imports(path)
    if top not in ("adapters", "demo", "integrations"):
        assert not imported & FRAMEWORKS, f"{path.name} imports {imported & FRAMEWORKS}"
    if top != "stores":
        assert not imported & DRIVERS, f"{path.name} imports {imported & DRIVERS}"


def test_adapters_import_no_framework_at_all() -> None:
    # The ASGI adapter is pure ASGI: it must work under any framework.
    for name in ("asgi.py", "http.py"):
        assert not _imports(PACKAGE / "adapters" / name) & FRAMEWORKS


def test_the_walk_sees_real_imports() -> None:
    assert "starlette" in _imports(PACKAGE / "demo" / "app.py")
