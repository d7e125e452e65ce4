"""Keys made once per session (RSA generation is slow) and a token-forging helper."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest

from coatcheck.tokens import Key

NOW = 1_800_000_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any] | bytes) -> str:
    """A base64url segment of a JSON object, or of raw bytes."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return b64(raw)


def forge(
    header: dict[str, Any] | bytes,
    payload: dict[str, Any] | bytes,
    sign: Callable[[bytes], bytes],
) -> str:
    """A compact JWS with arbitrary header/payload bytes, signed by ``sign``."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def hs256_with(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def good_claims(**extra: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": "alice", "iat": int(NOW), "exp": int(NOW) + 600, "jti": "j1"}
    claims.update(extra)
    return claims


@pytest.fixture(scope="session")
def hs_key() -> Key:
    return Key.generate("HS256", kid="hs")


@pytest.fixture(scope="session")
def es_key() -> Key:
    return Key.generate("ES256", kid="es")


@pytest.fixture(scope="session")
def ed_key() -> Key:
    return Key.generate("EdDSA", kid="ed")


@pytest.fixture(scope="session")
def rsa_key() -> Key:
    return Key.generate("RS256", kid="rsa")
