"""The authentication backend: the user behind a coatcheck credential.

``AUTHENTICATION_BACKENDS = ["coatcheck.adapters.django.backends.CoatcheckBackend"]``
is Django's ``ModelBackend`` (passwords, permissions, the admin) plus one thing:
``django.contrib.auth.authenticate(request)`` with no credentials returns the user
whose coatcheck session or token the request carries. :func:`user_for` is what the
middleware uses for ``request.user`` in jwt and hybrid mode.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from ...auth.identity import Identity
from .auth import authenticate as identity_of

__all__ = ["CoatcheckBackend", "user_for"]


def user_for(identity: Identity) -> Any:
    """The active user ``identity`` names, else ``AnonymousUser`` (a deleted or
    deactivated user, or a token whose subject is no primary key of the user model)."""
    model = get_user_model()
    try:
        pk = model._meta.pk.to_python(identity.user_id)
        user = model._default_manager.get(pk=pk)
    except (model.DoesNotExist, ValidationError, ValueError, TypeError, OverflowError):
        return AnonymousUser()
    if not getattr(user, "is_active", True):
        return AnonymousUser()
    return user


class CoatcheckBackend(ModelBackend):  # type: ignore[misc]  # Django is untyped
    """``ModelBackend``, and the coatcheck credential when no credentials are given."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None,
        password: str | None = None, **kwargs: Any,
    ) -> Any:  # fmt: skip
        if request is not None and username is None and password is None and not kwargs:
            identity = identity_of(request)
            if identity is None:
                return None
            user = user_for(identity)
            return None if isinstance(user, AnonymousUser) else user
        return super().authenticate(request, username, password, **kwargs)

    def get_user(self, user_id: Any) -> Any:
        return super().get_user(user_id)
