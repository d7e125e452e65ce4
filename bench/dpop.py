"""DPoP section: a DPoP-bound request against a plain bearer request, side by side.

Issue 16's target: a DPoP-bound request costs at most one extra ES256 verify plus one
replay-cache write over a plain bearer request. Measured in one run, interleaved:

* ``bearer``: ``Authenticator.authenticate`` of ``Authorization: Bearer <ES256 JWT>``;
* ``dpop/<store>``: the same for ``Authorization: DPoP <bound JWT>`` with a fresh proof,
  its ``jti`` remembered in that store (memory, SQLite, Redis, PostgreSQL);
* the parts: one ES256 signature verify (a key used before, as "one ES256 verify"
  means), the same verify with a key made for it from the JWK's x and y (what the
  least a client whose key is not cached can cost through ``cryptography``: making the
  key and OpenSSL's first use of it), one ``remember_once`` per store, and the
  hand-written ES256 JWT verify floor (bench/floors.py) as the yardstick.

The world's load, not one client: ``clients`` distinct users, each with its own token
and its own DPoP key (more than the verified-token cache and the proof-header cache
hold), and every proof new (made before the timing, since signing is the client's
work). A footnote row repeats one client (every cache warm).

    .venv/bin/python bench/run.py --sections dpop [--quick]
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from fixtures import AUDIENCE, ISSUER, KID, Services, verify_claims
from floors import JWTFloor
from harness import Progress, Unavailable
from micro import drop_postgres_table, open_bench_store, store_urls

from coatcheck.auth import (
    Authenticator,
    BearerTransport,
    DPoPPolicy,
    DPoPTransport,
    JWTStrategy,
)
from coatcheck.tokens import JWTCodec, Key
from coatcheck.tokens.dpop import make_proof

__all__ = ["markdown", "run_dpop"]

HOST = "api.bench.example"
URL = f"https://{HOST}/api/me"
_ROUNDS_MIN = 3
_POLICY = DPoPPolicy(max_age=timedelta(minutes=10))


def _point(key: Key) -> bytes:
    """The uncompressed P-256 point of an ES256 key (what a proof's x and y carry)."""
    public = key.jose_key.public_key
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise TypeError("not an EC key")
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _headers(token: str, scheme: str, proof: str | None) -> dict[str, str]:
    headers = {"authorization": f"{scheme} {token}", "host": HOST}
    if proof is not None:
        headers.update({"dpop": proof, ":method": "GET", ":scheme": "https", ":path": "/api/me"})
    return headers


async def _timed(
    candidates: dict[str, Callable[[int], Awaitable[object]]], rounds: int, per_round: int,
    seconds: float,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall, cpu) µs per op for each candidate, round-robin, order rotated each round.

    CPU time is this process's: the in-process work, steadier than wall time on a
    shared machine; wall time adds the wait for a network store.
    """
    names = list(candidates)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    deadline = time.monotonic() + seconds
    for r in range(rounds):
        if r >= _ROUNDS_MIN and time.monotonic() > deadline:
            break
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn = candidates[name]
            gc.collect()
            gc.disable()
            try:
                c0 = time.process_time_ns()
                t0 = time.perf_counter_ns()
                for i in range(r * per_round, (r + 1) * per_round):
                    await fn(i)
                t1 = time.perf_counter_ns()
                c1 = time.process_time_ns()
            finally:
                gc.enable()
            wall[name].append((t1 - t0) / per_round / 1000)
            cpu[name].append((c1 - c0) / per_round / 1000)
    return wall, cpu


async def run_dpop(
    services: Services, progress: Progress, *, quick: bool, clients: int | None = None
) -> dict[str, Any]:
    """The DPoP rows; medians in µs and the ratios the issue asks for."""
    clients = clients or 10_000
    rounds, per_round, seconds = (3, 400, 20.0) if quick else (9, 1_500, 120.0)
    notes: list[str] = []
    out: dict[str, Any] = {"clients": clients, "rounds": rounds, "per_round": per_round,
                           "notes": notes}
    codec = JWTCodec([Key.generate("ES256", kid="bench")])
    strategy = JWTStrategy(codec, ttl=timedelta(hours=1))
    progress.say(f"dpop: {clients} clients with their own key and token")
    keys = [Key.generate("ES256") for _ in range(clients)]
    bearer_tokens = [(await strategy.issue(f"u{i}")).token for i in range(clients)]
    bound_tokens = [
        (await strategy.issue(f"u{i}", data={"cnf": {"jkt": keys[i].thumbprint()}})).token
        for i in range(clients)
    ]
    # One strategy (so one verified-token cache) per candidate: none warms another's.
    def fresh() -> JWTStrategy:
        return JWTStrategy(codec, ttl=timedelta(hours=1))

    bearer_auth = Authenticator(fresh(), (BearerTransport(),))

    async def bearer(i: int) -> object:
        result = await bearer_auth.authenticate(
            _headers(bearer_tokens[i % clients], "Bearer", None)
        )
        return result.identity

    candidates: dict[str, Callable[[int], Awaitable[object]]] = {"bearer": bearer}
    total = rounds * per_round
    stores: list[tuple[str, Any]] = []
    cleanups: list[Callable[[], Awaitable[None]]] = []
    tag = secrets.token_hex(3)  # this run's own Redis prefix and PostgreSQL table
    with tempfile.TemporaryDirectory(prefix="coatcheck-bench-dpop-") as tmp:
        for kind, url in store_urls(services, Path(tmp), f"dpop{tag}").items():
            try:
                store = await open_bench_store(kind, url)
            except Unavailable as exc:
                notes.append(str(exc))
                continue
            stores.append((kind, store))

            async def close_store(s: Any = store, kind: str = kind) -> None:
                await s.close()
                if kind == "postgresql":  # Redis forgets the proof ids by itself (TTL)
                    await asyncio.to_thread(
                        drop_postgres_table, services.postgres_url, f"bench_sessions_dpop{tag}"
                    )

            cleanups.append(close_store)
        try:
            for kind, store in stores:
                # Proofs are made before the timing: let them live through the run.
                transport = DPoPTransport(store, policy=_POLICY)
                auth = Authenticator(fresh(), (transport, BearerTransport()))
                progress.say(f"dpop: {total} proofs for {kind} (client-side signing, untimed)")
                now = time.time()
                proofs = [
                    make_proof(keys[i % clients], method="GET", url=URL, now=now,
                               access_token=bound_tokens[i % clients])
                    for i in range(total)
                ]
                check = await auth.authenticate(_headers(bound_tokens[0], "DPoP", proofs[0]))
                if check.identity is None or check.identity.via != "dpop":
                    raise RuntimeError(f"{kind}: a good proof was refused: {check.error}")
                replay = await auth.authenticate(_headers(bound_tokens[0], "DPoP", proofs[0]))
                if replay.identity is not None:
                    raise RuntimeError(f"{kind}: a replayed proof was accepted")
                proofs[0] = make_proof(keys[0], method="GET", url=URL, now=now,
                                       access_token=bound_tokens[0])

                async def dpop(i: int, auth: Any = auth, proofs: list[str] = proofs) -> object:
                    result = await auth.authenticate(
                        _headers(bound_tokens[i % clients], "DPoP", proofs[i])
                    )
                    if result.identity is None:
                        raise RuntimeError(f"refused: {result.error}")
                    return result.identity

                async def write(i: int, store: Any = store, tag: str = secrets.token_hex(4),
                                ) -> object:
                    return await store.remember_once(f"bench:{tag}:{i}", 71.0, time.time())

                candidates[f"dpop/{kind}"] = dpop
                candidates[f"replay write/{kind}"] = write

            # The same load with the key cache sized to the clients, every key seen once
            # before (a steady state: real clients keep their key).
            cached = Authenticator(fresh(), (
                DPoPTransport(stores[0][1], policy=DPoPPolicy(
                    max_age=timedelta(minutes=10), key_cache=2 * clients)),
                BearerTransport()))
            now = time.time()
            cached_proofs = [
                make_proof(keys[i % clients], method="GET", url=URL, now=now,
                           access_token=bound_tokens[i % clients])
                for i in range(total)
            ]
            transport = cached.dpop
            if transport is None:  # pragma: no cover
                raise RuntimeError("no DPoP transport")
            for i in range(clients):  # untimed: each client's first proof parses its key
                first = make_proof(keys[i], method="GET", url=URL, now=now,
                                   access_token=bound_tokens[i])
                transport.proof_for(_headers(bound_tokens[i], "DPoP", first),
                                    access_token=bound_tokens[i])

            async def dpop_cached(i: int) -> object:
                result = await cached.authenticate(
                    _headers(bound_tokens[i % clients], "DPoP", cached_proofs[i])
                )
                if result.identity is None:
                    raise RuntimeError(f"refused: {result.error}")
                return result.identity

            candidates[f"dpop, keys cached/{stores[0][0]}"] = dpop_cached

            # The parts: one signature verify (distinct keys, each used once before, so
            # OpenSSL's first-use work is not in it), the same with a key made from the
            # point for it (a client whose key is not cached), and the JWT floor.
            signing = [(keys[i].sign(b"bench %d" % i), b"bench %d" % i) for i in range(clients)]
            for i in range(clients):
                if not keys[i].verify(signing[i][1], signing[i][0]):
                    raise RuntimeError("a good signature was refused")

            async def es256_verify(i: int) -> object:
                signature, data = signing[i % clients]
                return keys[i % clients].verify(data, signature)

            p256, ecdsa = ec.SECP256R1(), ec.ECDSA(hashes.SHA256())
            points = [_point(keys[i]) for i in range(clients)]
            ders = [
                encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                     int.from_bytes(sig[32:], "big"))
                for sig, _ in signing
            ]

            async def es256_new_key(i: int) -> object:
                j = i % clients
                public = ec.EllipticCurvePublicKey.from_encoded_point(p256, points[j])
                return public.verify(ders[j], signing[j][1], ecdsa)

            floor = JWTFloor("ES256", ec.generate_private_key(ec.SECP256R1()), issuer=ISSUER,
                             audience=AUDIENCE, kid=KID)
            floor_tokens = [floor.sign(verify_claims()) for _ in range(256)]

            async def floor_verify(i: int) -> object:
                return floor.verify(floor_tokens[i % 256])

            candidates["es256 verify"] = es256_verify
            candidates["es256 verify, new key"] = es256_new_key
            candidates["floor verify"] = floor_verify
            progress.say(f"dpop: timing {len(candidates)} candidates, interleaved")
            timings, cpu_timings = await _timed(candidates, rounds, per_round, seconds)

            # Footnote: one client over and over (every cache warm).
            one = Authenticator(
                fresh(), (DPoPTransport(stores[0][1], policy=_POLICY), BearerTransport())
            )
            warm = [make_proof(keys[0], method="GET", url=URL, now=time.time(),
                               access_token=bound_tokens[0]) for _ in range(per_round * 3)]

            async def repeated(i: int) -> object:
                return (await one.authenticate(_headers(bound_tokens[0], "DPoP", warm[i]))).identity

            async def repeated_bearer(i: int) -> object:
                return (await bearer_auth.authenticate(
                    _headers(bearer_tokens[0], "Bearer", None))).identity

            foot, foot_cpu = await _timed({"dpop one client/memory": repeated,
                                           "bearer one client": repeated_bearer},
                                          3, per_round, 30.0)
        finally:
            for cleanup in cleanups:
                await cleanup()
    wall = {name: statistics.median(v) for name, v in {**timings, **foot}.items()}
    cpu = {name: statistics.median(v) for name, v in {**cpu_timings, **foot_cpu}.items()}
    out["median_us"] = wall
    out["cpu_median_us"] = cpu
    out["samples_us"] = {**timings, **foot}
    out["rows"] = {
        clock: _rows(medians, [kind for kind, _ in stores])
        for clock, medians in (("wall", wall), ("cpu", cpu))
    }
    return out


def _rows(medians: dict[str, float], kinds: list[str]) -> dict[str, Any]:
    verify, floor_us, plain = medians["es256 verify"], medians["floor verify"], medians["bearer"]
    new_key = medians.get("es256 verify, new key", float("nan"))
    rows: dict[str, Any] = {}
    for kind in kinds:
        bound = medians[f"dpop/{kind}"]
        write = medians[f"replay write/{kind}"]
        extra = bound - plain
        rows[kind] = {
            "bearer_us": plain,
            "dpop_us": bound,
            "extra_us": extra,
            "verify_us": verify,
            "write_us": write,
            "allowed_us": verify + write,
            "within_target": extra <= verify + write,
            # What the extra would be if only cryptography's work for a key it has not
            # seen were added to the allowance (the least a cold proof key costs).
            "new_key_verify_us": new_key,
            "allowed_new_key_us": new_key + write,
            "within_new_key": extra <= new_key + write,
            "extra_over_allowed": extra / (verify + write),
            "floor_us": floor_us,
            "dpop_over_floor": bound / floor_us,
            "bearer_over_floor": plain / floor_us,
            "extra_over_floor": extra / floor_us,
            "dpop_over_bearer": bound / plain,
        }
    return rows


def markdown(dpop: dict[str, Any]) -> list[str]:
    """The section's tables for the results file."""
    lines = [
        "",
        "## DPoP (issue 16)",
        "",
        f"{dpop['clients']:,} clients, each with its own ES256 key and JWT (more than the "
        "verified-token and proof-header caches hold); every proof new; JWT strategy. "
        "Target: a DPoP-bound request costs at most one extra ES256 verify plus one "
        "replay-cache write over a plain bearer request (extra <= allowed). \"new key\": "
        "the same verify with a key made from the point for it, what a proof key that is "
        "not cached costs at least in `cryptography` (extra <= new key + write).",
    ]
    for clock in ("cpu", "wall"):
        med = dpop["cpu_median_us" if clock == "cpu" else "median_us"]
        new_key = med.get("es256 verify, new key", float("nan"))
        lines += [
            "",
            f"{clock} time per request (µs): ES256 verify {med['es256 verify']:.1f} (with a "
            f"new key {new_key:.1f}), ES256 JWT verify floor {med['floor verify']:.1f}, plain "
            f"bearer {med['bearer']:.1f}.",
            "",
            "| replay cache | bearer | DPoP | extra | verify + write = allowed | within | "
            "extra / allowed | new key + write | within | DPoP / floor | bearer / floor | "
            "extra / floor |",
            "|---|---:|---:|---:|---:|:---:|---:|---:|:---:|---:|---:|---:|",
        ]
        for kind, r in dpop["rows"][clock].items():
            lines.append(
                f"| {kind} | {r['bearer_us']:.1f} | {r['dpop_us']:.1f} | {r['extra_us']:.1f} | "
                f"{r['verify_us']:.1f} + {r['write_us']:.1f} = {r['allowed_us']:.1f} | "
                f"{'yes' if r['within_target'] else 'NO'} | {r['extra_over_allowed']:.2f} | "
                f"{r['allowed_new_key_us']:.1f} | {'yes' if r['within_new_key'] else 'NO'} | "
                f"{r['dpop_over_floor']:.2f} | {r['bearer_over_floor']:.2f} | "
                f"{r['extra_over_floor']:.2f} |"
            )
        lines += [
            "",
            f"Footnote ({clock}), one client repeated (caches warm): DPoP "
            f"{med['dpop one client/memory']:.1f} µs, bearer {med['bearer one client']:.1f} µs.",
        ]
        cached = [name for name in med if name.startswith("dpop, keys cached/")]
        for name in cached:
            extra = med[name] - med["bearer"]
            allowed = med["es256 verify"] + med["replay write/" + name.split("/")[1]]
            lines.append(
                f"With the key cache sized to the {dpop['clients']:,} clients (each key seen "
                f"before), {name.split('/')[1]}: DPoP {med[name]:.1f} µs, extra {extra:.1f} "
                f"µs, allowed {allowed:.1f} µs: {'within' if extra <= allowed else 'NOT within'}."
            )
    return [*lines, ""]
