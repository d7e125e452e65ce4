"""A user made from a verified credential alone, for APIs that need no database row.

:class:`IdentityUser` is what :class:`~coatcheck.adapters.django.drf.StatelessBearerAuthentication`
puts in ``request.user``: the user id and username from the token (or session data),
``is_authenticated`` true, and nothing more. It never grants a privilege: it is not
staff nor superuser, has no groups and no permissions, whatever the token carries,
and it cannot be saved. Modelled on Django's ``AnonymousUser`` (and simplejwt's
``TokenUser``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth import models as auth_models
from django.core.exceptions import ValidationError
from django.db.models.manager import EmptyManager

from ...auth.identity import Identity

__all__ = ["IdentityUser"]


def _key(user_id: str) -> Any:
    try:
        return get_user_model()._meta.pk.to_python(user_id)
    except (ValidationError, TypeError, ValueError):
        return user_id


class IdentityUser:
    """The user behind ``identity``, with no database row read (see the module docs)."""

    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False
    is_authenticated = True
    _groups = EmptyManager(auth_models.Group)
    _user_permissions = EmptyManager(auth_models.Permission)

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        #: The key as the user model's own type (an int for Django's User), so that
        #: ``request.user.pk == obj.owner_id`` holds as it would with the row.
        self.pk: Any = _key(identity.user_id)
        self.id: Any = self.pk
        username = identity.claims.get("username")
        self.username = username if isinstance(username, str) else ""

    def __str__(self) -> str:
        return self.username or str(self.id)

    def __repr__(self) -> str:
        return f"IdentityUser({self.id!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdentityUser):
            return NotImplemented
        return bool(self.id == other.id)

    def __hash__(self) -> int:
        return hash(self.id)

    def get_username(self) -> str:
        return self.username

    @property
    def groups(self) -> Any:
        return self._groups

    @property
    def user_permissions(self) -> Any:
        return self._user_permissions

    def get_user_permissions(self, obj: object = None) -> set[str]:
        return set()

    def get_group_permissions(self, obj: object = None) -> set[str]:
        return set()

    def get_all_permissions(self, obj: object = None) -> set[str]:
        return set()

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def has_perms(self, perm_list: object, obj: object = None) -> bool:
        return False

    def has_module_perms(self, module: str) -> bool:
        return False

    def save(self) -> None:
        raise NotImplementedError("an IdentityUser has no database row")

    def delete(self) -> None:
        raise NotImplementedError("an IdentityUser has no database row")

    def set_password(self, raw_password: str) -> None:
        raise NotImplementedError("an IdentityUser has no database row")

    def check_password(self, raw_password: str) -> bool:
        raise NotImplementedError("an IdentityUser has no database row")
