"""Stateless DPoP server nonces (RFC 9449 §8, §9).

A server that wants proofs it can date itself, rather than trusting the client's
``iat`` alone, hands out a nonce in the ``DPoP-Nonce`` header and refuses proofs
without a current one (``use_dpop_nonce``). These nonces need no storage.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from datetime import timedelta

from ..errors import ConfigurationError
from ..secret import Secret, SecretRing
from ._codec import b64url_decode, b64url_encode

__all__ = ["DPoPNonces"]

_NONCE_LABEL = b"coatcheck.dpop-nonce\x00"
# base64url of 8 + 16 bytes; within RFC 9449 §8.1's NQCHAR.
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{32}")



class DPoPNonces:
    """Stateless server nonces (RFC 9449 §8, §9): a MAC of the current time slot.

    A nonce is ``base64url(slot || HMAC-SHA256(secret, label || slot)[:16])`` where
    ``slot`` counts ``lifetime`` periods since the epoch. Rotation is by time: each
    period has a new nonce, and a nonce is accepted during its own period and the
    next, so a client that follows the ``DPoP-Nonce`` header of the latest response is
    never refused while one that stops is refused within two periods. Nothing is
    stored, so every process sharing the secret agrees. Secrets rotate like any
    :class:`~coatcheck.secret.SecretRing`: the newest makes nonces, all verify.

    :raises ConfigurationError: for a bad secret or a ``lifetime`` under one second.
    """

    __slots__ = ("_cached", "_lifetime", "_ring")

    def __init__(
        self,
        secret: SecretRing | str | bytes | Secret | Sequence[str | bytes | Secret],
        *,
        lifetime: timedelta = timedelta(minutes=5),
    ) -> None:
        self._ring = SecretRing.coerce(secret)
        self._lifetime = lifetime.total_seconds()
        if self._lifetime < 1:
            raise ConfigurationError("a DPoP nonce lifetime must be at least one second")
        self._cached: tuple[int, str] = (-1, "")

    def _make(self, slot: int, secret: Secret) -> str:
        raw = slot.to_bytes(8, "big")
        mac = hmac.digest(secret.reveal(), _NONCE_LABEL + raw, "sha256")[:16]
        return b64url_encode(raw + mac).decode("ascii")

    def _slot(self, now: float) -> int:
        return max(0, int(now // self._lifetime))

    def current(self, now: float) -> str:
        """The nonce to hand out at ``now`` (the ``DPoP-Nonce`` header value)."""
        slot = self._slot(now)
        cached = self._cached
        if cached[0] == slot:
            return cached[1]
        nonce = self._make(slot, self._ring.current)
        self._cached = (slot, nonce)
        return nonce

    def check(self, nonce: object, now: float) -> bool:
        """Whether ``nonce`` is one of ours for this period or the one before."""
        if type(nonce) is not str or not _NONCE_RE.fullmatch(nonce):
            return False
        if nonce == self.current(now):
            return True
        slot = int.from_bytes(b64url_decode(nonce.encode("ascii"))[:8], "big")
        if not 0 <= self._slot(now) - slot <= 1:
            return False
        return any(
            hmac.compare_digest(nonce, self._make(slot, secret)) for secret in self._ring.all
        )

    def __repr__(self) -> str:
        return f"DPoPNonces(lifetime={self._lifetime!r})"
