"""The configured views of :mod:`drf_site` alone (one class per security scheme)."""

from __future__ import annotations

from . import drf_site

urlpatterns = [p for p in drf_site.urlpatterns if str(p.pattern).startswith("configured/")]
