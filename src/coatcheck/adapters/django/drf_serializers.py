"""The bodies of the token views (:mod:`coatcheck.adapters.django.drf`) as DRF serializers.

Text fields are checked where they enter (:func:`coatcheck.bodies.check_text`: no lone
surrogate, no NUL, bounded length), so a hostile password or username is a 400 with a
code, never a 500 in the password hasher or the database driver later.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from ...bodies import check_text
from ...errors import InputError

__all__ = [
    "TokenObtainSerializer",
    "TokenPairSerializer",
    "TokenRefreshSerializer",
    "TokenRevokeSerializer",
]

_MAX_FIELD = 4096


def _text(value: str) -> None:
    try:
        check_text(value, field="the field")
    except InputError as exc:
        raise serializers.ValidationError(exc.message, code=exc.code) from None


class _Text(serializers.CharField):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=_MAX_FIELD, trim_whitespace=False, **kwargs)
        self.validators.append(_text)


class TokenObtainSerializer(serializers.Serializer):  # type: ignore[misc]
    """The user model's username field (``USERNAME_FIELD``), ``password``, and
    ``remember`` (default true: a persistent login)."""

    password = _Text(write_only=True)
    remember = serializers.BooleanField(required=False, default=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[get_user_model().USERNAME_FIELD] = _Text()


class TokenRefreshSerializer(serializers.Serializer):  # type: ignore[misc]
    """``refresh``: the refresh token of the pair."""

    refresh = _Text()


class TokenRevokeSerializer(serializers.Serializer):  # type: ignore[misc]
    """``refresh`` (optional): the refresh token whose session ends."""

    refresh = _Text(required=False)


class TokenPairSerializer(serializers.Serializer):  # type: ignore[misc]
    """A token response (RFC 6749 §5.1 fields beside simplejwt's names)."""

    access = serializers.CharField()
    refresh = serializers.CharField(required=False)
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()
