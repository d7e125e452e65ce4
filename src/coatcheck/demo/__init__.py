"""The coatcheck demo app (Starlette), built only on coatcheck's public API.

Run it with ``coatcheck demo``; build it with :func:`create_app`. Importing this
package imports Starlette and argon2-cffi (the ``demo`` extra); ``import coatcheck``
never does.
"""

from __future__ import annotations

from .app import MODES, DemoConfig, create_app, serve

__all__ = ["MODES", "DemoConfig", "create_app", "serve"]
