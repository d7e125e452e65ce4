"""``manage.py coatcheck_sessions`` and ``coatcheck_keygen``: the CLI's commands on the
store of settings.COATCHECK (a SQLite file here: the command opens it as the CLI does)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from coatcheck.adapters.django.devices import devices
from coatcheck.tokens import Key

from .test_middleware import PASSWORD, log_in, who


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    with override_settings(COATCHECK={"STORE": url, "COOKIE_SECURE": False}):
        yield url


@pytest.fixture
def ada(store: str) -> Iterator[User]:
    User.objects.all().delete()
    yield User.objects.create_user("ada", password=PASSWORD)
    User.objects.all().delete()


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_list_revoke_and_revoke_user(ada: User) -> None:
    phone, laptop = Client(), Client()
    log_in(phone)
    log_in(laptop)
    listed = json.loads(run("coatcheck_sessions", "list", "--user", str(ada.pk), "--json"))
    assert len(listed) == 2
    first = listed[0]["id"]
    assert "revoked session" in run("coatcheck_sessions", "revoke", first)
    assert [who(phone), who(laptop)].count(None) == 1
    assert "revoked 1 session" in run("coatcheck_sessions", "revoke-user", str(ada.pk))
    assert who(phone) is None
    assert who(laptop) is None
    assert devices(ada) == []


def test_prune(ada: User) -> None:
    with pytest.raises(CommandError):  # as the CLI: a missing database is never created
        run("coatcheck_sessions", "prune")
    log_in(Client())
    assert "removed 0 expired sessions" in run("coatcheck_sessions", "prune")


def test_usage_errors_exit_2(store: str) -> None:
    with pytest.raises(CommandError) as caught:
        run("coatcheck_sessions")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError) as caught:
        run("coatcheck_sessions", "revoke", "not-an-id")
    assert caught.value.returncode == 2


def test_keygen_prints_a_key_the_settings_accept(store: str) -> None:
    output = run("coatcheck_keygen", "--alg", "ES256")
    key = json.loads(output)
    assert Key.from_jwk(key).can_sign
    with override_settings(
        COATCHECK={"STORE": store, "MODE": "jwt", "SIGNING_KEY": output, "COOKIE_SECURE": False}
    ):
        assert call_command("check") is None
