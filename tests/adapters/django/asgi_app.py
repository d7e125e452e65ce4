"""The test project under a real ASGI server (``django.core.asgi``), recording which
thread every store read runs on: ``GET /__store_reads`` answers them as JSON."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.adapters.django.settings")

from django.core.asgi import get_asgi_application

from coatcheck.adapters.django import conf

django_app = get_asgi_application()
READS: dict[str, list[str]] = {"sync": [], "async": []}


class _Recording:
    """A store that notes the thread of each ``get`` and forwards everything."""

    def __init__(self, store: Any, kind: str) -> None:
        self._store = store
        self._kind = kind

    async def get(self, session_id: str, now: float) -> Any:
        READS[self._kind].append(threading.current_thread().name)
        return await self._store.get(session_id, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _record(parts: conf.Parts, kind: str) -> conf.Parts:
    if not isinstance(parts.manager._store, _Recording):
        parts.manager._store = _Recording(parts.manager._store, kind)
    return parts


_original_async_parts = conf.Runtime.async_parts


def _async_parts(self: conf.Runtime) -> conf.Parts:
    return _record(_original_async_parts(self), "async")


conf.Runtime.async_parts = _async_parts  # type: ignore[method-assign]
_record(conf.get_runtime().sync, "sync")


async def application(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/__store_reads":
        body = json.dumps(READS).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
        return
    await django_app(scope, receive, send)
