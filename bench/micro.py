"""Micro section: JWT verify/sign per library against the floor; session validation per store.

JWT: every library verifies the same token bytes (minted by PyJWT: 12 claims, ~330 B of
JSON) with its best key form parsed once (PyJWK / joserfc key objects / coatcheck Key).
Before timing, each candidate must accept that token and refuse one with a flipped
signature bit and an expired one; a sign candidate's output must pass the floor's verify.
Sign adds iss/aud/iat/exp/jti to the same application claims for every candidate, which is
what coatcheck's ``JWTCodec.encode`` does itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import itertools
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from fixtures import (
    AUDIENCE,
    ISSUER,
    KID,
    BenchKeys,
    Services,
    base_claims,
    ensure_postgres_database,
    need,
    verify_claims,
)
from floors import JWTFloor
from harness import Budget, Progress, Samples, Unavailable, interleave_async, interleave_sync
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, OctKey, OKPKey

__all__ = ["ALGS", "JWT_CANDIDATES", "OTHER_ALGS", "STORES", "run_jws_algorithms", "run_jwt",
           "run_sessions"]

ALGS = ("HS256", "ES256", "EdDSA")
#: The other JWS algorithms (issue 11): coatcheck against the floor only.
OTHER_ALGS = ("HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "ES384", "ES512", "Ed25519", "Ed448")
JWT_CANDIDATES = ("floor", "coatcheck", "PyJWT", "joserfc")
STORES = ("memory", "sqlite", "redis", "postgresql")


def _flip_signature(token: str) -> str:
    head, _, sig = token.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


def _pyjwt_verify_key(keys: BenchKeys, alg: str) -> pyjwt.PyJWK:
    if alg == "HS256":
        k = base64.urlsafe_b64encode(keys.secret).rstrip(b"=").decode()
        return pyjwt.PyJWK({"kty": "oct", "k": k, "alg": alg})
    public = keys.es256.public_key() if alg == "ES256" else keys.eddsa.public_key()
    algo = pyjwt.algorithms.ECAlgorithm if alg == "ES256" else pyjwt.algorithms.OKPAlgorithm
    jwk = algo.to_jwk(public, as_dict=True)
    jwk["alg"] = alg
    return pyjwt.PyJWK(jwk)


def _joserfc_key(keys: BenchKeys, alg: str) -> Any:
    if alg == "HS256":
        return OctKey.import_key(keys.secret)
    kind = ECKey if alg == "ES256" else OKPKey
    return kind.import_key(keys.private_pem(alg))


def coatcheck_codec(keys: BenchKeys, alg: str, *, caches: bool = True) -> Any:
    """coatcheck's JWTCodec with the bench key, issuer and audience; Unavailable if missing.

    ``caches=False`` turns its verified-header cache off.
    """
    jwt_codec, key_cls, ring_cls = _coatcheck_jwt_names()
    policies = need("coatcheck.policies", "ClaimsPolicy")
    if alg == "HS256":
        key = key_cls.from_secret(keys.secret, alg=alg, kid=KID)
    else:
        key = key_cls.from_pem(keys.private_pem(alg), alg=alg, kid=KID)
    extra = {} if caches else {"header_cache_size": 0}
    return jwt_codec(
        ring_cls([key]),
        algorithms=[alg],
        policy=policies(issuer=ISSUER, audience=AUDIENCE),
        **extra,
    )


def _coatcheck_jwt_names() -> tuple[Any, Any, Any]:
    try:
        return need("coatcheck.tokens", "JWTCodec", "Key", "KeyRing")  # type: ignore[no-any-return]
    except Unavailable:
        codec = need("coatcheck.tokens.jwt", "JWTCodec")
        key, ring = need("coatcheck.tokens.keys", "Key", "KeyRing")
        return codec, key, ring


def _jwt_group(
    keys: BenchKeys, alg: str, notes: list[str]
) -> tuple[dict[str, Callable[[], object]], dict[str, Callable[[], object]]]:
    header = {"kid": KID, "typ": "JWT"}
    key = keys.private(alg)
    token = pyjwt.encode(verify_claims(), key, algorithm=alg, headers=header)  # type: ignore[arg-type]
    past = verify_claims()
    past.update(iat=past["iat"] - 7200, nbf=past["nbf"] - 7200, exp=past["iat"] - 3600)
    expired = pyjwt.encode(past, key, algorithm=alg, headers=header)  # type: ignore[arg-type]
    forged = _flip_signature(token)
    floor = JWTFloor(alg, key, issuer=ISSUER, audience=AUDIENCE, kid=KID)
    claims = base_claims()

    def extra() -> dict[str, Any]:
        now = int(time.time())
        return {
            **claims,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 900,
            "jti": secrets.token_urlsafe(16),
        }

    verifiers: dict[str, Callable[[str], object]] = {"floor": floor.verify}
    sign: dict[str, Callable[[], object]] = {"floor": lambda: floor.sign(claims)}
    try:
        codec = coatcheck_codec(keys, alg)
        verifiers["coatcheck"] = codec.decode
        sign["coatcheck"] = lambda: codec.encode(claims)
    except Unavailable as exc:
        notes.append(f"coatcheck {alg}: {exc}")

    pk = _pyjwt_verify_key(keys, alg)

    def pyjwt_verify(tok: str) -> object:
        return pyjwt.decode(
            tok,
            pk,
            algorithms=[alg],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=10,
            options={"require": ["exp", "iat", "jti"]},
        )

    verifiers["PyJWT"] = pyjwt_verify
    sign["PyJWT"] = lambda: pyjwt.encode(extra(), key, algorithm=alg, headers=header)  # type: ignore[arg-type]

    jk = _joserfc_key(keys, alg)
    registry = jose_jwt.JWTClaimsRegistry(
        leeway=10,
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
    )
    jheader = {"alg": alg, **header}

    def jose_verify(tok: str) -> object:
        decoded = jose_jwt.decode(tok, jk, algorithms=[alg])
        registry.validate(decoded.claims)
        return decoded.claims

    verifiers["joserfc"] = jose_verify
    sign["joserfc"] = lambda: jose_jwt.encode(jheader, extra(), jk, algorithms=[alg])

    verify: dict[str, Callable[[], object]] = {}
    for name, fn in verifiers.items():
        reason = _gate_verify(fn, token, forged, expired)
        if reason:
            notes.append(f"{name} {alg} verify left out: {reason}")
        else:
            verify[name] = functools.partial(fn, token)
    for name, make in list(sign.items()):
        try:
            floor.verify(str(make()))
        except Exception as exc:
            notes.append(f"{name} {alg} sign left out: its token fails the floor ({exc!r})")
            del sign[name]
    return verify, sign


def _gate_verify(fn: Callable[[str], object], good: str, forged: str, expired: str) -> str | None:
    """None when ``fn`` accepts the token and refuses a flipped signature and an expired one."""
    try:
        fn(good)
    except Exception as exc:
        return f"refused the valid token ({exc!r})"
    for bad, what in ((forged, "flipped signature"), (expired, "expired")):
        try:
            fn(bad)
        except Exception:  # noqa: S112 - any refusal is the right answer here
            continue
        return f"accepted a token with a {what}"
    return None


def run_jwt(keys: BenchKeys, budget: Budget, progress: Progress) -> dict[str, Any]:
    """JWT verify and sign, per algorithm, interleaved; medians and ratios to the floor."""
    notes: list[str] = []
    out: dict[str, Any] = {"verify": {}, "sign": {}, "notes": notes}
    for alg in ALGS:
        verify, sign = _jwt_group(keys, alg, notes)
        for op, group in (("verify", verify), ("sign", sign)):
            progress.say(f"micro: JWT {op} {alg} ({', '.join(group)})")
            samples = interleave_sync(group, budget)
            out[op][alg] = _with_ratios(samples, "floor")
    return out


def _other_key(alg: str) -> Any:
    if alg.startswith("HS"):
        return secrets.token_bytes(int(alg[2:]) // 8)
    if alg[:2] in ("RS", "PS"):
        return rsa.generate_private_key(65537, 2048)
    if alg.startswith("ES"):
        curve = {"384": ec.SECP384R1(), "512": ec.SECP521R1()}[alg[2:]]
        return ec.generate_private_key(curve)
    return (ed25519.Ed25519PrivateKey if alg == "Ed25519" else ed448.Ed448PrivateKey).generate()


def run_jws_algorithms(budget: Budget, progress: Progress) -> dict[str, Any]:
    """coatcheck's JWT verify of each of ``OTHER_ALGS`` against the floor, on the same token
    (the floor signs it); both must accept it and refuse a flipped and an expired one."""
    notes: list[str] = []
    out: dict[str, Any] = {}
    jwt_codec, key_cls = need("coatcheck.tokens", "JWTCodec", "Key")
    policies = need("coatcheck.policies", "ClaimsPolicy")
    for alg in OTHER_ALGS:
        private = _other_key(alg)
        floor = JWTFloor(alg, private, issuer=ISSUER, audience=AUDIENCE, kid=KID)
        token = floor.sign(base_claims())
        expired = JWTFloor(alg, private, issuer=ISSUER, audience=AUDIENCE, kid=KID,
                           ttl=-3600).sign(base_claims())
        if isinstance(private, bytes):
            key = key_cls.from_secret(private, alg=alg, kid=KID)
        else:
            pem = private.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            key = key_cls.from_pem(pem, alg=alg, kid=KID)
        codec = jwt_codec(key, algorithms=[alg],
                          policy=policies(issuer=ISSUER, audience=AUDIENCE))
        group: dict[str, Callable[[], object]] = {}
        for name, fn in (("floor", floor.verify), ("coatcheck", codec.decode)):
            reason = _gate_verify(fn, token, _flip_signature(token), expired)
            if reason:
                notes.append(f"{name} {alg} verify left out: {reason}")
            else:
                group[name] = functools.partial(fn, token)
        progress.say(f"micro: JWT verify {alg} ({', '.join(group)})")
        out[alg] = _with_ratios(interleave_sync(group, budget), "floor")
    return {"verify": out, "notes": notes}


def _with_ratios(samples: dict[str, Samples], floor: str) -> dict[str, Any]:
    base = samples[floor].wall_median if floor in samples else float("nan")
    return {
        name: {
            "median_us": s.wall_median,
            "ratio": s.wall_median / base,
            "samples": s.to_json(),
        }
        for name, s in samples.items()
    }


# -- session validation per store ---------------------------------------------------


class _CountingStore:
    """Forwards to a store and counts the writes, to check that validate does not write."""

    _WRITES = frozenset({"create", "touch", "update", "delete", "delete_user", "delete_expired"})

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name in self._WRITES:
            async def counted(*args: Any, **kwargs: Any) -> Any:
                self.writes += 1
                return await attr(*args, **kwargs)

            return counted
        return attr


def store_urls(services: Services, tmp: Path, tag: str = "") -> dict[str, str]:
    """One URL per store kind; with ``tag``, a Redis prefix and a PostgreSQL table of
    this run's own (so nobody else's data, or schema version, is ever met)."""
    redis, postgres = services.redis_url, services.postgres_url
    if tag:
        redis += f"{'&' if '?' in redis else '?'}prefix=bench:s:{tag}:"
        postgres += f"{'&' if '?' in postgres else '?'}table=bench_sessions_{tag}"
    return {
        "memory": "memory://",
        "sqlite": f"sqlite:///{tmp / 'bench-sessions.db'}",
        "redis": redis,
        "postgresql": postgres,
    }


def drop_postgres_table(url: str, table: str) -> None:
    """Remove a bench table (and its attempts table) from the database ``url`` names."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        for name in (table, f"{table}_attempts"):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
        with contextlib.suppress(psycopg.Error):  # a layout without the version table
            conn.execute("DELETE FROM coatcheck_schema_version WHERE name = %s", (table,))


