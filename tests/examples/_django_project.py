"""The example Django project (``examples/django_project``) as a real server: migrated,
with its users, under ``manage.py runserver`` (WSGI) or uvicorn (ASGI), on a free port.
Shared by the example's tests here and its browser test (tests/browser)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._net import free_port

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "django_project"
PASSWORD = "correct horse battery"
SERVERS = ("runserver", "uvicorn")


def project_env(folder: Path, store: str | None = None) -> dict[str, str]:
    """The environment the project reads: its ORM database, coatcheck's store and the
    signing key, all in ``folder`` (nothing is written into the source tree)."""
    key = subprocess.run(
        [sys.executable, "-m", "coatcheck", "keygen", "--alg", "ES256"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "COATCHECK_"))}
    env.update(
        DJANGO_DB=str(folder / "db.sqlite3"),
        COATCHECK_STORE=store or f"sqlite:///{folder / 'coatcheck.db'}",
        COATCHECK_SIGNING_KEY=key,
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def manage(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def prepare(env: dict[str, str]) -> None:
    """Migrate, and make alice (staff: the admin) and bob (a plain user)."""
    for args in (
        ("migrate", "--noinput", "-v0"),
        ("createsuperuser", "--noinput", "--username", "alice", "--email", "alice@example.com"),
    ):
        done = manage({**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}, *args)
        assert done.returncode == 0, done.stderr
    done = manage(
        env, "shell", "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user('bob', password={PASSWORD!r})",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the example server exited:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the example server did not start:\n{log.read_text()}")


@contextmanager
def serve(kind: str, env: dict[str, str], folder: Path) -> Iterator[str]:
    """The project under ``kind`` (runserver: Django's WSGI server; uvicorn: the ASGI
    path, ``project.asgi``); yields its base URL."""
    port = free_port()
    if kind == "runserver":
        command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    else:
        command = [sys.executable, "-m", "uvicorn", "project.asgi:application",
                   "--host", "127.0.0.1", "--port", str(port), "--log-level=warning"]  # fmt: skip
    log = folder / f"{kind}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
