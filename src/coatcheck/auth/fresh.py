"""Fresh authentication: sensitive actions need a recent login.

Changing the password or logging out everywhere should not be possible with a
session that merely survived: a stolen cookie or token must not be enough. The
check uses ``Identity.auth_time``, the time of the last password entry (the
session's ``auth_time``; in JWTs the ``auth_time`` claim of OpenID Connect Core §2).
"""

from __future__ import annotations

from datetime import timedelta

from ..clock import Clock, SystemClock
from ..errors import StaleAuthentication
from .identity import Identity

__all__ = ["require_recent_login"]

_SYSTEM_CLOCK = SystemClock()


def require_recent_login(
    identity: Identity, max_age: timedelta, *, clock: Clock = _SYSTEM_CLOCK
) -> None:
    """Pass when ``identity`` logged in within ``max_age``.

    :raises StaleAuthentication: when the login is older (or its time unknown).
    """
    limit = max_age.total_seconds()
    age = clock.now() - identity.auth_time
    if identity.auth_time <= 0 or age > limit:
        raise StaleAuthentication(
            f"log in again: this action needs a login within the last {int(limit)} seconds"
        )
