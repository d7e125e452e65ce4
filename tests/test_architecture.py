"""The shape holds: frameworks only in adapters/ and demo/, drivers only in stores/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import coatcheck

PACKAGE = Path(coatcheck.__file__).parent
FRAMEWORKS = {"starlette", "fastapi", "flask", "werkzeug", "uvicorn", "django", "quart"}
DRIVERS = {"redis", "psycopg", "psycopg_pool", "asyncpg", "hiredis"}
#: Metrics libraries, each in the one observer module that exports to it.
METRICS_HOMES = {"prometheus_client": "observe/prometheus.py", "opentelemetry": "observe/otel.py"}


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


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_metrics_libraries_stay_in_their_observers(path: Path) -> None:
    # The core emits coatcheck.events; only the optional observers know an exporter.
    where = path.relative_to(PACKAGE).as_posix()
    for library in _imports(path) & set(METRICS_HOMES):
        assert where == METRICS_HOMES[library], f"{where} imports {library}"


def test_the_core_loads_no_metrics_library() -> None:
    code = (
        "import sys, coatcheck, coatcheck.events, coatcheck.stores.observed, "
        "coatcheck.adapters.wsgi, coatcheck.adapters.asgi, coatcheck.demo.app\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(METRICS_HOMES)!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_events_is_a_leaf_every_part_can_import() -> None:
    assert not _coatcheck_imports(PACKAGE / "events.py")


def test_adapters_import_no_framework_at_all() -> None:
    # The ASGI adapter is pure ASGI: it must work under any framework.
    for name in ("asgi.py", "http.py"):
        assert not _imports(PACKAGE / "adapters" / name) & FRAMEWORKS


def test_the_walk_sees_real_imports() -> None:
    assert "starlette" in _imports(PACKAGE / "demo" / "app.py")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _coatcheck_imports(path: Path) -> set[str]:
    """The coatcheck modules ``path`` imports anywhere, function bodies included (a lazy
    import is still a dependency), except under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = _module_name(path)
    package = own if path.name == "__init__.py" else own.rsplit(".", 1)[0]
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test)
        for child in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("coatcheck"):
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("coatcheck"))
    return found


def test_no_import_cycles_between_modules() -> None:
    # Layered: no import runs back up. A package's __init__ re-exporting its modules is
    # the one allowed edge "up", so packages are left out of the graph's cycles.
    modules = {_module_name(p): p for p in _sources()}
    graph = {
        name: {m for m in _coatcheck_imports(path) if m in modules and m != name}
        for name, path in modules.items()
        if path.name != "__init__.py"
    }
    graph = {name: {m for m in deps if m in graph} for name, deps in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*trail[trail.index(dep) :], dep] if dep in trail else [node, dep])
            elif dep not in state:
                walk(dep, [*trail, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert not cycles, f"import cycles: {cycles}"


def test_demo_modes_match_their_builders() -> None:
    from coatcheck.demo.app import MODES
    from coatcheck.demo.context import MODE_NAMES

    assert tuple(MODES) == MODE_NAMES
