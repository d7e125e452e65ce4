"""Secrets for HMAC signing: a masked :class:`Secret` and a rotating :class:`SecretRing`.

JWT keys (with ``kid`` and an algorithm bound to each) live in :mod:`coatcheck.tokens`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

from .errors import ConfigurationError

__all__ = ["MIN_SECRET_BYTES", "Secret", "SecretRing", "generate_secret"]

#: HMAC-SHA256 keys shorter than the hash output weaken it (RFC 2104 §3, RFC 7518 §3.2).
MIN_SECRET_BYTES = 32


class Secret:
    """A secret value whose ``repr`` and ``str`` never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        self._value = value.encode() if isinstance(value, str) else bytes(value)

    def reveal(self) -> bytes:
        """The secret bytes. Call only where the secret is used, never to log it."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


def generate_secret(nbytes: int = 32) -> str:
    """A new random secret, URL-safe base64 text of ``nbytes`` random bytes."""
    return secrets.token_urlsafe(nbytes)


class SecretRing:
    """Secrets in rotation, oldest first: the newest signs, every one verifies.

    To rotate, append a new secret; once everything signed with the oldest has
    expired, drop it.

    :raises ConfigurationError: when empty or when a secret is shorter than 32 bytes.
    """

    __slots__ = ("_secrets",)

    def __init__(self, secrets_: Iterable[str | bytes | Secret]) -> None:
        ring = tuple(s if isinstance(s, Secret) else Secret(s) for s in secrets_)
        if not ring:
            raise ConfigurationError("a SecretRing needs at least one secret")
        for secret in ring:
            if len(secret) < MIN_SECRET_BYTES:
                raise ConfigurationError(
                    f"secrets must be at least {MIN_SECRET_BYTES} bytes; "
                    "make one with `coatcheck keygen --alg HS256` or secrets.token_urlsafe(32)"
                )
        self._secrets = ring

    @classmethod
    def coerce(
        cls, value: SecretRing | str | bytes | Secret | Sequence[str | bytes | Secret]
    ) -> SecretRing:
        """Accept a ring, one secret, or a sequence of secrets (oldest first)."""
        if isinstance(value, SecretRing):
            return value
        if isinstance(value, (str, bytes, Secret)):
            return cls([value])
        return cls(value)

    @property
    def current(self) -> Secret:
        """The secret that signs: the newest."""
        return self._secrets[-1]

    @property
    def all(self) -> tuple[Secret, ...]:
        """Every secret, newest first (the order to try when verifying)."""
        return self._secrets[::-1]

    def __len__(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:
        return f"SecretRing(<{len(self._secrets)} secrets>)"
