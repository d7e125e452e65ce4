"""System checks: a missing or bad settings.COATCHECK fails at start-up, with an id and
a hint, and the check leaves no connection open."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from coatcheck.adapters.django.checks import check_settings
from coatcheck.tokens import Key

GOOD_KEY = Key.generate("ES256").to_jwk(private=True)


def ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        errors = check_settings()
    for error in errors:
        assert error.hint, error  # every error says how to fix it
    return [error.id for error in errors]


def test_a_good_configuration_passes() -> None:
    assert ids(COATCHECK={"STORE": "memory://"}) == []
    assert ids(COATCHECK={"STORE": "memory://", "MODE": "jwt", "SIGNING_KEY": GOOD_KEY}) == []


def test_missing_setting() -> None:
    assert ids(COATCHECK=None) == ["coatcheck.E001"]


@pytest.mark.parametrize(
    ("config", "code"),
    [
        ("memory://", "coatcheck.E002"),
        ({"STORE": "memory://", "STOR": "x"}, "coatcheck.E002"),
        ({"STORE": "memory://", "TRANSPORTS": ["carrier pigeon"]}, "coatcheck.E002"),
        ({"STORE": "memory://", "IDLE_TIMEOUT": -1}, "coatcheck.E002"),
        ({"STORE": "memory://", "MODE": "cookies"}, "coatcheck.E003"),
        (
            {"STORE": "memory://", "MODE": "hybrid", "SIGNING_KEY": GOOD_KEY, "FEED": "x://y"},
            "coatcheck.E002",
        ),
        ({}, "coatcheck.E004"),
        ({"STORE": "mysql://localhost/db"}, "coatcheck.E004"),
        ({"STORE": "no scheme here"}, "coatcheck.E004"),
        ({"STORE": "memory://", "MODE": "jwt"}, "coatcheck.E005"),
        ({"STORE": "memory://", "MODE": "hybrid", "SIGNING_KEY": "not json"}, "coatcheck.E005"),
        ({"STORE": "memory://", "MODE": "jwt", "SIGNING_KEY": {"kty": "oct"}}, "coatcheck.E005"),
        (
            {
                "STORE": "memory://",
                "MODE": "hybrid",
                "SIGNING_KEY": GOOD_KEY,
                "REFRESH_SECRET": "short",
            },
            "coatcheck.E005",
        ),
    ],
)
def test_bad_configuration(config: Any, code: str) -> None:
    assert ids(COATCHECK=config) == [code]


def test_session_mode_needs_the_engine() -> None:
    assert ids(
        COATCHECK={"STORE": "memory://"},
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    ) == ["coatcheck.E006"]


def test_the_store_check_leaves_nothing_open(postgres_store_url: str, redis_url: str) -> None:
    import psycopg

    def connections() -> int:
        with psycopg.connect(postgres_store_url.partition("?")[0], autocommit=True) as db:
            row = db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            ).fetchone()
        assert row is not None
        return int(row[0])

    before = connections()
    for _ in range(5):
        assert ids(COATCHECK={"STORE": postgres_store_url}) == []
        assert ids(COATCHECK={"STORE": redis_url + "?prefix=cc-check:"}) == []
    assert connections() <= before
