"""Django, configured once for the adapter's tests (``settings.py`` here), its database
migrated once; each test changes what it needs with ``override_settings``."""

from __future__ import annotations

import os

import django
import pytest
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.adapters.django.settings")
if not settings.configured:  # pragma: no branch - once per test run
    from . import settings as test_settings

    settings.configure(
        **{name: getattr(test_settings, name) for name in dir(test_settings) if name.isupper()}
    )
django.setup()


@pytest.fixture(scope="session", autouse=True)
def _database() -> None:
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    name = settings.DATABASES["default"]["NAME"]
    if os.path.exists(name):
        os.remove(name)
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)


@pytest.fixture(autouse=True)
def _fresh_runtime() -> object:
    """Each test starts with a runtime built from its own settings, closed afterwards."""
    from coatcheck.adapters.django.conf import close_runtime

    close_runtime()
    yield
    close_runtime()
