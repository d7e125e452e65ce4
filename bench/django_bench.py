"""Django section (issue 14): DRF and session requests, coatcheck beside Django's own.

    .venv/bin/python bench/django_bench.py [--quick] [--users N] [--json PATH]

Every request goes through Django's request handling in this process (a
``WSGIHandler`` called with a WSGI environ, the whole Django and DRF stack: URL
resolution, middleware, DRF's dispatch and authentication, the JSON renderer), on one
DRF view that answers the user's name. Variants, side by side in one run:

* ``simplejwt``: djangorestframework-simplejwt's ``JWTAuthentication`` (HS256);
* ``coatcheck-jwt``: :class:`coatcheck.adapters.django.drf.BearerAuthentication`,
  jwt mode (HS256);
* ``coatcheck-hybrid``: the same class in hybrid mode (access JWT, refresh sessions
  on Redis);
* ``django-cache-redis``: Django's ``cache`` session backend on django-redis, with
  ``SessionMiddleware``, ``AuthenticationMiddleware`` and DRF's ``SessionAuthentication``;
* ``coatcheck-session-redis``: :class:`~coatcheck.adapters.django.drf.SessionCookieAuthentication`,
  session mode on Redis;
* ``django-db-postgresql``: Django's ``db`` session backend on PostgreSQL (as above);
* ``coatcheck-session-postgresql``: the coatcheck class, session mode on PostgreSQL;
* ``coatcheck-engine-redis`` / ``-postgresql``: coatcheck's session engine
  (``SESSION_ENGINE``) as docs/django.md sets it up: coatcheck's
  ``AuthenticationMiddleware`` and ``CoatcheckBackend``, with DRF's
  ``SessionAuthentication``, when that engine is installed;
* ``coatcheck-engine-only-redis``: only ``SESSION_ENGINE`` swapped (Django's
  ``AuthenticationMiddleware``, sessions logged in with ``ModelBackend``, as in the
  Django rows): what the engine alone changes.

Every variant loads the Django user from the database once per request (SQLite, the
same table for all), as simplejwt's and Django's classes do. Regimes: ``many``
(``--users`` distinct users, 20,000 by default, each request the next user's
credential: more than any cache holds; the headline) and ``one`` (one credential
repeated: a footnote). Rounds interleave the variants; the median round counts.
Prints the Markdown section (``bench/run.py --sections django`` puts it in the results
file) and writes the raw numbers as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

REDIS = os.environ.get("COATCHECK_BENCH_REDIS", "redis://127.0.0.1:6379/13")
POSTGRES = os.environ.get(
    "COATCHECK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/coatcheck_bench"
)
TAG = secrets.token_hex(3)
SECRET = secrets.token_bytes(32)
SCHEMA = f"bench_dj_{TAG}"

#: (name, what it is, the variant it is compared with or "").
VARIANTS: list[tuple[str, str, str]] = [
    ("simplejwt", "djangorestframework-simplejwt JWTAuthentication (HS256; user row)", ""),
    ("coatcheck-jwt", "coatcheck BearerAuthentication, jwt mode (HS256; user row)", "simplejwt"),
    ("coatcheck-hybrid", "coatcheck BearerAuthentication, hybrid mode (Redis; user row)",
     "coatcheck-jwt"),
    ("coatcheck-jwt-stateless", "coatcheck StatelessBearerAuthentication, jwt mode (no row)",
     "simplejwt"),
    ("coatcheck-hybrid-stateless", "coatcheck StatelessBearerAuthentication, hybrid (no row)",
     "coatcheck-jwt-stateless"),
    ("simplejwt-stateless", "simplejwt JWTStatelessUserAuthentication (no row)", ""),
    ("django-cache-redis", "Django cache session backend on django-redis", ""),
    ("coatcheck-session-redis", "coatcheck SessionCookieAuthentication on Redis",
     "django-cache-redis"),
    ("django-db-postgresql", "Django db session backend on PostgreSQL", ""),
    ("coatcheck-session-postgresql", "coatcheck SessionCookieAuthentication on PostgreSQL",
     "django-db-postgresql"),
    ("coatcheck-engine-redis", "coatcheck session engine (SESSION_ENGINE) on Redis",
     "django-cache-redis"),
    ("coatcheck-engine-postgresql", "coatcheck session engine on PostgreSQL",
     "django-db-postgresql"),
    ("coatcheck-engine-only-redis",
     "coatcheck session engine on Redis, Django's middleware and ModelBackend",
     "django-cache-redis"),
]  # fmt: skip
#: (variant, over, threshold, what the issue asks).
TARGETS = [
    ("coatcheck-jwt", "simplejwt", 1.5,
     "DRF bearer jwt >= 1.5x simplejwt's JWTAuthentication (both read the user row)"),
    ("coatcheck-jwt-stateless", "simplejwt", 1.5,
     "DRF bearer jwt >= 1.5x simplejwt's JWTAuthentication (coatcheck's stateless class)"),
    ("coatcheck-jwt-stateless", "simplejwt-stateless", 1.5,
     "stateless against stateless: coatcheck vs simplejwt's JWTStatelessUserAuthentication"),
    ("coatcheck-hybrid", "coatcheck-jwt", 0.9, "hybrid within 10% of coatcheck jwt (user row)"),
    ("coatcheck-hybrid-stateless", "coatcheck-jwt-stateless", 0.9,
     "hybrid within 10% of coatcheck jwt (stateless)"),
    ("coatcheck-session-redis", "django-cache-redis", 1.0,
     "session on Redis ahead of django-redis' cache backend"),
    ("coatcheck-session-postgresql", "django-db-postgresql", 1.0,
     "session on PostgreSQL ahead of Django's db backend"),
    ("coatcheck-engine-redis", "django-cache-redis", 1.0,
     "session engine on Redis ahead of django-redis' cache backend"),
    ("coatcheck-engine-postgresql", "django-db-postgresql", 1.0,
     "session engine on PostgreSQL ahead of Django's db backend"),
    ("coatcheck-engine-only-redis", "django-cache-redis", 1.0,
     "only SESSION_ENGINE swapped, on Redis, ahead of django-redis' cache backend"),
]  # fmt: skip


def _pg_parts(url: str) -> dict[str, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "postgres",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
        # A schema of this run's own: the sessions table never meets anyone else's.
        "OPTIONS": {"options": f"-c search_path={SCHEMA}"},
        "CONN_MAX_AGE": None,
    }


class SessionsToPostgres:
    """Django's Session model lives in the ``pg`` database; everything else in SQLite."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        return "pg" if model._meta.app_label == "sessions" else None

    db_for_write = db_for_read

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return (db == "pg") == (app_label == "sessions")


