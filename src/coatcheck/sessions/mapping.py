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
from collections.abc import Iterable, Mapping
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

    ``base`` is the data as it was stored (``{}`` for a new session); the mapping starts
    as a deep copy of it. ``new`` tells whether a stored session stood behind it.
    ``binding`` is the id a guest's CSRF tokens may bind to ("" when there is none yet).
    ``handle`` belongs to the backend that opened the mapping (what it needs to save).

    :raises SessionValueError: from every way of putting a value in (``[]=``,
        ``setdefault``, ``update``, ``|=``) when the value is not JSON.
    """

    __slots__ = ("_base", "_cleared", "binding", "handle", "new")

    def __init__(self, base: Mapping[str, Any] | None = None, *, new: bool = True) -> None:
        super().__init__()
        stored: Mapping[str, Any] = base if base is not None else {}
        self._base = stored
        self._cleared = False
        self.new = new
        self.binding = ""
        self.handle: object = None
        setter = dict.__setitem__
        for key, value in stored.items():
            kind = type(value)
            setter(self, key, copy_json(value) if kind is dict or kind is list else value)

    @property
    def base(self) -> Mapping[str, Any]:
        """The data as stored when the request began (read only)."""
        return self._base

    # -- every way in checks JSON -------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        check_json(key, value)
        dict.__setitem__(self, key, value)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self:
            return dict.__getitem__(self, key)
        self[key] = default
        return default

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> SessionMapping:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        """Empty the session; at save, keys another request added meanwhile go too."""
        dict.clear(self)
        self._cleared = True

    # -- what changed -------------------------------------------------------------------

    def changes(self) -> Changes | None:
        """What differs from :attr:`base`, or ``None`` when nothing does.

        :raises SessionValueError: when a changed value now holds something not JSON
            (put inside a list or dict after it was assigned).
        """
        base = self._base
        cleared = self._cleared
        if not base and not dict.__len__(self) and not cleared:
            return None
        missing = object()
        changed: dict[str, Any] = {}
        for key, value in dict.items(self):
            old = base.get(key, missing)
            if old is missing or not same(value, old):
                check_json(key, value)
                changed[key] = value
        removed = frozenset(key for key in base if not dict.__contains__(self, key))
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