async def open_bench_store(kind: str, url: str) -> Any:
    """``open_store(url)``; Unavailable when the store module has not landed."""
    open_store = need("coatcheck.stores", "open_store")
    if kind == "postgresql":
        await asyncio.to_thread(ensure_postgres_database, url.partition("?")[0])
    try:
        return open_store(url)
    except Exception as exc:
        if type(exc).__name__ == "ConfigurationError" or isinstance(exc, ImportError):
            raise Unavailable(f"{kind} store not available yet ({exc})") from exc
        raise


async def run_sessions(
    services: Services, budget: Budget, progress: Progress, *, sessions: int
) -> dict[str, Any]:
    """``SessionManager.validate`` per store, and the store's own ``get`` for the same id."""
    notes: list[str] = []
    out: dict[str, Any] = {"stores": {}, "notes": notes, "sessions": sessions}
    try:
        manager_cls = need("coatcheck.sessions", "SessionManager")
    except Unavailable:
        try:
            manager_cls = need("coatcheck.sessions.manager", "SessionManager")
        except Unavailable as exc:
            notes.append(str(exc))
            return out
    session_id = need("coatcheck.sessions.ids", "session_id")
    users = [f"bench-user-{i}" for i in range(max(1, sessions // 50))]
    candidates: dict[str, Callable[[], Awaitable[object]]] = {}
    cleanups: list[Callable[[], Awaitable[None]]] = []
    tag = secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="coatcheck-bench-") as tmp:
        for kind, url in store_urls(services, Path(tmp), tag).items():
            try:
                store = await open_bench_store(kind, url)
            except Unavailable as exc:
                notes.append(str(exc))
                out["stores"][kind] = {"status": str(exc)}
                continue
            progress.say(f"micro: creating {sessions} sessions in {kind}")
            manager = manager_cls(store)
            tokens = []
            for i in range(sessions):
                token, _ = await manager.create(
                    users[i % len(users)], data={"name": f"user {i}"}, user_agent="bench"
                )
                tokens.append(token)
            counting = _CountingStore(store)
            watcher = manager_cls(counting)
            for token in tokens[: min(50, len(tokens))]:
                if await watcher.validate(token) is None:
                    raise RuntimeError(f"{kind}: validate refused a fresh session")
            if await manager.validate("x" + tokens[0][1:]) is not None:
                raise RuntimeError(f"{kind}: validate accepted an unknown token")
            ids = [session_id(t) for t in tokens]
            out["stores"][kind] = {"status": "ok", "writes_per_validate": counting.writes / 50}
            cycle_t = itertools.cycle(tokens).__next__
            cycle_i = itertools.cycle(ids).__next__
            candidates[f"validate/{kind}"] = lambda m=manager, c=cycle_t: m.validate(c())
            candidates[f"store.get/{kind}"] = lambda s=store, c=cycle_i: s.get(c(), time.time())

            async def cleanup(s: Any = store, kind: str = kind) -> None:
                if kind == "postgresql":
                    await s.close()
                    await asyncio.to_thread(
                        drop_postgres_table, services.postgres_url, f"bench_sessions_{tag}"
                    )
                    return
                for user in users:
                    await s.delete_user(user)
                await s.close()

            cleanups.append(cleanup)
        try:
            progress.say(f"micro: session validation ({len(candidates)} candidates, interleaved)")
            samples = await interleave_async(candidates, budget)
            for name, s in samples.items():
                what, kind = name.split("/")
                out["stores"][kind][what] = {
                    "wall_us": s.wall_median,
                    "cpu_us": s.cpu_median,
                    "samples": s.to_json(),
                }
        finally:
            for cleanup in cleanups:
                await cleanup()
    return out