def configure(tmp: Path) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "rest_framework",
        ],
        MIDDLEWARE=[],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(tmp / "users.sqlite3"),
                "CONN_MAX_AGE": None,
            },
            "pg": _pg_parts(POSTGRES),
        },
        DATABASE_ROUTERS=[SessionsToPostgres()],
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": REDIS,
                "KEY_PREFIX": f"bench:dj:{TAG}",
            }
        },
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        REST_FRAMEWORK={
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "UNAUTHENTICATED_USER": None,
        },
        SIMPLE_JWT={
            "SIGNING_KEY": SECRET.hex(),
            "ALGORITHM": "HS256",
            "ACCESS_TOKEN_LIFETIME": timedelta(hours=2),
        },
        LOGGING_CONFIG=None,
    )
    django.setup()


# -- the views (one per variant, same body) ----------------------------------------------

VIEWS: dict[str, Any] = {}
AUTHENTICATORS: dict[str, Any] = {}
urlpatterns: list[Any] = []


def build_views() -> None:
    from django.urls import path
    from rest_framework.authentication import SessionAuthentication
    from rest_framework.permissions import IsAuthenticated
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView
    from rest_framework_simplejwt.authentication import (
        JWTAuthentication,
        JWTStatelessUserAuthentication,
    )

    from coatcheck.adapters.django import drf

    def view_for(auth_class: type) -> Any:
        class Me(APIView):
            authentication_classes = (auth_class,)
            permission_classes = (IsAuthenticated,)

            def get(self, request: Request) -> Response:
                return Response({"user": request.user.get_username()})

        return Me.as_view()

    def bearer(name: str) -> type:
        return type(f"Bearer_{name}", (drf.BearerAuthentication,),
                    {"get_authenticator": lambda self: AUTHENTICATORS[name]})  # fmt: skip

    def stateless(name: str) -> type:
        return type(f"Stateless_{name}", (drf.StatelessBearerAuthentication,),
                    {"get_authenticator": lambda self: AUTHENTICATORS[name]})  # fmt: skip

    def cookie(name: str) -> type:
        return type(f"Cookie_{name}", (drf.SessionCookieAuthentication,),
                    {"get_authenticator": lambda self: AUTHENTICATORS[name]})  # fmt: skip

    classes: dict[str, type] = {
        "simplejwt": JWTAuthentication,
        "coatcheck-jwt": bearer("coatcheck-jwt"),
        "coatcheck-hybrid": bearer("coatcheck-hybrid"),
        "coatcheck-jwt-stateless": stateless("coatcheck-jwt"),
        "coatcheck-hybrid-stateless": stateless("coatcheck-hybrid"),
        "simplejwt-stateless": JWTStatelessUserAuthentication,
        "django-cache-redis": SessionAuthentication,
        "coatcheck-session-redis": cookie("coatcheck-session-redis"),
        "django-db-postgresql": SessionAuthentication,
        "coatcheck-session-postgresql": cookie("coatcheck-session-postgresql"),
        "coatcheck-engine-redis": SessionAuthentication,
        "coatcheck-engine-postgresql": SessionAuthentication,
        "coatcheck-engine-only-redis": SessionAuthentication,
    }
    for name, cls in classes.items():
        VIEWS[name] = f"/{name}/"
        urlpatterns.append(path(f"{name}/", view_for(cls)))



