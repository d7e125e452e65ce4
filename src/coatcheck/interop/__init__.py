"""Other stacks' credentials: Auth.js / NextAuth session tokens, express-session cookies
and connect-redis sessions, so a Python service can trust or share them.

``AuthJSStrategy`` lives in :mod:`coatcheck.interop.authjs_strategy` (it needs
:mod:`coatcheck.auth`).
"""

from __future__ import annotations

from .authjs import (
    AUTHJS_COOKIE,
    AUTHJS_SECURE_COOKIE,
    NEXTAUTH_COOKIE,
    NEXTAUTH_SECURE_COOKIE,
    AuthJSDecoder,
    chunk_token,
    derive_authjs_key,
    encode_authjs,
    join_chunks,
    read_authjs_token,
)
from .connect_redis import AsyncConnectRedisStore, ConnectRedisStore, connect_redis_ttl
from .express import (
    EXPRESS_COOKIE,
    ExpressSessionCookie,
    new_express_session,
    new_session_id,
    session_expires,
    sign_value,
    unsign_value,
)

__all__ = [
    "AUTHJS_COOKIE",
    "AUTHJS_SECURE_COOKIE",
    "EXPRESS_COOKIE",
    "NEXTAUTH_COOKIE",
    "NEXTAUTH_SECURE_COOKIE",
    "AsyncConnectRedisStore",
    "AuthJSDecoder",
    "ConnectRedisStore",
    "ExpressSessionCookie",
    "chunk_token",
    "connect_redis_ttl",
    "derive_authjs_key",
    "encode_authjs",
    "join_chunks",
    "new_express_session",
    "new_session_id",
    "read_authjs_token",
    "session_expires",
    "sign_value",
    "unsign_value",
]
