"""The demo's user accounts: an SQLite table with argon2id password hashes.

Not part of the coatcheck library (coatcheck does not manage users); it is the
smallest honest account store a demo can have. Hashing is argon2id with
argon2-cffi's defaults (RFC 9106 §4), and an unknown username costs the same hash
check as a wrong password, so timing does not tell which one it was.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
import time
import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..errors import InputError

__all__ = ["User", "UserDirectory", "UsernameTaken", "validate_password"]

_USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{1,31}")
_MIN_PASSWORD = 8
_MAX_PASSWORD = 1024
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
    if not _MIN_PASSWORD <= len(value) <= _MAX_PASSWORD:
        raise InputError(f"password must be {_MIN_PASSWORD} to {_MAX_PASSWORD} characters")
    return value


def validate_password(value: object) -> str:
    """``value`` when it is an acceptable password (the length rule). Raises InputError."""
    return _clean_password(value)


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
        """The user if the password matches; ``None`` for a wrong password or unknown user."""
        if not isinstance(username, str) or not isinstance(password, str):
            return None
        if len(password) > _MAX_PASSWORD:
            return None
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
