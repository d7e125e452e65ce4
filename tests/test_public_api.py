"""The public surface: every public module has a sorted, complete ``__all__``."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import coatcheck

# Modules that import an optional driver or framework are checked only if it is installed.
_SKIP_PREFIXES = ("coatcheck.__main__",)


def _public_modules() -> list[str]:
    names = ["coatcheck"]
    for info in pkgutil.walk_packages(coatcheck.__path__, "coatcheck."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts[1:]) or info.name.startswith(_SKIP_PREFIXES):
            continue
        names.append(info.name)
    return names


def _ruff_key(name: str) -> tuple[int, str]:
    # RUF022 ("isort-style"): SCREAMING_CASE, then CamelCase, then the rest.
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def _is_namespace_only(module: ModuleType) -> bool:
    own = [
        value
        for key, value in vars(module).items()
        if not key.startswith("_") and key != "annotations"
    ]
    return all(isinstance(value, ModuleType) for value in own)


def _django_ready() -> None:
    """The Django adapter's modules need configured settings (the app registry) to load."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            SECRET_KEY="public-api-test-" + "k" * 40,
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
        )
    django.setup()


def _import(name: str) -> ModuleType:
    if name.startswith("coatcheck.adapters.django"):
        _django_ready()
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:  # pragma: no cover - an optional extra is missing
        pytest.skip(f"{name} needs {exc.name}")


@pytest.mark.parametrize("name", _public_modules())
def test_all_is_sorted_and_complete(name: str) -> None:
    module = _import(name)
    exported = getattr(module, "__all__", None)
    if exported is None and _is_namespace_only(module):
        return  # a package that only groups modules defines nothing to export
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    assert exported in (sorted(exported), sorted(exported, key=_ruff_key)), (
        f"{name}.__all__ is not sorted"
    )
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which does not exist"


def test_top_level_reexports_are_the_real_objects() -> None:
    from coatcheck.auth import Authenticator, Identity
    from coatcheck.sessions import SessionManager
    from coatcheck.tokens import JWTCodec

    assert coatcheck.Authenticator is Authenticator
    assert coatcheck.Identity is Identity
    assert coatcheck.SessionManager is SessionManager
    assert coatcheck.JWTCodec is JWTCodec
    public = {n for n in vars(coatcheck) if not n.startswith("_")} - {"annotations"}
    submodules = {n for n in public if isinstance(getattr(coatcheck, n), ModuleType)}
    assert public - submodules == set(coatcheck.__all__) - {"__version__"}


def test_import_loads_no_framework_or_driver() -> None:
    code = (
        "import sys, coatcheck\n"
        "heavy = ('starlette', 'fastapi', 'flask', 'werkzeug', 'uvicorn', 'redis', "
        "'psycopg', 'psycopg_pool', 'argon2', 'httpx')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
