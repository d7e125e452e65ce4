"""coatcheck.adapters.django.users: the user row read with a query compiled once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from coatcheck.adapters.django import users
from coatcheck.auth import Identity


@pytest.fixture
def people() -> list[Any]:
    model = get_user_model()
    made = []
    for name, active in (("dora", True), ("eve", False), ("fay", True)):
        user, _ = model.objects.get_or_create(username=name, defaults={"is_active": active})
        user.first_name = name.title()
        user.save()
        made.append(user)
    return made


def _who(user_id: str) -> Identity:
    return Identity(user_id=user_id, mode="jwt")


def test_the_row_is_the_orm_s_row(people: list[Any]) -> None:
    for user in (people[0], people[2]):
        found = users.user_of(_who(str(user.pk)))
        orm = get_user_model().objects.get(pk=user.pk)
        assert found is not None
        assert type(found) is type(orm)
        for field in orm._meta.concrete_fields:
            assert getattr(found, field.attname) == getattr(orm, field.attname), field.name
        # Converted as the ORM converts (aware datetimes, booleans), and saved in place.
        assert found.date_joined.tzinfo is not None
        assert found._state.adding is False
        found.last_name = "Changed"
        found.save(update_fields=["last_name"])
        assert get_user_model().objects.get(pk=user.pk).last_name == "Changed"


def test_the_fast_path_is_taken_with_one_query(people: list[Any]) -> None:
    model = get_user_model()
    users.user_of(_who(str(people[0].pk)))
    assert users._compiled[(model, model._default_manager.db)] is not None
    with CaptureQueriesContext(connection) as queries:
        assert users.user_of(_who(str(people[2].pk))) is not None
    assert len(queries.captured_queries) == 1
    assert str(people[2].pk) in queries.captured_queries[0]["sql"]


@pytest.mark.parametrize("user_id", ["999999999", "-1", "abc", "", "1.5", "9" * 40, "\x00"])
def test_unknown_or_malformed_ids_are_nobody(people: list[Any], user_id: str) -> None:
    assert users.user_of(_who(user_id)) is None


def test_an_inactive_user_is_nobody(people: list[Any]) -> None:
    assert users.user_of(_who(str(people[1].pk))) is None


def test_threads_read_with_their_own_connections(people: list[Any]) -> None:
    from django.db import connections

    found: list[Any] = []

    def read() -> None:
        try:
            found.append(users.user_of(_who(str(people[0].pk))))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [u.username for u in found] == ["dora"] * 8


def test_a_manager_the_compiled_form_cannot_stand_for_goes_through_the_orm(
    people: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db.models import Value

    model = get_user_model()

    class Annotated(type(model._default_manager)):  # type: ignore[misc]
        def get_queryset(self) -> Any:
            return super().get_queryset().annotate(flag=Value(1))

    manager = Annotated()
    manager.model = model
    # Options.default_manager is a cached property: this is what _default_manager returns.
    monkeypatch.setitem(model._meta.__dict__, "default_manager", manager)
    assert model._default_manager is manager
    assert users._compile(model, "default") is None
    monkeypatch.setitem(users._compiled, (model, "default"), None)
    found = users.user_of(_who(str(people[0].pk)))
    assert found is not None
    assert found.flag == 1  # the ORM's answer, annotation and all