# -- users and credentials ---------------------------------------------------------------


def make_users(n: int) -> list[Any]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    model = get_user_model()
    model.objects.bulk_create(
        [model(username=f"user{i:06d}", password="!", is_active=True) for i in range(n)],
        batch_size=2000,
    )
    return list(model.objects.order_by("pk"))


def _codec() -> Any:
    from coatcheck.tokens import JWTCodec, Key

    return JWTCodec(Key.from_secret(SECRET, alg="HS256"))


def _coatcheck_store(kind: str) -> Any:
    from coatcheck.stores import open_store

    if kind == "redis":
        return open_store(f"{REDIS}?prefix=bench:djcc:{TAG}:", sync=True)
    return open_store(f"{POSTGRES}?table=bench_djcc_{TAG}", sync=True)


def credentials(variant: str, users: list[Any], cleanup: list[Callable[[], None]]) -> list[str]:
    """One ``(header name, value)`` per user for ``variant``, as the WSGI environ key."""
    from coatcheck.auth import (
        Authenticator,
        BearerTransport,
        CookieTransport,
        HybridStrategy,
        JWTStrategy,
        SessionStrategy,
    )
    from coatcheck.policies import CookiePolicy
    from coatcheck.sessions import SessionManager
    from coatcheck.sync import run_sync

    if variant in ("simplejwt", "simplejwt-stateless"):
        from rest_framework_simplejwt.tokens import AccessToken

        return [f"Bearer {AccessToken.for_user(u)}" for u in users]
    if variant in ("coatcheck-jwt-stateless", "coatcheck-hybrid-stateless"):
        # The same tokens as the row-reading variant of the mode (made just before).
        return list(ISSUED["coatcheck-hybrid" if "hybrid" in variant else "coatcheck-jwt"])
    if variant in ("coatcheck-jwt", "coatcheck-hybrid"):
        if variant == "coatcheck-jwt":
            strategy: Any = JWTStrategy(_codec(), ttl=timedelta(hours=2))
        else:
            store = _coatcheck_store("redis")
            cleanup.append(lambda: run_sync(store.close()))
            # Access tokens of 30 minutes so none expires mid-run; verifying costs the same.
            strategy = HybridStrategy(SessionManager(store), _codec(), secrets.token_bytes(32),
                                      access_ttl=timedelta(minutes=30))  # fmt: skip
        AUTHENTICATORS[variant] = Authenticator(strategy, (BearerTransport(),))
        tokens = [
            run_sync(strategy.issue(str(u.pk), data={"username": u.username})).token
            for u in users
        ]
        ISSUED[variant] = [f"Bearer {t}" for t in tokens]
        return ISSUED[variant]
    if variant.startswith("coatcheck-session-"):
        kind = variant.rsplit("-", 1)[1]
        store = _coatcheck_store(kind)
        cleanup.append(lambda: run_sync(store.close()))
        if kind == "postgresql":
            cleanup.append(lambda: _drop_table(f"bench_djcc_{TAG}"))
        transport = CookieTransport(policy=CookiePolicy(secure=False))
        strategy = SessionStrategy(SessionManager(store))
        AUTHENTICATORS[variant] = Authenticator(strategy, (transport,))
        out = []
        for u in users:
            issued = run_sync(strategy.issue(str(u.pk), data={"username": u.username}))
            out.append(f"{transport.cookie_name}={issued.token}")
        return out
    if variant.startswith("coatcheck-engine-"):
        return _engine_sessions(variant, users, cleanup)
    return _django_sessions(variant, users)


