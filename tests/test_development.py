"""README's Development section: what needs root for ``./dev test`` and what does not.

The README says root is needed only on a fresh machine (apt-get for Chromium, starting
Redis and PostgreSQL when they are down) and that, once those run, the services script
and the tests run as an ordinary user. These tests hold the script to that claim by
running it as ``nobody``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _development_section() -> str:
    match = re.search(r"^## Development\n(.*?)(?=^## )", README, flags=re.M | re.S)
    assert match, "README.md has no '## Development' section"
    return match.group(1)


def test_readme_says_what_needs_root_and_how_to_run_without_it() -> None:
    section = _development_section()
    assert "needs root" in section
    assert "apt-get" in section
    assert "pg_ctlcluster" in section
    # The by-hand steps it gives are the commands that exist.
    for command in (".ci/services", ".venv/bin/ruff check .", ".venv/bin/mypy", "pytest",
                    ".ci/services stop"):
        assert command in section, command


def test_dev_installs_chromium_only_when_it_is_missing() -> None:
    script = (ROOT / "dev").read_text(encoding="utf-8")
    test_branch = script.split("\n  test)\n", 1)[1].split(";;", 1)[0]
    # `./dev test` itself installs nothing; the browser setup it calls does, when missing.
    assert "apt-get" not in test_branch
    assert "browser_setup" in test_branch
    guarded = re.search(r"if \[ ! -x /usr/bin/chromium \]; then\n\s+apt-get update", script)
    assert guarded, "apt-get must run only when /usr/bin/chromium is missing"


def test_services_script_runs_without_root_when_redis_and_postgres_are_up() -> None:
    # pytest's own tmp_path is private to root (0700): the unprivileged user needs its own.
    tmp_path = Path(tempfile.mkdtemp(prefix="coatcheck-noroot-"))
    try:
        _run_services_without_root(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _run_services_without_root(tmp_path: Path) -> None:
    # A copy of the two files the script uses, owned by an unprivileged user, so the
    # run can write nothing anywhere else (the shared checkout's .ci/state included).
    work = tmp_path / "checkout"
    (work / ".ci").mkdir(parents=True)
    (work / "tests").mkdir()
    shutil.copy2(ROOT / ".ci" / "services", work / ".ci" / "services")
    shutil.copy2(ROOT / "tests" / "_topology.py", work / "tests" / "_topology.py")
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        assert runuser, "runuser (util-linux) is needed to drop root for this test"
        subprocess.run(["chown", "-R", "nobody", str(tmp_path)], check=True)
        tmp_path.chmod(0o755)
        prefix = [runuser, "-u", "nobody", "--"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, str(work / ".ci" / "services"), *args],
            cwd=work, capture_output=True, text=True, timeout=120,
        )

    started = run()
    try:
        assert started.returncode == 0, started.stderr
        # Redis and PostgreSQL were up, so nothing privileged was tried.
        assert "starting redis" not in started.stderr
        assert "starting postgresql" not in started.stderr
        env = (work / ".ci" / "state" / "services.env").read_text(encoding="utf-8")
        assert "COATCHECK_TEST_REDIS_CLUSTER=redis+cluster://127.0.0.1:" in env
        assert "COATCHECK_TEST_REDIS_SENTINEL=redis+sentinel://127.0.0.1:" in env
        pids = (work / ".ci" / "state" / "pids").read_text(encoding="utf-8").split()
        assert pids
        for pid in pids:
            owner = Path(f"/proc/{pid}").stat().st_uid
            assert owner == (65534 if prefix else os.geteuid()), pid
    finally:
        stopped = run("stop")
    assert stopped.returncode == 0, stopped.stderr
