"""Session stores, and :func:`open_store` to pick one from a URL.

``MemoryStore`` and ``SQLiteStore`` need only the standard library. ``RedisStore``
and ``PostgresStore`` need the ``redis`` / ``postgres`` extras; their modules are
imported only when asked for, so ``import coatcheck`` never needs the drivers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..sessions.store import SessionStore
from .memory import MemoryStore
from .observed import ObservedStore, observe_store
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore
    from .postgres_sync import SyncPostgresStore
    from .redis import RedisStore
    from .redis_sync import SyncRedisStore

__all__ = [
    "MemoryStore",
    "ObservedStore",
    "PostgresStore",
    "RedisStore",
    "SQLiteStore",
    "SyncPostgresStore",
    "SyncRedisStore",
    "observe_store",
    "open_store",
]

# scheme -> (module, class, pip extra)
_SCHEMES: dict[str, tuple[str, str, str]] = {
    "memory": ("coatcheck.stores.memory", "MemoryStore", ""),
    "sqlite": ("coatcheck.stores.sqlite", "SQLiteStore", ""),
    "redis": ("coatcheck.stores.redis", "RedisStore", "redis"),
    "rediss": ("coatcheck.stores.redis", "RedisStore", "redis"),
    "redis+cluster": ("coatcheck.stores.redis", "RedisStore", "redis"),
    "redis+sentinel": ("coatcheck.stores.redis", "RedisStore", "redis"),
    "postgresql": ("coatcheck.stores.postgres", "PostgresStore", "postgres"),
    "postgres": ("coatcheck.stores.postgres", "PostgresStore", "postgres"),
}

# Network stores with blocking I/O, for WSGI (open_store(url, sync=True)); memory and
# SQLite never suspend, so they serve both worlds as they are.
_SYNC_SCHEMES: dict[str, tuple[str, str]] = {
    "redis": ("coatcheck.stores.redis_sync", "SyncRedisStore"),
    "rediss": ("coatcheck.stores.redis_sync", "SyncRedisStore"),
    "redis+cluster": ("coatcheck.stores.redis_sync", "SyncRedisStore"),
    "redis+sentinel": ("coatcheck.stores.redis_sync", "SyncRedisStore"),
    "postgresql": ("coatcheck.stores.postgres_sync", "SyncPostgresStore"),
    "postgres": ("coatcheck.stores.postgres_sync", "SyncPostgresStore"),
}

_LAZY = {
    "PostgresStore": "coatcheck.stores.postgres",
    "RedisStore": "coatcheck.stores.redis",
    "SyncPostgresStore": "coatcheck.stores.postgres_sync",
    "SyncRedisStore": "coatcheck.stores.redis_sync",
}

_EXAMPLES = (
    "memory://, sqlite:///relative.db, sqlite:////absolute/path.db, "
    "redis://127.0.0.1:6379/0, redis+cluster://h1:7000,h2:7001/, "
    "redis+sentinel://h1:26379,h2:26379/mymaster/0, postgresql://user@127.0.0.1:5432/db"
)


def __getattr__(name: str) -> Any:
    # PEP 562: `from coatcheck.stores import RedisStore` imports the driver only then.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def _scheme(url: str) -> str:
    head, sep, _ = url.partition(":")
    scheme = head.lower()
    if not sep or not scheme:
        raise ConfigurationError(f"a store URL looks like one of: {_EXAMPLES}")
    return scheme


def open_store(url: str, *, sync: bool = False) -> SessionStore:
    """The store a URL names, e.g. ``sqlite:///coatcheck.db`` or ``redis://127.0.0.1:6379/0``.

    With ``sync=True`` a network store does blocking I/O and never suspends, for WSGI
    apps driving the core with :func:`coatcheck.sync.run_sync` (memory and SQLite
    stores are the same either way).

    Raises ConfigurationError for an unknown scheme, a malformed URL, or a store whose
    driver is not installed (naming the extra to install).
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"no store URL given; use one of: {_EXAMPLES}")
    url = url.strip()
    scheme = _scheme(url)
    entry = _SCHEMES.get(scheme)
    if entry is None:
        raise ConfigurationError(f"unknown store URL scheme {scheme!r}; use one of: {_EXAMPLES}")
    module_name, class_name, extra = entry
    if sync and scheme in _SYNC_SCHEMES:
        module_name, class_name = _SYNC_SCHEMES[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name == module_name:
            raise ConfigurationError(f"this coatcheck has no {scheme} store") from exc
        raise ConfigurationError(
            f"the {scheme} store needs an optional dependency: pip install 'coatcheck[{extra}]'"
        ) from exc
    cls = getattr(module, class_name)
    store: SessionStore = cls.from_url(url)
    return store
