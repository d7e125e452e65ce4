"""Under a real ASGI server (uvicorn, ``django.core.asgi``) with an async store (Redis):
sync and async views work, and the per-request store read runs in the event loop,
never hopping to a thread (no read goes to the blocking store at all)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings

from .test_middleware import PASSWORD

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def store_url(redis_url: str) -> str:
    return f"{redis_url}?prefix=ccdj-asgi:{secrets.token_hex(4)}:"


@pytest.fixture
def server(store_url: str) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "COATCHECK_DJANGO_STORE": store_url,
        "COATCHECK_DJANGO_DB": settings.DATABASES["default"]["NAME"],
        "DJANGO_SETTINGS_MODULE": "tests.adapters.django.settings",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.adapters.django.asgi_app:application",
         "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--log-level",
         "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            if process.poll() is not None:
                out = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"uvicorn exited: {out}")
            try:
                httpx.get(base + "/__store_reads", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            print(process.stdout.read().decode(errors="replace"))  # shown when a test fails


def test_views_under_uvicorn_read_the_async_store_in_the_loop(server: str, store_url: str) -> None:
    User.objects.all().delete()
    user = User.objects.create_user("ada", password=PASSWORD)
    try:
        with override_settings(COATCHECK={"STORE": store_url, "COOKIE_SECURE": False}):
            client = Client()
            client.force_login(user)  # the session is in Redis, which the server shares
            cookie = client.cookies["sessionid"].value
        with httpx.Client(base_url=server, cookies={"sessionid": cookie}) as http:
            for _ in range(5):
                assert http.get("/awhoami").json() == {"user": "ada"}
                assert http.get("/api/ame").json() == {"user": "ada"}
            assert http.get("/whoami").json() == {"user": "ada"}  # a sync view, too
            reads = http.get("/__store_reads").json()
        with httpx.Client(base_url=server) as guest:
            assert guest.get("/awhoami").json() == {"user": None}
            assert guest.get("/api/ame").status_code == 401
        assert reads["sync"] == []  # the blocking store was never read
        assert len(reads["async"]) == 11  # one read per request
        assert set(reads["async"]) == {"MainThread"}  # in the event loop's thread
    finally:
        User.objects.all().delete()
