"""``__all__`` of the inspector and interop packages is sorted and complete."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "coatcheck.inspect", "coatcheck.inspect.detect", "coatcheck.inspect.jose",
    "coatcheck.inspect.material", "coatcheck.inspect.render", "coatcheck.inspect.report",
    "coatcheck.inspect.setcookie", "coatcheck.inspect.signed", "coatcheck.interop",
    "coatcheck.interop.authjs", "coatcheck.interop.authjs_strategy",
    "coatcheck.interop.connect_redis", "coatcheck.interop.express", "coatcheck.cli.inspect_cmd",
]


def _isort(name: str) -> tuple[int, str]:
    # ruff RUF022 order: CONSTANTS, then Classes, then functions.
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_sorted_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert list(exported) == sorted(exported, key=_isort)
    for item in exported:
        assert hasattr(module, item)
