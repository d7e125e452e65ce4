"""Signed values: HMAC-SHA256, one key per purpose, secrets in rotation.

A signed value is ``payload.timestamp.signature``, each part URL-safe base64
without padding (so it is a legal cookie value, URL component and header value):

- ``payload``: the data, any bytes;
- ``timestamp``: the signing time, whole POSIX seconds as a big-endian integer;
- ``signature``: HMAC-SHA256 over the ASCII text ``payload.timestamp``.

The HMAC key is never a secret itself but ``HMAC-SHA256(secret, "coatcheck.signer"
NUL namespace)``: a value signed for one namespace (say ``"csrf"``) does not verify
in another (``"flash"``), even under the same secret. Because the MAC covers the text
as sent, any change to any character is refused; payloads are decoded only after the
signature checks out. The newest secret of the ring signs; verification tries every
secret, newest first, with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence

from .clock import Clock, SystemClock
from .errors import ConfigurationError, SignatureError, SignatureExpired
from .secret import Secret, SecretRing

__all__ = ["MAX_CLOCK_SKEW", "Signer", "derive_key"]

#: A value signed this many seconds in the future is still accepted (clock skew
#: between the servers that share the secrets); further ahead it is refused.
MAX_CLOCK_SKEW = 60.0

_B64_RE = re.compile(r"[A-Za-z0-9_-]*")
_SIGNATURE_CHARS = 43  # 32 bytes of HMAC-SHA256 in unpadded base64


def derive_key(secret: Secret, purpose: bytes) -> bytes:
    """The HMAC key for one ``purpose`` under ``secret`` (HMAC-SHA256 as a PRF)."""
    return hmac.digest(secret.reveal(), purpose, hashlib.sha256)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    # Only called on text the MAC vouched for; errors still become SignatureError.
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and verifies values for one ``namespace`` with a ring of secrets.

    :param secrets: a :class:`~coatcheck.secret.SecretRing`, one secret, or a sequence of
        secrets oldest first (the newest signs, all verify).
    :param namespace: what the signatures are for; a value signed in one namespace
        never verifies in another.
    :param clock: the time source for timestamps and ``max_age``.
    :raises ConfigurationError: for an empty namespace, no secrets, or a secret shorter
        than 32 bytes.
    """

    __slots__ = ("_clock", "_keys", "_namespace", "_signing_key")

    def __init__(
        self,
        secrets: SecretRing | str | bytes | Secret | Sequence[str | bytes | Secret],
        *,
        namespace: str,
        clock: Clock = SystemClock(),  # noqa: B008  (stateless, so one shared default is safe)
    ) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ConfigurationError("a Signer needs a non-empty namespace naming its purpose")
        ring = SecretRing.coerce(secrets)
        purpose = b"coatcheck.signer\x00" + namespace.encode("utf-8", "surrogatepass")
        # Derived once here, so signing and verifying cost one HMAC per secret tried.
        self._keys = tuple(derive_key(secret, purpose) for secret in ring.all)
        self._signing_key = self._keys[0]
        self._namespace = namespace
        self._clock = clock

    @property
    def namespace(self) -> str:
        return self._namespace

    def sign(self, data: str | bytes) -> str:
        """``data`` signed with the newest secret and the current time.

        A ``str`` is signed as its UTF-8 bytes (lone surrogates pass through, so
        ``unsign(...).decode("utf-8", "surrogatepass")`` gives it back).
        """
        # memoryview, not bytes(): bytes(5) would silently sign five zero bytes.
        raw = (
            data.encode("utf-8", "surrogatepass")
            if isinstance(data, str)
            else memoryview(data).tobytes()
        )
        now = max(int(self._clock.now()), 0)
        stamp = now.to_bytes((now.bit_length() + 7) // 8 or 1, "big")
        signed = f"{_b64encode(raw)}.{_b64encode(stamp)}"
        return f"{signed}.{self._mac(self._signing_key, signed)}"

    def unsign(self, value: str, *, max_age: float | None = None) -> bytes:
        """The data inside a value made by :meth:`sign`.

        :raises SignatureExpired: when the signature is valid but older than ``max_age``
            seconds (``signed_at`` says when it was made).
        :raises SignatureError: for anything else: not a signed value, a bad signature,
            another namespace or secret, or a timestamp in the future.
        """
        return self.unsign_with_timestamp(value, max_age=max_age)[0]

    def unsign_with_timestamp(
        self, value: str, *, max_age: float | None = None
    ) -> tuple[bytes, float]:
        """Like :meth:`unsign`, also returning when the value was signed (POSIX seconds).

        :raises SignatureExpired: older than ``max_age``.
        :raises SignatureError: not a valid value signed in this namespace.
        """
        if not isinstance(value, str) or not value.isascii():
            raise SignatureError("not a signed value")
        signed, dot, signature = value.rpartition(".")
        payload, dot2, stamp = signed.partition(".")
        if (
            not dot
            or not dot2
            or len(signature) != _SIGNATURE_CHARS
            or not stamp
            or not _B64_RE.fullmatch(signed.replace(".", "", 1))
        ):
            raise SignatureError("not a signed value")
        presented = signature.encode("ascii")
        signed_bytes = signed.encode("ascii")
        for key in self._keys:
            expected = _b64encode(hmac.digest(key, signed_bytes, hashlib.sha256))
            if hmac.compare_digest(expected.encode("ascii"), presented):
                break
        else:
            raise SignatureError("the signature does not match")
        try:
            data = _b64decode(payload)
            signed_at = float(int.from_bytes(_b64decode(stamp), "big"))
        except (binascii.Error, ValueError, OverflowError) as exc:
            raise SignatureError("not a signed value") from exc
        now = self._clock.now()
        if signed_at > now + MAX_CLOCK_SKEW:
            raise SignatureError("the signature is dated in the future")
        if max_age is not None and now - signed_at > max_age:
            raise SignatureExpired("the signature has expired", signed_at=signed_at)
        return data, signed_at

    @staticmethod
    def _mac(key: bytes, signed: str) -> str:
        return _b64encode(hmac.digest(key, signed.encode("ascii"), hashlib.sha256))

    def __repr__(self) -> str:
        return f"Signer(namespace={self._namespace!r}, secrets=<{len(self._keys)}>)"
