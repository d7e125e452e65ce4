"""The Django app (``INSTALLED_APPS += ["coatcheck.adapters.django"]``): system checks,
the login/logout receivers, and the ``coatcheck_sessions`` / ``coatcheck_keygen``
management commands."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["CoatcheckConfig"]


class CoatcheckConfig(AppConfig):  # type: ignore[misc]  # Django is untyped
    name = "coatcheck.adapters.django"
    label = "coatcheck"
    verbose_name = "coatcheck"

    def ready(self) -> None:
        from . import checks, signals

        checks.register()
        signals.connect()
