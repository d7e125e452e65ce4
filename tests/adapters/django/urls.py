"""URLs for the Django adapter tests (filled by the middleware tests)."""

from __future__ import annotations

urlpatterns: list[object] = []
