"""coatcheck.adapters.django.openapi: drf-spectacular shows coatcheck's security schemes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from coatcheck.tokens import Key

from . import drf_schema_urls, drf_site


def _schema(coatcheck: dict[str, Any]) -> dict[str, Any]:
    GENERATOR_STATS.reset()
    with override_settings(
        **{**drf_site.SETTINGS, "ROOT_URLCONF": drf_schema_urls.__name__}, COATCHECK=coatcheck
    ):
        schema: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    # What `manage.py spectacular --fail-on-warn --validate` checks: no warning, no
    # error (an unguessable body, an unknown authentication class), a valid OpenAPI 3.
    assert not GENERATOR_STATS, GENERATOR_STATS._warn_cache | GENERATOR_STATS._error_cache
    validate_schema(schema)
    return schema


@pytest.fixture
def hybrid() -> dict[str, Any]:
    key = Key.generate("ES256").to_jwk(private=True)
    return {"STORE": "memory://", "MODE": "hybrid", "SIGNING_KEY": key}


def test_the_schema_has_both_security_schemes_and_no_warning(hybrid: dict[str, Any]) -> None:
    schema = _schema(hybrid)
    schemes = schema["components"]["securitySchemes"]
    assert schemes["coatcheckBearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["coatcheckCookie"] == {
        "type": "apiKey", "in": "cookie", "name": "__Host-coatcheck_access",
    }  # fmt: skip
    me = schema["paths"]["/configured/me/"]["get"]
    assert {"coatcheckBearer": []} in me["security"]
    assert {"coatcheckCookie": []} in me["security"]


def test_the_token_views_show_their_bodies_and_need_no_auth(hybrid: dict[str, Any]) -> None:
    schema = _schema(hybrid)
    components = schema["components"]["schemas"]

    def fields(ref: str) -> set[str]:
        return set(components[ref.rsplit("/", 1)[1]]["properties"])

    obtain = schema["paths"]["/configured/token/"]["post"]
    body = obtain["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert {"username", "password", "remember"} <= fields(body)
    pair = obtain["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert {"access", "refresh", "token_type", "expires_in"} <= fields(pair)
    assert obtain.get("security") in (None, [], [{}])
    refresh = schema["paths"]["/configured/token/refresh/"]["post"]
    ref = refresh["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "refresh" in fields(ref)
    assert "204" in schema["paths"]["/configured/token/revoke/"]["post"]["responses"]


def test_session_mode_shows_an_opaque_bearer_and_the_session_cookie() -> None:
    schema = _schema({"STORE": "memory://", "MODE": "session"})
    schemes = schema["components"]["securitySchemes"]
    assert schemes["coatcheckBearer"] == {"type": "http", "scheme": "bearer"}
    assert schemes["coatcheckCookie"]["name"] == "sessionid"
