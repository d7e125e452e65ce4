"""The Django user behind a coatcheck identity: one query by primary key, compiled once.

:func:`user_of` reads the row with the SQL the ORM makes for
``User._default_manager.filter(pk=...)`` (the default manager's own filters included),
compiled once per user model and database and then executed with the next primary key.
It is the same query as ``.get(pk=...)``, without compiling it on every request: on an
authenticated API request the ORM's compiling costs more than the database's answer
(``bench/django_bench.py``). Row values go through the backend's converters, and the
instance is made with ``Model.from_db``, as the ORM's own iteration does.

A default manager the compiled form cannot stand for (annotations, ``select_related``,
deferred fields, extra selects, a primary-key type other than integers, UUIDs and
strings), and any default manager with a ``get_queryset`` of its own (it may filter by
something that changes from request to request, a tenant from a thread-local, which a
compiled query would freeze), is read through the ORM instead, every time.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models.expressions import Col
from django.db.models.manager import BaseManager

from ...auth.identity import Identity

__all__ = ["load_user", "user_of"]

# Values no primary key holds: the placeholder whose position in the compiled
# parameters is where each request's key goes.
_INT_SENTINEL = -7_392_144_580_611_937
_UUID_SENTINEL = uuid.UUID("c0a7c4ec-0000-4000-8000-000000000001")
_STR_SENTINEL = "\x1ecoatcheck-user-lookup\x1e"
_INT_TYPES = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
    }
)


class _Compiled:
    """The default manager's by-primary-key query for one model on one database."""

    __slots__ = ("alias", "at", "converters", "names", "params", "sql")

    def __init__(
        self, alias: str, sql: str, params: list[Any], at: int, compiler: Any, names: list[str]
    ) -> None:
        self.alias = alias
        self.sql = sql
        self.params = params
        self.at = at
        self.names = names
        # {column index: (converter functions, expression)}: the backend's and the fields'.
        self.converters: dict[int, tuple[list[Any], Any]] = compiler.get_converters(
            [col for col, _, _ in compiler.select]
        )


_compiled: dict[tuple[type, str], _Compiled | None] = {}
_lock = threading.Lock()


def _sentinel(field: Any) -> Any:
    kind = field.get_internal_type()
    if kind in _INT_TYPES:
        return _INT_SENTINEL
    if kind == "UUIDField":
        return _UUID_SENTINEL
    if kind in ("CharField", "TextField", "SlugField", "EmailField"):
        return _STR_SENTINEL
    return None


def _compile(model: type, alias: str) -> _Compiled | None:
    """The compiled query, or ``None`` when only the ORM can stand for this manager."""
    field = model._meta.pk  # type: ignore[attr-defined]
    sentinel = _sentinel(field)
    manager = model._default_manager  # type: ignore[attr-defined]
    if sentinel is None or type(manager).get_queryset is not BaseManager.get_queryset:
        return None
    queryset = model._default_manager.db_manager(alias).filter(pk=sentinel)  # type: ignore[attr-defined]
    query = queryset.query
    if (
        query.annotations
        or query.extra
        or query.select_related
        or query.deferred_loading != (frozenset(), True)
        or query.distinct
        or query.combinator
    ):
        return None
    compiler = query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    params = list(params)
    prepared = field.get_db_prep_value(sentinel, connections[alias], prepared=False)
    where = [i for i, value in enumerate(params) if value == prepared]
    if len(where) != 1 or not all(isinstance(col, Col) for col, _, _ in compiler.select):
        return None
    names = [col.target.attname for col, _, _ in compiler.select]
    if field.attname not in names:
        return None
    return _Compiled(alias, sql, params, where[0], compiler, names)


def _lookup(model: type, alias: str) -> _Compiled | None:
    key = (model, alias)
    try:
        return _compiled[key]
    except KeyError:
        pass
    with _lock:
        if key not in _compiled:
            _compiled[key] = _compile(model, alias)
        return _compiled[key]


_INT64 = (-(2**63), 2**63 - 1)


def _in_range(field: Any, pk: Any, connection: Any) -> bool:
    """Whether an integer key fits its column (a key past it matches no row; sent to the
    database it is an overflow error, not "nobody")."""
    kind = field.get_internal_type()
    if kind not in _INT_TYPES or not isinstance(pk, int):
        return True
    low, high = connection.ops.integer_field_range(kind)
    return (_INT64[0] if low is None else low) <= pk <= (_INT64[1] if high is None else high)


def _read(model: Any, compiled: _Compiled, pk: Any) -> Any | None:
    alias = compiled.alias
    connection = connections[alias]
    if not _in_range(model._meta.pk, pk, connection):
        return None
    params = list(compiled.params)
    params[compiled.at] = model._meta.pk.get_db_prep_value(pk, connection, prepared=False)
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    if compiled.converters:
        # What SQLCompiler.apply_converters does, with this thread's connection.
        values = list(row)
        for at, (converters, expression) in compiled.converters.items():
            value = values[at]
            for converter in converters:
                value = converter(value, expression, connection)
            values[at] = value
        row = values
    return model.from_db(alias, compiled.names, row)


def user_of(identity: Identity) -> Any | None:
    """The active Django user whose primary key is ``identity.user_id``, or ``None``.

    One query, as DRF's and simplejwt's classes make: a deleted or deactivated user
    is refused at once, whatever their token says (fail closed). A user id that is
    not a valid key for the user model (a token of another app) is ``None`` too.
    Database errors propagate, as the ORM's would.
    """
    user = load_user(identity.user_id)
    if user is None or not getattr(user, "is_active", True):
        return None
    return user


def load_user(user_id: object) -> Any | None:
    """The user whose primary key is ``user_id``, active or not, or ``None``.

    ``User._default_manager.get(pk=user_id)`` (what ``ModelBackend.get_user`` reads),
    with the compiled query where it stands for that manager. A value that is no valid
    key of the user model is ``None``, not an error.
    """
    model: Any = get_user_model()
    try:
        pk = model._meta.pk.to_python(user_id)
    except (ValidationError, TypeError, ValueError):
        return None
    manager = model._default_manager
    compiled = _lookup(model, manager.db)
    if compiled is None:
        if not _in_range(model._meta.pk, pk, connections[manager.db]):
            return None
        try:
            user = manager.get(pk=pk)
        except (model.DoesNotExist, ValidationError, TypeError, ValueError):
            return None
    else:
        try:
            user = _read(model, compiled, pk)
        except (ValidationError, TypeError, ValueError):
            return None
    return user
