"""The demo's user accounts: an SQLite table with argon2id password hashes.

Not part of the coatcheck library (coatcheck does not manage users); it is the
smallest honest account store a demo can have. Hashing is argon2id with
argon2-cffi's defaults (RFC 9106 §4), and an unknown username costs the same hash
check as a wrong password, so timing does not tell which one it was.

Each argon2id hash holds ``memory_cost`` (64 MiB by default) for its duration, and
anyone can ask for one (a login for any name, a registration), so the work is bounded:
:class:`PasswordWork` lets a small fixed number of hashes run at once per worker
process, queues a few more for a short while, and refuses the rest with
:class:`HashingBusy` (the demo answers 503 with Retry-After). Peak memory is then
about the idle process plus ``concurrency * memory_cost``, whatever the burst.
Passwords are at most :data:`MAX_PASSWORD` characters, checked before any work.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import sqlite3
import threading
import time
import unicodedata
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..errors import InputError

__all__ = [
    "MAX_PASSWORD",
    "HashingBusy",
    "PasswordTooLong",
    "PasswordWork",
    "User",
    "UserDirectory",
    "UsernameTaken",
    "check_password_length",
    "validate_password",
    "validate_registration",
]

T = TypeVar("T")

_USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{1,31}")
_MIN_PASSWORD = 8
#: Longest password accepted anywhere (login, registration, change), in characters.
MAX_PASSWORD = 1024
_MAX_PASSWORD = MAX_PASSWORD
_MAX_NAME = 100

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS demo_users (
        username TEXT PRIMARY KEY,
        user_id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS demo_keys (
        kid TEXT PRIMARY KEY,
        jwk TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
)


class UsernameTaken(Exception):
    """That username is already registered."""


class PasswordTooLong(InputError):
    """A password over :data:`MAX_PASSWORD` characters: refused (400) before any hashing.

    Its own stable code, so a client can tell it from other bad input.
    """

    code = "password_too_long"

    def __init__(self) -> None:
        super().__init__(f"a password is at most {MAX_PASSWORD} characters")


class HashingBusy(Exception):
    """Every password-hashing slot stayed taken for the whole queue wait (answer 503).

    ``retry_after`` is the whole seconds after which trying again makes sense.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__("the server is busy checking passwords; try again shortly")
        self.retry_after = retry_after


def check_password_length(value: object) -> None:
    """Raise PasswordTooLong for a string over :data:`MAX_PASSWORD` characters."""
    if isinstance(value, str) and len(value) > MAX_PASSWORD:
        raise PasswordTooLong


class PasswordWork:
    """At most ``concurrency`` password hashes at once, then a short queue, then refusal.

    :meth:`run` runs a blocking hashing call in a worker thread once one of the
    ``concurrency`` slots is free. Up to ``queue`` callers wait for a slot, each at most
    ``wait`` seconds; beyond that, or after waiting that long, :class:`HashingBusy`.
    Slots are per event loop (one per worker process), so peak memory per process is
    bounded by ``concurrency`` hashes however many requests arrive.

    :raises ValueError: for a ``concurrency`` or ``queue`` below 1, or a ``wait`` not
        above 0.
    """

    __slots__ = ("_concurrency", "_loops", "_queue", "_wait", "_waiting")

    def __init__(self, *, concurrency: int = 2, queue: int = 64, wait: float = 5.0) -> None:
        if concurrency < 1 or queue < 1 or not wait > 0:
            raise ValueError("PasswordWork needs concurrency >= 1, queue >= 1 and wait > 0")
        self._concurrency = concurrency
        self._queue = queue
        self._wait = wait
        self._waiting = 0
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._loops = weakref.WeakKeyDictionary()

    @property
    def concurrency(self) -> int:
        return self._concurrency

    def _slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._loops.get(loop)
        if slots is None:
            slots = self._loops[loop] = asyncio.Semaphore(self._concurrency)
        return slots

    async def run(self, call: Callable[..., T], *args: object) -> T:
        """``call(*args)`` in a worker thread, within the bound. Raises HashingBusy."""
        slots = self._slots()
        retry_after = max(1, math.ceil(self._wait))
        if slots.locked():
            if self._waiting >= self._queue:
                raise HashingBusy(retry_after)
            self._waiting += 1
            try:
                await asyncio.wait_for(slots.acquire(), self._wait)
            except TimeoutError as exc:
                raise HashingBusy(retry_after) from exc
            finally:
                self._waiting -= 1
        else:
            await slots.acquire()
        try:
            # Not abandoned on cancellation: the slot is held until the hash is done.
            return await to_thread.run_sync(call, *args)
        finally:
            slots.release()


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    username: str
    name: str


