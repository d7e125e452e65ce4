"""The authentication backend: the user behind a coatcheck credential.

``AUTHENTICATION_BACKENDS = ["coatcheck.adapters.django.backends.CoatcheckBackend"]``
is Django's ``ModelBackend`` (passwords, permissions, the admin) plus one thing:
``django.contrib.auth.authenticate(request)`` with no credentials returns the user
whose coatcheck session or token the request carries. :func:`user_for` is what the
middleware uses for ``request.user`` in jwt and hybrid mode. Both read the user row with
the query :mod:`.users` compiles once (``ModelBackend``'s query, without compiling it
on every request).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from ...auth.identity import Identity
from .auth import authenticate as identity_of
from .users import load_user, user_of

__all__ = ["CoatcheckBackend", "user_for"]


def user_for(identity: Identity) -> Any:
    """The active user ``identity`` names, else ``AnonymousUser`` (a deleted or
    deactivated user, or a token whose subject is no primary key of the user model)."""
    user = user_of(identity)
    return AnonymousUser() if user is None else user


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
        # ModelBackend's answer (the default manager's row, then user_can_authenticate),
        # read with the compiled query: Django's get_user() calls this on every request
        # of a logged-in session. A key that is no key of the user model is nobody.
        user = load_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    async def aget_user(self, user_id: Any) -> Any:
        # Django 5's aget_user() (ASGI): the same answer; the ORM's aget() hops to a
        # thread for its query just the same.
        return await sync_to_async(self.get_user)(user_id)
