"""The release as a user gets it: an sdist and a wheel built from this tree, the wheel
installed in a fresh virtual environment far from the source, and run from there.

One build serves every test in the module (about a minute in all, most of it pip).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import coatcheck

from ._net import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist first, then the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    # No isolation: the build uses this venv's setuptools instead of downloading one.
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return out


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_version_lives_in_one_place(dist: Path) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    source = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert source == {"attr": "coatcheck.__version__"}
    wheel = _one(dist, "*.whl")
    assert wheel.name.startswith(f"coatcheck-{coatcheck.__version__}-")
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {coatcheck.__version__}" in changelog


def test_sdist_carries_tests_examples_docs_and_license(dist: Path) -> None:
    sdist = _one(dist, "*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    tracked = subprocess.run(
        ["git", "ls-files", "tests", "examples", "docs"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    missing = [name for name in tracked if name not in names]
    assert not missing, missing[:20]
    for name in ("LICENSE", "CHANGELOG.md", "SECURITY.md", "README.md", "mkdocs.yml", "dev"):
        assert name in names, name
    assert not any("node_modules" in name for name in names)
    assert not any("__pycache__" in name for name in names)


def test_wheel_holds_the_package_and_license(dist: Path) -> None:
    with zipfile.ZipFile(_one(dist, "*.whl")) as archive:
        names = set(archive.namelist())
    assert "coatcheck/py.typed" in names
    assert "coatcheck/demo/pages.py" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), names
    assert not any(name.startswith("tests/") for name in names)


def test_twine_check_is_clean(dist: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its demo extra; its bin folder."""
    home = tmp_path_factory.mktemp("fresh")
    venv.create(home / "venv", with_pip=True)
    bin_dir = home / "venv" / "bin"
    wheel = _one(dist, "*.whl")
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"{wheel}[demo]"],
        check=True, capture_output=True, text=True, timeout=600, cwd=home,
    )  # fmt: skip
    return bin_dir


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONSAFEPATH"] = "1"  # never the working folder on sys.path
    return env


def test_installed_wheel_runs_far_from_the_source(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import coatcheck; print(coatcheck.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=_clean_env(),
    ).stdout.strip()  # fmt: skip
    assert str(installed.parent) in where, where
    assert str(ROOT) not in where, where
    helped = subprocess.run(
        [str(installed / "coatcheck"), "--help"],
        capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=60,
    )  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    for command in ("demo", "token", "sessions", "inspect", "keygen"):
        assert command in helped.stdout
    version = subprocess.run(
        [str(installed / "coatcheck"), "--version"],
        capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=60,
    )  # fmt: skip
    assert version.stdout.strip() == f"coatcheck {coatcheck.__version__}"


@pytest.fixture
def installed_demo(installed: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [str(installed / "coatcheck"), "demo", "--store", "memory://", "--port", str(port)],
        cwd=tmp_path, env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert f"serving on http://127.0.0.1:{port}/" in banner, banner
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_installed_demo_answers_its_health_check(installed_demo: str) -> None:
    # The banner comes once the port is bound: the first request is answered.
    deadline = time.monotonic() + 5
    while True:
        try:
            answer = httpx.get(f"{installed_demo}/healthz", timeout=5)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "status": "ok", "store": "up", "feed": "none"}
    home = httpx.get(f"{installed_demo}/", timeout=5)
    assert home.status_code == 200
    assert "coatcheck demo" in home.text
