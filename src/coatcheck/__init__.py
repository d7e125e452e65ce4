"""coatcheck: server-side sessions, signed tokens, and the hybrid of both."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
