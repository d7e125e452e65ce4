"""The session mapping: a ``dict`` that holds only JSON, knows what changed, merges by key.

:class:`SessionMapping` is what ``request.session`` (Starlette, FastAPI), ``flask.session``
and the WSGI adapter's ``session_of(environ)`` are. It is a real ``dict`` subclass, so
code written for Starlette's or Flask's session (``isinstance(s, dict)``,
``json.dumps(s)``, ``dict(s)``) keeps working. Pure: no I/O, no clock.

* **JSON only.** Assigning a value JSON cannot hold raises
  :class:`~coatcheck.errors.SessionValueError` (also a ``TypeError``) at once, naming the
  key and the type: ``session['when'] is a datetime``. Allowed: ``dict`` with ``str``
  keys, ``list``, ``str``, ``int``, ``float`` (finite), ``bool``, ``None``; a ``tuple``
  is a JSON array and comes back as a ``list`` (as with Starlette's and Flask-Session's
  JSON), and subclasses (``str`` enums, ``markupsafe.Markup``) come back as their base
  type. Also refused, because some store cannot keep them: text with a NUL character
  (PostgreSQL ``jsonb``) or a lone surrogate (UTF-8), and nesting deeper than
  :data:`MAX_DEPTH`. Values are checked again at save, which catches a non-JSON value
  put *inside* a list or dict after it was assigned.
* **Change tracking.** The mapping starts as a deep copy of the stored data (its
  :attr:`~SessionMapping.base`, never modified, because stores share decoded records
  between requests). :meth:`~SessionMapping.changes` compares the two strictly (``True``
  is not ``1``, ``1`` is not ``1.0``), so nested changes such as
  ``session["cart"].append(...)`` are found without the app saying anything.
* **Key-level merge.** :class:`Changes` lists the keys set and removed;
  :meth:`Changes.apply` replays them on whatever another request stored meanwhile, so two
  tabs that change different keys both keep their change. Two changes of the *same* key
  race as in a plain dict: the later save wins for that key.
"""

from __future__ import annotations

import json
import math
from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from dataclasses import dataclass
from typing import Any

from ..errors import SessionValueError

__all__ = ["MAX_DEPTH", "Changes", "SessionMapping", "check_json", "copy_json", "dump_json", "same"]

#: Deepest nesting of lists and dicts a session value may have.
MAX_DEPTH = 32

_SCALARS = (str, int, float, bool, type(None))


def _describe(value: object) -> str:
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def _check_text(text: str, where: str, key: str, what: str) -> None:
    if text.isascii():
        if "\x00" in text:
            raise SessionValueError(
                f"{where} {what} holds a NUL character, which PostgreSQL cannot store", key=key
            )
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SessionValueError(
            f"{where} {what} holds a lone surrogate, which UTF-8 cannot encode", key=key
        ) from None
    if "\x00" in text:
        raise SessionValueError(
            f"{where} {what} holds a NUL character, which PostgreSQL cannot store", key=key
        )


def _check(value: object, where: str, key: str, depth: int) -> None:
    if isinstance(value, str):
        _check_text(value, where, key, "text")
        return
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SessionValueError(f"{where} is {value!r}, which JSON cannot hold", key=key)
        return
    if depth >= MAX_DEPTH:
        raise SessionValueError(f"{where} is nested deeper than {MAX_DEPTH} levels", key=key)
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                raise SessionValueError(
                    f"{where} has a key of type {type(name).__name__}; JSON object keys are "
                    "text (str)",
                    key=key,
                )
            _check_text(name, where, key, f"key {name[:40]!r}")
            _check(item, f"{where}[{name!r}]", key, depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]", key, depth + 1)
        return
    raise SessionValueError(
        f"{where} is {_describe(value)}; session values must be JSON: a dict with str keys, "
        "list, tuple, str, int, float, bool or None",
        key=key,
    )


def check_json(key: str, value: object) -> None:
    """Check that ``session[key] = value`` holds only JSON (see the module docstring).

    :raises SessionValueError: naming the key, the path inside the value and the type.
    """
    if not isinstance(key, str):
        raise SessionValueError(
            f"a session key must be text (str), not {_describe(key)}", key=repr(key)
        )
    where = f"session[{key[:40]!r}]"
    _check_text(key, where, key, "key")
    if type(value) in _SCALARS and type(value) is not str and type(value) is not float:
        return  # int, bool, None: the common case, checked without a walk
    _check(value, where, key, 0)