def _clean_username(value: object) -> str:
    if not isinstance(value, str):
        raise InputError("username must be a string")
    username = value.strip().lower()
    if not _USERNAME_RE.fullmatch(username):
        raise InputError(
            "username must be 2 to 32 characters: letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return username


def _clean_password(value: object) -> str:
    if not isinstance(value, str):
        raise InputError("password must be a string")
    check_password_length(value)
    if not _MIN_PASSWORD <= len(value) <= _MAX_PASSWORD:
        raise InputError(f"password must be {_MIN_PASSWORD} to {_MAX_PASSWORD} characters")
    return value


def validate_password(value: object) -> str:
    """``value`` when it is an acceptable password (the length rule). Raises InputError."""
    return _clean_password(value)


def validate_registration(username: object, password: object, name: object) -> None:
    """Check a registration's fields without hashing anything. Raises InputError."""
    _clean_username(username)
    _clean_password(password)
    _clean_name(name)


def _clean_name(value: object) -> str:
    if not isinstance(value, str):
        raise InputError("name must be a string")
    name = unicodedata.normalize("NFC", value).strip()
    if not name or len(name) > _MAX_NAME:
        raise InputError(f"name must be 1 to {_MAX_NAME} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InputError("name must not contain control characters")
    return name


class UserDirectory:
    """Users in the SQLite file at ``path`` (created on first use).

    Methods are blocking (SQLite and argon2 are); the demo calls the hashing ones
    from a worker thread. Raises InputError for malformed fields.
    """

    def __init__(self, path: str, *, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 5000")
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
        for statement in _SCHEMA:
            self._conn.execute(statement)
        # Verified against when the username is unknown, to spend the same time.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def register(self, username: object, password: object, name: object) -> User:
        """Create an account. Raises InputError, UsernameTaken."""
        clean_username = _clean_username(username)
        clean_password = _clean_password(password)
        clean_name = _clean_name(name)
        password_hash = self._hasher.hash(clean_password)
        user = User(f"u_{secrets.token_hex(8)}", clean_username, clean_name)
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO demo_users (username, user_id, name, password_hash, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (user.username, user.user_id, user.name, password_hash, time.time()),
                )
            except sqlite3.IntegrityError as exc:
                raise UsernameTaken(clean_username) from exc
        return user

    def check(self, username: object, password: object) -> User | None:
        """The user if the password matches; ``None`` for a wrong password or unknown user.

        Raises PasswordTooLong (an InputError) for a password over :data:`MAX_PASSWORD`.
        """
        if not isinstance(username, str) or not isinstance(password, str):
            return None
        check_password_length(password)  # PasswordTooLong: never hashed
        with self._lock:
            row = self._conn.execute(
                "SELECT user_id, username, name, password_hash FROM demo_users WHERE username = ?",
                (username.strip().lower(),),
            ).fetchone()
        try:
            if row is None:
                self._hasher.verify(self._dummy_hash, password)
                return None
            self._hasher.verify(row[3], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        user = User(row[0], row[1], row[2])
        if self._hasher.check_needs_rehash(row[3]):
            with self._lock:
                self._conn.execute(
                    "UPDATE demo_users SET password_hash = ? WHERE user_id = ?",
                    (self._hasher.hash(password), user.user_id),
                )
        return user

    def set_password(self, user_id: str, password: object) -> bool:
        """Store a new argon2id hash for ``user_id``; whether the user exists.

        Raises InputError when the password is too short or too long.
        """
        password_hash = self._hasher.hash(_clean_password(password))
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE demo_users SET password_hash = ? WHERE user_id = ?",
                (password_hash, user_id),
            )
        return cursor.rowcount == 1

    def get(self, user_id: str) -> User | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT user_id, username, name FROM demo_users WHERE user_id = ?", (user_id,)
            ).fetchone()
        return None if row is None else User(row[0], row[1], row[2])

    def close(self) -> None:
        self._conn.close()