ISSUED: dict[str, list[str]] = {}
#: Settings a variant runs under (coatcheck's session engine reads settings.COATCHECK).
SETTINGS: dict[str, dict[str, Any]] = {}


def _engine_sessions(
    variant: str, users: list[Any], cleanup: list[Callable[[], None]]
) -> list[str]:
    from importlib.util import find_spec

    from django.conf import settings
    from django.test import override_settings

    if find_spec("coatcheck.adapters.django.sessions") is None:
        raise Unavailable("coatcheck's session engine is not installed here")
    from coatcheck.adapters.django.sessions import SessionStore

    kind = variant.rsplit("-", 1)[1]
    if kind == "redis":
        url = f"{REDIS}?prefix=bench:djeng:{TAG}:"
    else:
        url = f"{POSTGRES}?table=bench_djeng_{TAG}"
        cleanup.append(lambda: _drop_table(f"bench_djeng_{TAG}"))
    SETTINGS[variant] = {"COATCHECK": {"STORE": url, "MODE": "session", "COOKIE_SECURE": False}}
    backend = "django.contrib.auth.backends.ModelBackend"
    if "-only-" not in variant:  # docs/django.md's setup: logins through CoatcheckBackend
        backend = "coatcheck.adapters.django.backends.CoatcheckBackend"
        SETTINGS[variant]["AUTHENTICATION_BACKENDS"] = [backend]
    keys = []
    with override_settings(**SETTINGS[variant]):
        for u in users:
            s = SessionStore()
            s.update(_session_data(u, backend))
            s.save()
            keys.append(s.session_key)
    return [f"{settings.SESSION_COOKIE_NAME}={k}" for k in keys]


class Unavailable(Exception):
    """A variant that cannot run in this checkout (said in the results)."""


def _session_data(
    user: Any, backend: str = "django.contrib.auth.backends.ModelBackend"
) -> dict[str, Any]:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    return {
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: backend,
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }


def _django_sessions(variant: str, users: list[Any]) -> list[str]:
    from django.conf import settings
    from django.utils import timezone

    if variant == "django-cache-redis":
        from django.contrib.sessions.backends.cache import SessionStore as CacheStore

        keys = []
        for u in users:
            s = CacheStore()
            s.update(_session_data(u))
            s.save(must_create=True)
            keys.append(s.session_key)
    else:
        from django.contrib.sessions.backends.db import SessionStore as DBStore
        from django.contrib.sessions.models import Session

        encoder = DBStore()
        expires = timezone.now() + timedelta(days=14)
        keys = [secrets.token_hex(16) for _ in users]
        Session.objects.bulk_create(
            [Session(session_key=k, session_data=encoder.encode(_session_data(u)),
                     expire_date=expires) for k, u in zip(keys, users, strict=True)],
            batch_size=2000,
        )  # fmt: skip
    return [f"{settings.SESSION_COOKIE_NAME}={k}" for k in keys]


