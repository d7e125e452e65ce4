"""The ASGI entry point: ``uvicorn project.asgi:application`` (the async path: the
middleware reads the store in the event loop)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
application = get_asgi_application()
