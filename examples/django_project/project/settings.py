"""Settings of the coatcheck example project.

coatcheck backs ``request.session`` (``SESSION_ENGINE``) and ``request.user`` (the
authentication middleware) in hybrid mode: a browser gets a short access cookie and a
rotating refresh cookie, a native client the same pair as bearer tokens. Everything that
differs between a laptop and a server comes from the environment:

* ``COATCHECK_STORE``: the store URL (default: SQLite next to this project; any
  ``redis://`` or ``postgresql://`` URL works the same);
* ``COATCHECK_SIGNING_KEY``: the private JWK that signs access tokens (JSON), else the
  file ``signing-key.json`` beside ``manage.py`` (``coatcheck keygen > signing-key.json``);
* ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``, ``DJANGO_DB`` (the ORM's SQLite file),
  ``DJANGO_ALLOWED_HOSTS`` (comma-separated).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
# A fixed key only for a laptop: a server must set its own (Django's check --deploy says so).
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or (
    "django-insecure-coatcheck-example-only-never-deploy-this-key"
)
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "coatcheck.adapters.django",  # system checks, coatcheck_sessions, coatcheck_keygen
    "notes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's AuthenticationMiddleware, replaced: request.user from coatcheck.
    "coatcheck.adapters.django.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB") or str(BASE_DIR / "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- coatcheck ---------------------------------------------------------------------------


def _signing_key() -> str | None:
    """The JWK from the environment or the key file; None lets coatcheck's system check
    say how to make one."""
    key = os.environ.get("COATCHECK_SIGNING_KEY")
    if key:
        return key
    path = BASE_DIR / "signing-key.json"
    return path.read_text() if path.exists() else None


# request.session on coatcheck: ids hashed at rest, idle and absolute timeouts.
SESSION_ENGINE = "coatcheck.adapters.django.sessions"
COATCHECK = {
    "STORE": os.environ.get("COATCHECK_STORE") or f"sqlite:///{BASE_DIR / 'coatcheck.db'}",
    "MODE": "hybrid",
    "TRANSPORTS": ["cookie", "bearer"],
    "SIGNING_KEY": _signing_key(),
    "ACCESS_TTL": 300,
}
# Browsers keep Secure cookies on http://localhost, so even the laptop runs as production does.
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

REST_FRAMEWORK = {
    # Bearer first (the native client: no CSRF token, a browser never sends that header
    # by itself), then coatcheck's cookie (the browser: CSRF checked as DRF's
    # SessionAuthentication does).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "coatcheck.adapters.django.drf.BearerAuthentication",
        "coatcheck.adapters.django.drf.SessionCookieAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Errors in DRF's format with coatcheck's stable codes.
    "EXCEPTION_HANDLER": "coatcheck.adapters.django.drf.exception_handler",
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