def handler_for(variant: str) -> Any:
    """A WSGIHandler with the middleware (and session engine) ``variant`` needs."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    engines = {
        "django-cache-redis": "django.contrib.sessions.backends.cache",
        "django-db-postgresql": "django.contrib.sessions.backends.db",
        "coatcheck-engine-redis": "coatcheck.adapters.django.sessions",
        "coatcheck-engine-postgresql": "coatcheck.adapters.django.sessions",
        "coatcheck-engine-only-redis": "coatcheck.adapters.django.sessions",
    }
    engine = engines.get(variant)
    if engine is None:
        with override_settings(MIDDLEWARE=[]):
            return WSGIHandler()
    documented = variant in ("coatcheck-engine-redis", "coatcheck-engine-postgresql")
    middleware = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "coatcheck.adapters.django.middleware.AuthenticationMiddleware"
        if documented
        else "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    with override_settings(MIDDLEWARE=middleware, SESSION_ENGINE=engine):
        return WSGIHandler()


# -- measuring ---------------------------------------------------------------------------

_BASE = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "SERVER_NAME": "testserver",
    "SERVER_PORT": "80",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "testserver",
    "REMOTE_ADDR": "127.0.0.1",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


class Runner:
    """Requests for one variant: each call sends the next credential."""

    def __init__(self, variant: str, handler: Any, creds: list[str]) -> None:
        self.variant = variant
        self.handler = handler
        self.creds = creds
        self.key = "HTTP_AUTHORIZATION" if creds[0].startswith("Bearer ") else "HTTP_COOKIE"
        self.path = VIEWS[variant]
        self.i = 0
        self.status = ""
        self.cpu_us = 0.0

    def _start(self, status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
        self.status = status

    def send(self, credential: str) -> str:
        environ = dict(_BASE)
        environ["PATH_INFO"] = self.path
        environ["wsgi.input"] = io.BytesIO(b"")
        environ[self.key] = credential
        body = self.handler(environ, self._start)
        for _ in body:
            pass
        body.close()
        return self.status

    def batch(self, n: int, one: bool) -> float:
        from django.test import override_settings

        with override_settings(**SETTINGS.get(self.variant, {})):
            self.send(self.creds[0])  # a runtime rebuilt for new settings is not timed
            return self._batch(n, one)

    def _batch(self, n: int, one: bool) -> float:
        creds, count = self.creds, len(self.creds)
        cpu = time.process_time()
        start = time.perf_counter()
        if one:
            credential = creds[0]
            for _ in range(n):
                self.send(credential)
        else:
            i = self.i
            for _ in range(n):
                self.send(creds[i % count])
                i += 1
            self.i = i
        took = time.perf_counter() - start
        # This process's CPU per request: what the other processes sharing the machine
        # cannot inflate (the stores' own work, in their servers, is not in it).
        self.cpu_us = (time.process_time() - cpu) * 1e6 / n
        return took


def check(runner: Runner, forged: str) -> None:
    """Every sampled credential gets a 200 and a forged one a refusal, or the run stops."""
    from django.test import override_settings

    with override_settings(**SETTINGS.get(runner.variant, {})):
        _check(runner, forged)


def _check(runner: Runner, forged: str) -> None:
    step = max(1, len(runner.creds) // 50)
    for credential in runner.creds[::step]:
        status = runner.send(credential)
        if not status.startswith("200"):
            raise SystemExit(f"{runner.variant}: a genuine credential got {status}")
    status = runner.send(forged)
    if status[:3] not in ("401", "403"):
        raise SystemExit(f"{runner.variant}: a forged credential got {status}")


def _forged(credential: str) -> str:
    return credential[:-4] + ("AAAA" if not credential.endswith("AAAA") else "BBBB")


def measure(runners: list[Runner], *, rounds: int, seconds: float, one: bool,
            say: Callable[[str], None]) -> dict[str, dict[str, float]]:  # fmt: skip
    """Requests per second per variant: the median of ``rounds`` interleaved rounds."""
    sizes = {}
    for r in runners:  # calibrate: a batch of about ``seconds``
        n = 20
        took = r.batch(n, one)
        sizes[r.variant] = max(20, int(n * seconds / max(took, 1e-6)))
    rates: dict[str, list[float]] = {r.variant: [] for r in runners}
    cpus: dict[str, list[float]] = {r.variant: [] for r in runners}
    for k in range(rounds):
        order = runners[k % len(runners):] + runners[: k % len(runners)]
        for r in order:
            n = sizes[r.variant]
            rates[r.variant].append(n / r.batch(n, one))
            cpus[r.variant].append(r.cpu_us)
        say(f"  round {k + 1}/{rounds} ({'one' if one else 'many'}) done")
    return {
        v: {"rps": statistics.median(x), "us": 1e6 / statistics.median(x), "rounds": x,
            "cpu_us": statistics.median(cpus[v]), "cpu_rounds": cpus[v]}
        for v, x in rates.items()
    }  # fmt: skip


def cpu_ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    """b's CPU per request over a's (a throughput ratio, process CPU only), per round."""
    if not a or not b:
        return None
    pairs = zip(a["cpu_rounds"], b["cpu_rounds"], strict=True)
    return statistics.median(y / x for x, y in pairs if x > 0)


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    """The median over rounds of a's req/s over b's in the same round (drift cancels)."""
    if not a or not b:
        return None
    return statistics.median(x / y for x, y in zip(a["rounds"], b["rounds"], strict=True))


def _drop_table(table: str) -> None:
    sys.path.insert(0, str(HERE))
    from micro import drop_postgres_table

    drop_postgres_table(POSTGRES, table)


def _redis_cleanup() -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    for pattern in (f"*bench:dj:{TAG}*", f"bench:djcc:{TAG}:*", f"bench:djeng:{TAG}:*"):
        batch = list(client.scan_iter(match=pattern, count=5000))
        for i in range(0, len(batch), 5000):
            client.delete(*batch[i : i + 5000])
    client.close()


def _pg_schema(create: bool) -> None:
    import psycopg

    sys.path.insert(0, str(HERE))
    from fixtures import ensure_postgres_database

    ensure_postgres_database(POSTGRES)
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        if create:
            conn.execute(f'CREATE SCHEMA "{SCHEMA}"')
        else:
            conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')


def run(quick: bool, users: int, say: Callable[[str], None]) -> dict[str, Any]:
    """The whole section: every variant, both regimes, the targets."""
    import django

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="coatcheck-djbench-"))
    _pg_schema(create=True)
    cleanup: list[Callable[[], None]] = []
    try:
        configure(tmp)
        from django.core.management import call_command

        call_command("migrate", "sessions", database="pg", verbosity=0)
        build_views()
        people = make_users(users)
        say(f"django: {len(people)} users in SQLite; credentials per variant ...")
        runners, skipped = [], {}
        for name, _, _ in VARIANTS:
            try:
                creds = credentials(name, people, cleanup)
            except Unavailable as exc:
                skipped[name] = str(exc)
                continue
            runner = Runner(name, handler_for(name), creds)
            check(runner, _forged(creds[0]))
            runners.append(runner)
            say(f"  {name}: {len(creds)} credentials, checked")
        rounds, seconds = (2, 0.2) if quick else (9, 1.0)
        many = measure(runners, rounds=rounds, seconds=seconds, one=False, say=say)
        one = measure(runners, rounds=rounds, seconds=seconds / 2, one=True, say=say)
    finally:
        for step in cleanup:
            try:
                step()
            except Exception as exc:
                say(f"cleanup: {exc!r}")
        from django.db import connections

        connections.close_all()
        _pg_schema(create=False)
        _redis_cleanup()
    rows = [
        {"variant": name, "what": what, "over": over,
         "many": many.get(name), "one": one.get(name), "skipped": skipped.get(name)}
        for name, what, over in VARIANTS
    ]  # fmt: skip
    targets = []
    for name, over, threshold, what in TARGETS:
        # "ahead of" is strict; "at least" and "within" are not.
        strict = threshold == 1.0
        for regime, table in (("many", many), ("one", one)):
            value = ratio(table.get(name), table.get(over))
            met = None if value is None else (value > threshold if strict else value >= threshold)
            targets.append({"what": what, "regime": regime, "threshold": threshold,
                            "strict": strict, "ratio": value, "met": met,
                            "cpu_ratio": cpu_ratio(table.get(name), table.get(over))})  # fmt: skip
    return {
        "meta": {"quick": quick, "users": users, "rounds": rounds, "seconds": seconds,
                 "django": django.get_version(), "took": time.monotonic() - started,
                 "versions": _versions()},
        "rows": rows,
        "targets": targets,
    }  # fmt: skip


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("django", "djangorestframework", "djangorestframework-simplejwt",
                 "django-redis", "psycopg", "redis", "PyJWT"):  # fmt: skip
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "-"
    return out


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    out = ["## Django and DRF (issue 14)", ""]
    out.append(
        f"`bench/django_bench.py`{' --quick' if meta['quick'] else ''}: in-process, a "
        "`WSGIHandler` called directly (Django's whole request handling, DRF's dispatch "
        "and authentication, the JSON renderer) on one view that answers the user's name; "
        "every variant but the stateless ones reads the user's row from the same SQLite "
        "table (coatcheck with its query compiled once, the others through the ORM). "
        "The `coatcheck-engine-*` rows are docs/django.md's setup (coatcheck's "
        "middleware and `CoatcheckBackend`); `coatcheck-engine-only-redis` swaps only "
        "`SESSION_ENGINE` (Django's middleware, `ModelBackend`). "
        f"`many`: {meta['users']:,} users, each request the next user's credential (the "
        "headline); `one`: one credential repeated. "
        f"{meta['rounds']} interleaved rounds: req/s is the median round, a ratio the "
        "median of the per-round ratios. "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + ". Shared 2-core machine: compare rows of one table."
    )
    out += ["", "| variant | what | many: req/s | many: µs/req | many: CPU µs/req | vs | "
            "ratio (many) | one: req/s | ratio (one) |",
            "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    by_name = {r["variant"]: r for r in results["rows"]}
    for r in results["rows"]:
        if r["skipped"]:
            out.append(f"| {r['variant']} | {r['what']} | not run: {r['skipped']} |"
                       " | | | | | |")  # fmt: skip
            continue
        many, one = r["many"], r["one"]
        base = by_name.get(r["over"]) if r["over"] else None
        ratio_many = ratio_one = ""
        if base and base["many"] and base["one"]:
            ratio_many = f"{ratio(many, base['many']):.2f}x"
            ratio_one = f"{ratio(one, base['one']):.2f}x"
        out.append(
            f"| {r['variant']} | {r['what']} | {many['rps']:,.0f} | {many['us']:.0f} | "
            f"{many['cpu_us']:.0f} | {r['over'] or ''} | {ratio_many} | {one['rps']:,.0f} | "
            f"{ratio_one} |"
        )
    out += ["", "Targets: the ratio is of throughput (wall clock); the CPU ratio, of this "
            "process's CPU per request, is what a busy shared machine disturbs least.", "",
            "| target | regime | ratio | CPU ratio | threshold | status |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for t in results["targets"]:
        status = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        shown = "-" if t["ratio"] is None else f"{t['ratio']:.2f}x"
        sign = "> " if t["strict"] else ">= "
        cpu = "-" if t.get("cpu_ratio") is None else f"{t['cpu_ratio']:.2f}x"
        out.append(f"| {t['what']} | {t['regime']} | {shown} | {cpu} | "
                   f"{sign}{t['threshold']}x | {status} |")  # fmt: skip
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run (seconds, noisy)")
    parser.add_argument("--users", type=int, default=0, help="distinct users (default 20000)")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args(argv)
    users = args.users or (300 if args.quick else 20_000)
    t0 = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {message}", file=sys.stderr, flush=True)

    results = run(args.quick, users, say)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
