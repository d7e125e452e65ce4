"""What every section shares: the keys, the claims, the service URLs, coatcheck look-ups.

coatcheck's modules are written in parallel with this harness, so every look-up of a
coatcheck name goes through :func:`need`, which turns a missing module or name into
:class:`~harness.Unavailable` ("not available yet") instead of a crash.
"""

from __future__ import annotations

import importlib
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from harness import Unavailable

__all__ = [
    "AUDIENCE",
    "ISSUER",
    "KID",
    "USER_ID",
    "USER_NAME",
    "ZIPF_EXPONENT",
    "BenchKeys",
    "Services",
    "base_claims",
    "ensure_postgres_database",
    "need",
    "user_id",
    "user_name",
    "verify_claims",
    "zipf_sequence",
]

ISSUER = "https://auth.bench.example"
AUDIENCE = "bench-api"
KID = "bench"
USER_ID = "ada"
USER_NAME = "Ada Lovelace"
#: Popularity skew of the Zipf regime: user of rank r is seen in proportion to 1/r**s.
#: Web request popularity is usually measured between 0.6 and 1.0 (Breslau et al.,
#: "Web caching and Zipf-like distributions", 1999); 1.0 is the top of that range,
#: the regime most favourable to caches.
ZIPF_EXPONENT = 1.0


def user_id(i: int) -> str:
    """The id of bench user ``i`` (user 0 is the one-credential regime's user)."""
    return USER_ID if i == 0 else f"user-{i:06d}"


def user_name(i: int) -> str:
    """The display name GET /me answers for bench user ``i``."""
    return USER_NAME if i == 0 else f"{USER_NAME} #{i}"


def zipf_sequence(
    users: int, length: int, *, seed: int = 18, s: float = ZIPF_EXPONENT
) -> list[int]:
    """``length`` user indexes drawn with Zipf popularity over ``users`` users.

    Ranks are shuffled onto users (seeded), so the most popular users are not the
    first ones created. The same arguments always give the same sequence.
    """
    import itertools
    import random

    rng = random.Random(seed)
    weights = list(itertools.accumulate(1.0 / (rank + 1) ** s for rank in range(users)))
    by_rank = list(range(users))
    rng.shuffle(by_rank)
    ranks = rng.choices(range(users), cum_weights=weights, k=length)
    return [by_rank[r] for r in ranks]


def need(module: str, *names: str) -> Any:
    """``getattr`` of ``names`` on ``module``; Unavailable when either is missing."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(f"{module} not available yet ({exc.name or exc})") from exc
    found = []
    for name in names:
        if not hasattr(mod, name):
            raise Unavailable(f"{module}.{name} not available yet")
        found.append(getattr(mod, name))
    return found[0] if len(found) == 1 else tuple(found)


@dataclass(frozen=True, slots=True)
class BenchKeys:
    """One key per algorithm, made once per run, shared by every library."""

    secret: bytes
    es256: ec.EllipticCurvePrivateKey
    eddsa: ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls) -> BenchKeys:
        return cls(
            secret=secrets.token_bytes(32),
            es256=ec.generate_private_key(ec.SECP256R1()),
            eddsa=ed25519.Ed25519PrivateKey.generate(),
        )

    def private(self, alg: str) -> bytes | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
        return {"HS256": self.secret, "ES256": self.es256, "EdDSA": self.eddsa}[alg]

    def private_pem(self, alg: str) -> bytes:
        key = self.es256 if alg == "ES256" else self.eddsa
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self, alg: str) -> bytes:
        key = self.es256 if alg == "ES256" else self.eddsa
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def base_claims() -> dict[str, Any]:
    """The application claims of the 12-claim, ~330-byte payload (the codec adds the rest)."""
    return {
        "sub": USER_ID,
        "name": USER_NAME,
        "email": "ada@example.com",
        "roles": ["admin", "editor"],
        "scope": "read:profile write:profile read:orders",
        "sid": "7f3c2a9e-6b1d-4c8e-9a0f-2d5b8e1c4a77",
    }


def verify_claims(*, ttl: float = 3600.0, user: int = 0) -> dict[str, Any]:
    """A complete payload for the shared verify token: iss, aud, iat, nbf, exp, jti too.

    ``user`` picks the bench user whose ``sub`` and ``name`` it carries.
    """
    now = int(time.time())
    return {
        "iss": ISSUER,
        **base_claims(),
        "sub": user_id(user),
        "name": user_name(user),
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl),
        "jti": secrets.token_urlsafe(16),
    }


@dataclass(frozen=True, slots=True)
class Services:
    """Where the network stores live. Environment variables override the defaults."""

    redis_url: str
    postgres_url: str

    @classmethod
    def from_env(cls) -> Services:
        return cls(
            redis_url=os.environ.get("COATCHECK_BENCH_REDIS", "redis://127.0.0.1:6379/13"),
            postgres_url=os.environ.get(
                "COATCHECK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/coatcheck_bench"
            ),
        )


def ensure_postgres_database(url: str) -> None:
    """Create the bench database when missing (connecting to ``postgres`` to do so)."""
    import psycopg
    from psycopg import sql

    base, _, dbname = url.rpartition("/")
    try:
        psycopg.connect(url, connect_timeout=3).close()
        return
    except psycopg.OperationalError:
        pass
    with psycopg.connect(f"{base}/postgres", autocommit=True, connect_timeout=3) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
