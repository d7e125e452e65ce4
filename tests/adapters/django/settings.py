"""The Django settings the adapter's tests run with (tests change them per test with
``override_settings``). The ORM's database is an in-memory SQLite; coatcheck's store is
``COATCHECK["STORE"]``, a memory store unless a test names another."""

from __future__ import annotations

import os
import tempfile

SECRET_KEY = "coatcheck-django-tests-" + "k" * 40
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
# A file, not :memory:: the tests' threads (a burst of requests) share it.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # A server the tests start (uvicorn) is given the same file.
        "NAME": os.environ.get("COATCHECK_DJANGO_DB")
        or os.path.join(tempfile.gettempdir(), f"coatcheck-django-{os.getpid()}.sqlite3"),
    }
}
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "coatcheck.adapters.django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "coatcheck.adapters.django.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
SESSION_ENGINE = "coatcheck.adapters.django.sessions"
ROOT_URLCONF = "tests.adapters.django.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
COATCHECK = {
    "STORE": os.environ.get("COATCHECK_DJANGO_STORE", "memory://"),
    "COOKIE_SECURE": False,
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
