"""System checks (``manage.py check``, and every ``runserver`` / ``migrate``): a missing
or bad ``settings.COATCHECK`` fails at start-up with a message that says how to fix it.

=============== ==========================================================
coatcheck.E001  ``settings.COATCHECK`` is missing
coatcheck.E002  ``settings.COATCHECK`` is malformed (not a dict, unknown keys, a bad
                value)
coatcheck.E003  ``COATCHECK["MODE"]`` is not session, jwt or hybrid
coatcheck.E004  ``COATCHECK["STORE"]`` is not a store URL coatcheck can open
coatcheck.E005  the signing key or refresh secret of jwt / hybrid mode is missing or bad
coatcheck.E006  session mode without coatcheck's session engine
=============== ==========================================================

The store check opens the store's driver and closes it again: nothing stays open.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags
from django.core.checks import register as register_check

from ...errors import ConfigurationError
from ...stores import open_store
from ...sync import run_sync
from .conf import ENGINE, SETTING, get_config

__all__ = ["check_settings", "register"]

_EXAMPLE = "COATCHECK = {'STORE': 'sqlite:///coatcheck.db', 'MODE': 'session'}"


def _error(message: str, hint: str, code: int) -> Error:
    return Error(message, hint=hint, obj=SETTING, id=f"coatcheck.E{code:03d}")


def _classify(exc: ConfigurationError) -> Error:
    text = str(exc)
    if "unknown keys" in text or "must be a dict" in text:
        return _error(text, f"Fix settings.COATCHECK, e.g. {_EXAMPLE}.", 2)
    if "['MODE']" in text and "must be one of" in text:
        return _error(text, "Set COATCHECK['MODE'] to 'session', 'jwt' or 'hybrid'.", 3)
    if "['STORE']" in text:
        return _error(text, f"Give a store URL, e.g. {_EXAMPLE}.", 4)
    if any(key in text for key in ("SIGNING_KEY", "VERIFY_KEYS", "REFRESH_SECRET", "SECRET_KEY")):
        return _error(
            text,
            "Run `manage.py coatcheck_keygen --alg ES256` and put the private JWK in "
            "COATCHECK['SIGNING_KEY'] (load it from the environment, not the source).",
            5,
        )
    return _error(text, f"Fix settings.COATCHECK, e.g. {_EXAMPLE}.", 2)


def check_settings(app_configs: Any = None, **_: Any) -> list[Error]:
    """The checks above, as Django's check framework calls them."""
    from django.conf import settings

    if getattr(settings, SETTING, None) is None:
        return [
            _error(
                "settings.COATCHECK is missing.",
                f"Add it to your settings: {_EXAMPLE} (any coatcheck store URL: memory://, "
                "sqlite:///path.db, redis://host:6379/0, postgresql://user@host/db).",
                1,
            )
        ]
    try:
        config = get_config()
    except ConfigurationError as exc:
        return [_classify(exc)]
    errors: list[Error] = []
    try:
        store = open_store(config.store_url, sync=True)
    except ConfigurationError as exc:
        errors.append(_error(str(exc), f"Give a store URL coatcheck can open, e.g. {_EXAMPLE}.", 4))
    else:
        run_sync(store.close())
    if config.mode == "session" and settings.SESSION_ENGINE != ENGINE:
        errors.append(
            _error(
                "COATCHECK['MODE'] is 'session', whose credential is the session engine's "
                f"record, but SESSION_ENGINE is {settings.SESSION_ENGINE!r}.",
                f"Set SESSION_ENGINE = {ENGINE!r}, or choose MODE 'jwt' or 'hybrid'.",
                6,
            )
        )
    return errors


def register() -> None:
    """Register :func:`check_settings` (idempotent: Django keeps a set)."""
    register_check(Tags.security)(check_settings)
