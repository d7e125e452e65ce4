"""Authentication: strategies (how a credential is made and checked) and transports
(where it travels), tied together by the :class:`Authenticator`."""

from __future__ import annotations

from .authenticator import Authenticator, AuthResult, LoginResult
from .dbsc import DeviceBinding
from .dpop import DPoPPolicy, DPoPTransport
from .fresh import require_recent_login
from .hybrid import HybridIssued, HybridStrategy, Refreshing
from .hybrid_cookies import HybridCookieTransport
from .identity import Identity, Issued, Verified
from .strategies import PERSISTENT_KEY, JWTStrategy, SessionStrategy, Strategy
from .transports import BearerTransport, CookieTransport, Transport

__all__ = [
    "PERSISTENT_KEY",
    "AuthResult",
    "Authenticator",
    "BearerTransport",
    "CookieTransport",
    "DPoPPolicy",
    "DPoPTransport",
    "DeviceBinding",
    "HybridCookieTransport",
    "HybridIssued",
    "HybridStrategy",
    "Identity",
    "Issued",
    "JWTStrategy",
    "LoginResult",
    "Refreshing",
    "SessionStrategy",
    "Strategy",
    "Transport",
    "Verified",
    "require_recent_login",
]
