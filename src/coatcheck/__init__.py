"""coatcheck: server-side sessions, signed tokens, and the hybrid of both.

The names here are the ones most apps need; everything else is importable from its
module (``coatcheck.errors``, ``coatcheck.tokens``, ``coatcheck.stores`` ...).
Importing coatcheck loads no web framework and no database driver.
"""

from __future__ import annotations

from .adapters.asgi import AuthMiddleware, SessionMiddleware
from .adapters.http import error_status
from .auth import (
    Authenticator,
    AuthResult,
    BearerTransport,
    CookieTransport,
    Identity,
    JWTStrategy,
    LoginResult,
    SessionStrategy,
    Strategy,
    Transport,
)
from .clock import Clock, FrozenClock, SystemClock
from .cookies import dump_cookie, expire_cookie, parse_cookie
from .csrf import CsrfProtector
from .errors import (
    AuthenticationError,
    CoatcheckError,
    ConfigurationError,
    CsrfError,
    InputError,
    RateLimited,
    StoreError,
    StoreUnavailable,
    TokenError,
)
from .policies import ClaimsPolicy, CookiePolicy, CsrfPolicy, SessionPolicy
from .secret import Secret, SecretRing
from .sessions import (
    CookieSessions,
    SessionManager,
    SessionMapping,
    SessionRecord,
    SessionStore,
    StoreSessions,
)
from .signing import Signer
from .stores import MemoryStore, SQLiteStore, open_store
from .sync import run_sync
from .tokens import JWTCodec, Key, KeyRing

__version__ = "0.2.0"

__all__ = [
    "AuthMiddleware",
    "AuthResult",
    "AuthenticationError",
    "Authenticator",
    "BearerTransport",
    "ClaimsPolicy",
    "Clock",
    "CoatcheckError",
    "ConfigurationError",
    "CookiePolicy",
    "CookieSessions",
    "CookieTransport",
    "CsrfError",
    "CsrfPolicy",
    "CsrfProtector",
    "FrozenClock",
    "Identity",
    "InputError",
    "JWTCodec",
    "JWTStrategy",
    "Key",
    "KeyRing",
    "LoginResult",
    "MemoryStore",
    "RateLimited",
    "SQLiteStore",
    "Secret",
    "SecretRing",
    "SessionManager",
    "SessionMapping",
    "SessionMiddleware",
    "SessionPolicy",
    "SessionRecord",
    "SessionStore",
    "SessionStrategy",
    "Signer",
    "StoreError",
    "StoreSessions",
    "StoreUnavailable",
    "Strategy",
    "SystemClock",
    "TokenError",
    "Transport",
    "__version__",
    "dump_cookie",
    "error_status",
    "expire_cookie",
    "open_store",
    "parse_cookie",
    "run_sync",
]
