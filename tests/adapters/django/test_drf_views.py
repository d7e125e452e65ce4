"""The token views' module, and DRF's settings naming coatcheck's classes.

DRF imports the classes named in ``DEFAULT_AUTHENTICATION_CLASSES`` while
``rest_framework.views`` is itself being imported; a class module that imported
``rest_framework.views`` back failed with a circular import at start-up, in the setup
the README documents. Each case runs in a fresh interpreter, as a real start-up does.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from coatcheck.adapters.django import drf, drf_views

_START = textwrap.dedent(
    """
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="x" * 50,
        INSTALLED_APPS=[
            "django.contrib.auth", "django.contrib.contenttypes", "rest_framework",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        COATCHECK={"STORE": "memory://", "MODE": "session"},
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [
                "coatcheck.adapters.django.drf.BearerAuthentication",
                "coatcheck.adapters.django.drf.SessionCookieAuthentication",
            ],
            "EXCEPTION_HANDLER": "coatcheck.adapters.django.drf.exception_handler",
        },
    )
    django.setup()
    """
)


@pytest.mark.parametrize(
    "first_import",
    [
        "import rest_framework.views",
        "import coatcheck.adapters.django.drf",
        "import coatcheck.adapters.django.drf_views",
        "from rest_framework.generics import ListAPIView",
    ],
)
def test_documented_settings_start_whatever_is_imported_first(first_import: str) -> None:
    program = _START + textwrap.dedent(
        f"""
        {first_import}
        from rest_framework.views import APIView
        from rest_framework.settings import api_settings
        from coatcheck.adapters.django import drf, drf_views
        names = [c.__name__ for c in APIView.authentication_classes]
        assert names == ["BearerAuthentication", "SessionCookieAuthentication"], names
        assert api_settings.EXCEPTION_HANDLER is drf.exception_handler
        assert drf_views.TokenObtainView.authentication_classes == ()
        print("started")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "started"


def test_the_class_module_does_not_import_drf_views() -> None:
    program = _START + textwrap.dedent(
        """
        import sys
        import coatcheck.adapters.django.drf
        assert "rest_framework.views" not in sys.modules
        assert "coatcheck.adapters.django.drf_views" not in sys.modules
        # ... yet drf-spectacular's schemes are registered with the classes.
        assert "coatcheck.adapters.django.openapi" in sys.modules
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_views_and_classes_live_in_one_place_each() -> None:
    assert set(drf_views.__all__) == {"TokenObtainView", "TokenRefreshView", "TokenRevokeView"}
    assert not {"TokenObtainView", "TokenRefreshView", "TokenRevokeView"} & set(drf.__all__)
    assert drf_views.TokenObtainView.__module__ == "coatcheck.adapters.django.drf_views"
