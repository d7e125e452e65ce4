"""settings.COATCHECK read into a config: the cookie names coatcheck picks itself."""

from __future__ import annotations

from typing import Any

import pytest

from coatcheck.adapters.django.conf import read_config
from coatcheck.tokens import Key

_KEY = Key.generate("ES256", kid="k").to_jwk(private=True)


def _config(**raw: Any) -> Any:
    return read_config(
        {"STORE": "memory://", "SIGNING_KEY": _KEY, **raw},
        session_cookie_name="sessionid", secret_key="s" * 50,
    )


@pytest.mark.parametrize(
    ("mode", "access", "refresh"),
    [
        ("hybrid", "__Host-coatcheck_access", "__Secure-coatcheck_refresh"),
        ("jwt", "__Host-coatcheck_token", "__Secure-coatcheck_refresh"),
    ],
)
def test_names_coatcheck_picks_are_prefixed_over_https(
    mode: str, access: str, refresh: str
) -> None:
    """Issue 12: a sibling subdomain cannot set a __Host- cookie, so it cannot toss one."""
    config = _config(MODE=mode)
    assert config.cookie_name == access
    if mode == "hybrid":
        assert config.refresh_cookie_name == refresh  # Path-limited: __Secure- at most
    plain = _config(MODE=mode, COOKIE_SECURE=False)
    assert not plain.cookie_name.startswith("__")
    assert not plain.refresh_cookie_name.startswith("__")


def test_names_the_user_gives_are_kept() -> None:
    config = _config(MODE="hybrid", COOKIE_NAME="acc", REFRESH_COOKIE_NAME="ref")
    assert (config.cookie_name, config.refresh_cookie_name) == ("acc", "ref")
    defaults = _config(MODE="hybrid", COOKIE_NAME=None, REFRESH_COOKIE_NAME=None)
    assert defaults.cookie_name == "__Host-coatcheck_access"


def test_session_mode_keeps_the_session_engine_cookie() -> None:
    assert _config(MODE="session").cookie_name == "sessionid"


def test_the_store_url_stays_out_of_the_repr() -> None:
    config = read_config(
        {"STORE": "redis://:hunter2-password@127.0.0.1:6379/0"},
        session_cookie_name="sessionid", secret_key="s" * 50,
    )
    assert "hunter2" not in repr(config)