def copy_json(value: Any) -> Any:
    """A deep copy of JSON data (lists and dicts copied, everything else shared)."""
    kind = type(value)
    if kind is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if kind is list:
        return [copy_json(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    """Whether two JSON values are the same JSON: equal *and* of the same types throughout.

    Python says ``True == 1 == 1.0``; JSON writes them differently, so this does not.
    """
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        if len(a) != len(b):
            return False
        missing = object()
        for key, value in a.items():
            other = b.get(key, missing)
            if other is missing or not same(value, other):
                return False
        return True
    if kind is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def dump_json(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON of session data, as the stores write it (for sizes and cookies).

    :raises SessionValueError: when something JSON cannot hold was put inside a value.
    """
    try:
        return json.dumps(
            data, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        # check_json on assignment makes this rare: a value mutated after assignment.
        for key, value in data.items():
            check_json(key, value)
        raise SessionValueError(f"the session data is not JSON ({exc})") from exc


@dataclass(frozen=True, slots=True)
class Changes:
    """What a request did to its session, key by key: replay it with :meth:`apply`.

    ``set`` maps each key added or changed to its new value; ``removed`` holds the keys
    deleted. ``cleared`` says the request called ``clear()``: then keys another request
    added meanwhile go too, as the app asked. Deleting keys one by one (consuming flash
    messages, say) removes only those keys.
    """

    set: Mapping[str, Any]
    removed: frozenset[str]
    cleared: bool = False

    def apply(self, base: Mapping[str, Any]) -> dict[str, Any]:
        """``base`` (the latest stored data) with these changes: a new dict."""
        if self.cleared:
            return dict(self.set)
        removed = self.removed
        merged = {k: v for k, v in base.items() if k not in removed} if removed else dict(base)
        merged.update(self.set)
        return merged


class SessionMapping(dict[str, Any]):
    """A request's session data: a ``dict`` of JSON values that tracks its own changes.

    ``base`` is the data as it was stored (``{}`` for a new session). ``new`` tells
    whether a stored session stood behind it. ``binding`` is the id a guest's CSRF tokens
    may bind to ("" when there is none yet). ``handle`` belongs to the backend that
    opened the mapping (what it needs to save).

    The stored values are shared with the store's decoded record (other requests may
    hold it too), so a list or dict is copied the first time it is handed out (by
    ``[]``, ``get``, ``items``, ``values``, ``pop`` ...), never before: a request that
    reads only text and numbers copies nothing and compares nothing at save. Handing out
    a list or dict, or changing anything, makes :meth:`changes` compare.

    :raises SessionValueError: from every way of putting a value in (``[]=``,
        ``setdefault``, ``update``, ``|=``) when the value is not JSON.
    """

    __slots__ = ("_base", "_cleared", "_touched", "binding", "handle", "new")

    def __init__(self, base: Mapping[str, Any] | None = None, *, new: bool = True) -> None:
        super().__init__()
        stored: Mapping[str, Any] = base if base is not None else {}
        self._base = stored
        self._cleared = False
        self._touched = False
        self.new = new
        self.binding = ""
        self.handle: object = None
        if stored:
            dict.update(self, stored)  # shallow: see _own

    @property
    def base(self) -> Mapping[str, Any]:
        """The data as stored when the request began (read only)."""
        return self._base

    # -- every way out hands over values of our own ---------------------------------------

    def _own(self, key: str, value: Any) -> Any:
        """``value`` (of ``key``) as the app may change it: the stored one is copied first."""
        kind = type(value)
        if kind is dict or kind is list:
            self._touched = True  # the app may change it in place: compare at save
            if value is self._base.get(key):
                value = copy_json(value)
                dict.__setitem__(self, key, value)
        return value

    def _own_all(self) -> None:
        for key, value in list(dict.items(self)):
            self._own(key, value)

    def __getitem__(self, key: str) -> Any:
        return self._own(key, dict.__getitem__(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return self._own(key, dict.__getitem__(self, key))
        return default

    def __iter__(self) -> Iterator[str]:
        # Defined here so that dict(session) and {**session} take the keys and values
        # through __getitem__ (CPython copies a plain dict's values directly).
        return dict.__iter__(self)

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]
        self._own_all()
        return dict.items(self)

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        self._own_all()
        return dict.values(self)

    def copy(self) -> dict[str, Any]:
        self._own_all()
        return dict(dict.items(self))

    def __or__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        self._own_all()
        return dict(dict.items(self)) | other  # type: ignore[no-any-return]

    def pop(self, key: str, *default: Any) -> Any:
        if dict.__contains__(self, key):
            value = self._own(key, dict.__getitem__(self, key))
            dict.__delitem__(self, key)
            self._touched = True
            return value
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        key, value = dict.popitem(self)
        self._touched = True
        kind = type(value)
        if (kind is dict or kind is list) and value is self._base.get(key):
            value = copy_json(value)
        return key, value

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)
        self._touched = True

    # -- every way in checks JSON -------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        check_json(key, value)
        dict.__setitem__(self, key, value)
        self._touched = True

    def setdefault(self, key: str, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return self[key]
        self[key] = default
        return default

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> SessionMapping:  # type: ignore[override]
        self.update(other)
        return self

    def clear(self) -> None:
        """Empty the session; at save, keys another request added meanwhile go too."""
        dict.clear(self)
        self._cleared = True
        self._touched = True

    # -- what changed -------------------------------------------------------------------

    def changes(self) -> Changes | None:
        """What differs from :attr:`base`, or ``None`` when nothing does.

        :raises SessionValueError: when a changed value now holds something not JSON
            (put inside a list or dict after it was assigned).
        """
        if not self._touched:
            return None  # nothing was set, removed, or handed out to be changed in place
        base = self._base
        missing = object()
        changed: dict[str, Any] = {}
        for key, value in dict.items(self):
            old = base.get(key, missing)
            if old is missing or not same(value, old):
                check_json(key, value)
                changed[key] = value
        removed = frozenset(key for key in base if not dict.__contains__(self, key))
        cleared = self._cleared
        if not changed and not removed and not cleared:
            return None
        return Changes(changed, removed, cleared)

    @property
    def modified(self) -> bool:
        """Whether anything differs from what was stored (Flask's ``SessionMixin``)."""
        return self.changes() is not None

    @property
    def accessed(self) -> bool:
        """Always ``True``: responses vary with the session cookie (Flask adds ``Vary``)."""
        return True

    def load(self, items: Iterable[tuple[str, Any]]) -> list[str]:
        """Put ``items`` in as changes, skipping values that are not JSON; the skipped keys.

        For data read from elsewhere (a migrated cookie) that must not fail the request.
        """
        skipped = []
        for key, value in items:
            try:
                self[key] = value
            except SessionValueError:
                skipped.append(str(key))
        return skipped
