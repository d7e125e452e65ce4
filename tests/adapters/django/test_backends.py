"""coatcheck.adapters.django.backends: ModelBackend's answers, the user row read with the
query compiled once (what Django's get_user() asks of the backend on every request)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from coatcheck.adapters.django import users
from coatcheck.adapters.django.backends import CoatcheckBackend, user_for
from coatcheck.auth import Identity

BACKEND = "coatcheck.adapters.django.backends.CoatcheckBackend"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def people() -> Iterator[list[Any]]:
    model = get_user_model()
    model.objects.all().delete()
    made = [
        model.objects.create_user(name, password=PASSWORD, is_active=active)
        for name, active in (("ada", True), ("bob", False))
    ]
    yield made
    model.objects.all().delete()


@pytest.mark.parametrize("user_id", ["999999999", "-1", "0", "9" * 40])
def test_get_user_answers_what_model_backend_answers(people: list[Any], user_id: str) -> None:
    ada, bob = people
    for key in (ada.pk, str(ada.pk), bob.pk, str(bob.pk), user_id):
        ours, theirs = CoatcheckBackend().get_user(key), ModelBackend().get_user(key)
        assert (ours is None) == (theirs is None), key
        if ours is not None:
            assert type(ours) is type(theirs)
            assert ours.pk == theirs.pk
            assert ours.password == theirs.password
            assert ours.last_login == theirs.last_login


@pytest.mark.parametrize("user_id", ["abc", "", "1.5", "\x00", None])
def test_a_key_of_no_user_is_nobody_not_an_error(people: list[Any], user_id: Any) -> None:
    assert CoatcheckBackend().get_user(user_id) is None


def test_an_inactive_user_is_refused_unless_the_subclass_allows_it(people: list[Any]) -> None:
    _, bob = people

    class LetsInactiveIn(CoatcheckBackend):
        def user_can_authenticate(self, user: Any) -> bool:
            return True

    assert CoatcheckBackend().get_user(str(bob.pk)) is None
    found = LetsInactiveIn().get_user(str(bob.pk))
    assert found is not None
    assert found.username == "bob"


def test_aget_user_answers_as_get_user(people: list[Any]) -> None:
    import asyncio

    ada, bob = people
    for key in (str(ada.pk), str(bob.pk), "999999999", "abc"):
        found = asyncio.run(CoatcheckBackend().aget_user(key))
        expected = CoatcheckBackend().get_user(key)
        assert (found is None) == (expected is None), key
        if found is not None:
            assert found.pk == expected.pk


def test_get_user_is_one_compiled_query(people: list[Any]) -> None:
    ada, _ = people
    model = get_user_model()
    users._compiled.pop((model, model._default_manager.db), None)
    CoatcheckBackend().get_user(str(ada.pk))
    assert users._compiled[(model, model._default_manager.db)] is not None
    with CaptureQueriesContext(connection) as queries:
        assert CoatcheckBackend().get_user(str(ada.pk)) is not None
    assert len(queries.captured_queries) == 1


def test_user_for(people: list[Any]) -> None:
    ada, bob = people
    assert user_for(Identity(user_id=str(ada.pk), mode="jwt")).username == "ada"
    for user_id in (str(bob.pk), "999999999", "abc"):
        assert isinstance(user_for(Identity(user_id=user_id, mode="jwt")), AnonymousUser)


def _who(client: Client) -> Any:
    response = client.get("/whoami")
    assert response.status_code == 200, response.content
    return response.json()["user"]


_OURS = "coatcheck.adapters.django.middleware.AuthenticationMiddleware"
_DJANGOS = "django.contrib.auth.middleware.AuthenticationMiddleware"


@pytest.mark.parametrize(
    ("engine", "auth_middleware"),
    [("coatcheck.adapters.django.sessions", _OURS),
     ("coatcheck.adapters.django.sessions", _DJANGOS),
     ("django.contrib.sessions.backends.db", _DJANGOS)],
)  # fmt: skip
def test_a_session_logged_in_through_the_backend(
    people: list[Any], engine: str, auth_middleware: str
) -> None:
    """Django's get_user() through this backend: the user, and its session-hash check
    (a password change elsewhere logs the session out) still Django's."""
    from django.conf import settings

    ada, _ = people
    stack = [auth_middleware if m == _OURS else m for m in settings.MIDDLEWARE]
    with override_settings(AUTHENTICATION_BACKENDS=[BACKEND], SESSION_ENGINE=engine,
                           MIDDLEWARE=stack):  # fmt: skip
        client = Client()
        client.force_login(ada, backend=BACKEND)
        with CaptureQueriesContext(connection) as queries:
            assert _who(client) == "ada"
        assert sum("auth_user" in q["sql"] for q in queries.captured_queries) == 1
        assert client.get("/awhoami").json()["user"] == "ada"  # request.auser()
        ada.set_password("another long passphrase")
        ada.save()
        assert _who(client) is None
