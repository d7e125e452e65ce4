"""Adapters: the only package that knows ASGI (and, later, WSGI) shapes.

``coatcheck.adapters.http`` maps errors to HTTP statuses; ``coatcheck.adapters.asgi``
holds the pure-ASGI :class:`~coatcheck.adapters.asgi.AuthMiddleware`. Neither
imports a framework.
"""

from __future__ import annotations

from .asgi import AuthMiddleware, identity_of
from .http import error_body, error_status

__all__ = ["AuthMiddleware", "error_body", "error_status", "identity_of"]
