"""coatcheck.adapters.django.openapi: drf-spectacular shows coatcheck's security schemes."""

from __future__ import annotations

# Django's settings first (drf_site configures them): the imports below read them.
# ruff: noqa: I001
from . import drf_schema_urls

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from coatcheck.tokens import Key

SCHEMA_SETTINGS = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "coatcheck.adapters.django.drf.exception_handler",
}


def _schema(tmp_path: Path, coatcheck: dict[str, Any]) -> dict[str, Any]:
    out = tmp_path / "schema.json"
    with override_settings(
        REST_FRAMEWORK=SCHEMA_SETTINGS, COATCHECK=coatcheck, ROOT_URLCONF=drf_schema_urls.__name__
    ):
        # --fail-on-warn: any warning (an unguessable body, an unknown auth class) fails.
        call_command(
            "spectacular", "--fail-on-warn", "--validate", "--format", "openapi-json",
            "--file", str(out),
        )  # fmt: skip
    schema: dict[str, Any] = json.loads(out.read_text())
    return schema


@pytest.fixture
def hybrid() -> dict[str, Any]:
    key = Key.generate("ES256").to_jwk(private=True)
    return {"STORE": "memory://", "MODE": "hybrid", "SIGNING_KEY": key}


def test_the_schema_has_both_security_schemes_and_no_warning(
    tmp_path: Path, hybrid: dict[str, Any]
) -> None:
    schema = _schema(tmp_path, hybrid)
    schemes = schema["components"]["securitySchemes"]
    assert schemes["coatcheckBearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["coatcheckCookie"] == {
        "type": "apiKey", "in": "cookie", "name": "coatcheck_access",
    }  # fmt: skip
    me = schema["paths"]["/configured/me/"]["get"]
    assert {"coatcheckBearer": []} in me["security"]
    assert {"coatcheckCookie": []} in me["security"]


def test_the_token_views_show_their_bodies_and_need_no_auth(
    tmp_path: Path, hybrid: dict[str, Any]
) -> None:
    schema = _schema(tmp_path, hybrid)
    obtain = schema["paths"]["/configured/token/"]["post"]
    body = obtain["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][body.rsplit("/", 1)[1]]["properties"]
    assert {"username", "password", "remember"} <= set(fields)
    pair = obtain["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert {"access", "refresh", "token_type", "expires_in"} <= set(
        schema["components"]["schemas"][pair.rsplit("/", 1)[1]]["properties"]
    )
    assert obtain.get("security") in (None, [], [{}])
    refresh = schema["paths"]["/configured/token/refresh/"]["post"]
    ref = refresh["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "refresh" in schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    assert "204" in schema["paths"]["/configured/token/revoke/"]["post"]["responses"]


def test_session_mode_shows_an_opaque_bearer_and_the_session_cookie(tmp_path: Path) -> None:
    schema = _schema(tmp_path, {"STORE": "memory://", "MODE": "session"})
    schemes = schema["components"]["securitySchemes"]
    assert schemes["coatcheckBearer"] == {"type": "http", "scheme": "bearer"}
    assert schemes["coatcheckCookie"]["name"] == "sessionid"
