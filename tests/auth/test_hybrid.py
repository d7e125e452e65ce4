"""HybridStrategy: access tokens, refresh rotation, reuse detection, grace, revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coatcheck.auth.fresh import require_recent_login
from coatcheck.auth.hybrid import (
    GENERATION_KEY,
    PREVIOUS_GENERATION_KEY,
    REFRESH_SEPARATOR,
    HybridIssued,
    HybridStrategy,
    split_refresh_token,
)
from coatcheck.auth.identity import Identity
from coatcheck.clock import FrozenClock
from coatcheck.errors import (
    ConfigurationError,
    InvalidCredentials,
    RefreshReuse,
    StaleAuthentication,
)
from coatcheck.revocation import RevocationSet
from coatcheck.secret import SecretRing
from coatcheck.sessions import SessionManager
from coatcheck.stores import MemoryStore
from coatcheck.tokens import JWTCodec, Key, unverified_parts

pytestmark = pytest.mark.anyio

SECRET_A = "a" * 32
SECRET_B = "b" * 32


def _strategy(
    clock: FrozenClock,
    *,
    alg: str = "HS256",
    ring: SecretRing | None = None,
    revocations: RevocationSet | None = None,
    store: MemoryStore | None = None,
) -> HybridStrategy:
    key = Key.from_secret("k" * 32, kid="k1") if alg == "HS256" else Key.generate(alg, kid="k1")
    codec = JWTCodec([key], clock=clock)
    manager = SessionManager(store if store is not None else MemoryStore(), clock=clock)
    return HybridStrategy(
        manager, codec, ring or SecretRing([SECRET_A]), revocations=revocations, clock=clock
    )


async def _login(strategy: HybridStrategy) -> HybridIssued:
    return await strategy.issue("alice", data={"name": "Alice", "_rt": "forged"})


async def test_login_gives_an_access_jwt_and_a_refresh_token(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    pair = await _login(strategy)
    _, claims = unverified_parts(pair.token)
    assert claims["sub"] == "alice"
    assert claims["sid"] == pair.session_id
    assert claims["name"] == "Alice"
    assert claims["auth_time"] == int(clock.now())
    assert claims["exp"] - claims["iat"] == 300
    assert not any(k.startswith("_") for k in claims)
    assert REFRESH_SEPARATOR in pair.refresh_token
    assert pair.refresh_expires_at > pair.expires_at
    # The store holds only hashes of the generation secret, never the secret.
    record = await strategy.manager.get_id(pair.session_id or "")
    assert record is not None
    generation = pair.refresh_token.rpartition(REFRESH_SEPARATOR)[2]
    assert generation not in repr(record.data)
    assert record.data[GENERATION_KEY] != "forged"
    assert "forged" not in repr(record.data)


async def test_verify_needs_no_store_and_refuses_garbage(clock: FrozenClock) -> None:
    store = MemoryStore()
    strategy = _strategy(clock, store=store)
    pair = await _login(strategy)
    # Gone from the store, yet the access token still works: no store lookup per request.
    store._records.clear()
    verified = await strategy.verify(pair.token)
    assert verified is not None
    identity = verified.identity
    assert (identity.user_id, identity.mode) == ("alice", "hybrid")
    assert identity.session_id == pair.session_id
    assert identity.name == "Alice"
    assert verified.reissued is None
    assert await strategy.verify("not.a.jwt") is None
    assert await strategy.verify(pair.refresh_token) is None


async def test_access_token_expires_after_its_ttl(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    pair = await _login(strategy)
    clock.advance(300 + 11)  # ttl + the codec's default leeway of 10 s
    assert await strategy.verify(pair.token) is None


async def test_refresh_rotates_and_the_successor_works(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    first = await _login(strategy)
    clock.advance(400)
    second = await strategy.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.session_id == first.session_id
    assert (await strategy.verify(second.token)) is not None
    third = await strategy.refresh(second.refresh_token)
    assert third.refresh_token not in (first.refresh_token, second.refresh_token)
    record = await strategy.manager.get_id(first.session_id or "")
    assert record is not None
    assert record.data["_rt_n"] == 2


async def test_claims_and_auth_time_survive_refresh(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    first = await _login(strategy)
    clock.advance(1000)
    second = await strategy.refresh(first.refresh_token)
    _, claims = unverified_parts(second.token)
    assert claims["name"] == "Alice"
    assert claims["auth_time"] == int(clock.now()) - 1000
    assert claims["iat"] == int(clock.now())


async def test_reuse_after_the_successor_was_used_revokes_the_family(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    first = await _login(strategy)
    second = await strategy.refresh(first.refresh_token)
    clock.advance(60)
    third = await strategy.refresh(second.refresh_token)  # the successor's first use
    with pytest.raises(RefreshReuse):
        await strategy.refresh(first.refresh_token)
    # The whole family is gone: the legitimate successor and its access token too.
    with pytest.raises(InvalidCredentials):
        await strategy.refresh(third.refresh_token)
    assert await strategy.verify(third.token) is None
    assert await strategy.manager.get_id(first.session_id or "") is None


async def test_a_lost_refresh_response_is_recovered(clock: FrozenClock) -> None:
    # Issue 12 item 7: GET /auth/refresh with RT1, the answer is lost, RT1 again after
    # the 10 s grace. Before: the session was revoked. Now: the same successor.
    strategy = _strategy(clock)
    first = await _login(strategy)
    clock.advance(400)
    lost = await strategy.refresh(first.refresh_token)
    clock.advance(120)
    again = await strategy.refresh(first.refresh_token)
    assert again.refresh_token == lost.refresh_token
    _, claims = unverified_parts(again.token)
    assert claims["iat"] == int(clock.now())  # a fresh access token: lost's has aged
    assert claims["jti"] == unverified_parts(lost.token)[1]["jti"]
    assert await strategy.verify(again.token) is not None
    record = await strategy.manager.get_id(first.session_id or "")
    assert record is not None
    assert record.data["_rt_n"] == 1  # nothing rotated: the successor is still unused
    # The successor rotates normally; from then on the retired token is reuse.
    third = await strategy.refresh(again.refresh_token)
    with pytest.raises(RefreshReuse):
        await strategy.refresh(first.refresh_token)
    assert await strategy.verify(third.token) is None


async def test_the_lost_response_window_is_bounded(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    first = await _login(strategy)
    lost = await strategy.refresh(first.refresh_token)
    clock.advance(10 * 60)
    assert (await strategy.refresh(first.refresh_token)).refresh_token == lost.refresh_token
    clock.advance(1)  # past retry_window (10 minutes by default)
    with pytest.raises(RefreshReuse):
        await strategy.refresh(first.refresh_token)
    assert await strategy.manager.get_id(first.session_id or "") is None


async def test_an_older_generation_is_reuse_even_within_grace(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    first = await _login(strategy)
    second = await strategy.refresh(first.refresh_token)
    await strategy.refresh(second.refresh_token)
    with pytest.raises(RefreshReuse):
        await strategy.refresh(first.refresh_token)


async def test_a_guessed_generation_with_a_stolen_session_token_is_reuse(
    clock: FrozenClock,
) -> None:
    strategy = _strategy(clock)
    first = await _login(strategy)
    session_token = first.refresh_token.rpartition(REFRESH_SEPARATOR)[0]
    with pytest.raises(RefreshReuse):
        await strategy.refresh(session_token + REFRESH_SEPARATOR + "A" * 43)
    assert await strategy.verify(first.token) is None


@pytest.mark.parametrize("alg", ["HS256", "EdDSA"])
async def test_grace_window_returns_the_very_same_pair(clock: FrozenClock, alg: str) -> None:
    strategy = _strategy(clock, alg=alg)
    first = await _login(strategy)
    clock.advance(100)
    winner = await strategy.refresh(first.refresh_token)
    clock.advance(9.5)
    again = await strategy.refresh(first.refresh_token)
    assert again.refresh_token == winner.refresh_token
    assert again.token == winner.token  # deterministic signatures: byte-identical
    # ... and the successor still rotates normally afterwards.
    assert (await strategy.refresh(winner.refresh_token)).refresh_token != winner.refresh_token


async def test_grace_survives_a_refresh_secret_rotation(clock: FrozenClock) -> None:
    store = MemoryStore()
    old = _strategy(clock, store=store, ring=SecretRing([SECRET_A]))
    first = await _login(old)
    winner = await old.refresh(first.refresh_token)
    rotated = HybridStrategy(
        old.manager, old.codec, SecretRing([SECRET_A, SECRET_B]), clock=clock
    )
    again = await rotated.refresh(first.refresh_token)
    assert again.refresh_token == winner.refresh_token


async def test_malformed_or_unknown_refresh_tokens(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    first = await _login(strategy)
    for bad in ["", "x", first.token, first.refresh_token + "x", "~" * 60]:
        with pytest.raises(InvalidCredentials):
            await strategy.refresh(bad)
    await strategy.revoke(first.refresh_token)
    with pytest.raises(InvalidCredentials):
        await strategy.refresh(first.refresh_token)
    assert split_refresh_token(first.token) is None


async def test_session_tokens_of_other_modes_are_not_refreshable(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    token, _ = await strategy.manager.create("bob")
    with pytest.raises(InvalidCredentials):
        await strategy.refresh(token + REFRESH_SEPARATOR + "A" * 43)


async def test_logout_by_access_token_stops_it_at_once_here(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    pair = await _login(strategy)
    await strategy.revoke(pair.token)
    assert await strategy.verify(pair.token) is None
    with pytest.raises(InvalidCredentials):
        await strategy.refresh(pair.refresh_token)


async def test_logout_with_an_expired_access_token_still_ends_the_session(
    clock: FrozenClock,
) -> None:
    strategy = _strategy(clock)
    pair = await _login(strategy)
    clock.advance(3600)
    await strategy.revoke(pair.token)
    assert await strategy.manager.get_id(pair.session_id or "") is None
    await strategy.revoke("forged.token.here")


async def test_revoke_device_and_everywhere_but_this_one(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    phone, laptop, tablet = [await _login(strategy) for _ in range(3)]
    assert await strategy.revoke_session(phone.session_id or "")
    assert await strategy.verify(phone.token) is None
    revoked = await strategy.revoke_user("alice", keep=laptop.session_id)
    assert revoked == [tablet.session_id]
    assert await strategy.verify(tablet.token) is None
    assert await strategy.verify(laptop.token) is not None
    assert await strategy.revoke_user("alice") == [laptop.session_id]
    assert await strategy.verify(laptop.token) is None


async def test_entries_are_kept_until_the_tokens_expire(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    pair = await _login(strategy)
    await strategy.revoke(pair.token)
    assert len(strategy.revocations) == 1
    clock.advance(300 + 10 + 1)
    strategy.revocations.add(["other"])  # adding prunes the expired head
    assert len(strategy.revocations) == 1


async def test_other_process_without_feed_keeps_accepting_until_expiry(clock: FrozenClock) -> None:
    store = MemoryStore()
    here = _strategy(clock, store=store)
    # Another process: its own manager (and revocation set) on the same store.
    there = HybridStrategy(
        SessionManager(store, clock=clock), here.codec, SecretRing([SECRET_A]), clock=clock
    )
    pair = await _login(here)
    await here.revoke(pair.token)
    # The stated bound without a feed: one access-token lifetime elsewhere.
    assert await there.verify(pair.token) is not None
    clock.advance(300 + 11)
    assert await there.verify(pair.token) is None


async def test_unreliable_set_falls_back_to_the_store(clock: FrozenClock) -> None:
    store = MemoryStore()
    here = _strategy(clock, store=store)
    revocations = RevocationSet(retention=timedelta(minutes=6), clock=clock)
    there = HybridStrategy(
        SessionManager(store, clock=clock), here.codec, SecretRing([SECRET_A]),
        revocations=revocations, clock=clock,
    )  # fmt: skip
    pair, other = await _login(here), await _login(here)
    revocations.mark_down()  # the feed dropped: every access token is checked in the store
    await here.revoke(pair.token)
    assert await there.verify(pair.token) is None
    assert await there.verify(other.token) is not None
    assert revocations.is_revoked(pair.session_id or "", clock.now())
    revocations.mark_up()
    store._records.clear()
    assert await there.verify(other.token) is not None


def test_configuration_is_checked(clock: FrozenClock) -> None:
    codec = JWTCodec([Key.from_secret("k" * 32)], clock=clock)
    manager = SessionManager(MemoryStore(), clock=clock)
    for kwargs in (
        {"access_ttl": timedelta(0)},
        {"grace": timedelta(seconds=-1)},
        {"grace": timedelta(minutes=5)},
        {"grace": timedelta(seconds=30), "retry_window": timedelta(seconds=20)},
        {"retry_window": timedelta(days=2)},
        {"revocations": RevocationSet(retention=timedelta(minutes=1))},
    ):
        with pytest.raises(ConfigurationError):
            HybridStrategy(manager, codec, SECRET_A, clock=clock, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        HybridStrategy(manager, codec, "short", clock=clock)


async def test_previous_generation_hash_is_kept_for_grace(clock: FrozenClock) -> None:
    strategy = _strategy(clock)
    first = await _login(strategy)
    await strategy.refresh(first.refresh_token)
    record = await strategy.manager.get_id(first.session_id or "")
    assert record is not None
    assert len(record.data[PREVIOUS_GENERATION_KEY]) == 64


def test_require_recent_login(clock: FrozenClock) -> None:
    identity = Identity(user_id="alice", mode="hybrid", auth_time=clock.now() - 100)
    require_recent_login(identity, timedelta(minutes=5), clock=clock)
    with pytest.raises(StaleAuthentication):
        require_recent_login(identity, timedelta(seconds=99), clock=clock)
    with pytest.raises(StaleAuthentication):
        require_recent_login(Identity(user_id="a", mode="jwt"), timedelta(days=1), clock=clock)


async def test_a_revoke_through_the_manager_stops_access_tokens_at_once(
    clock: FrozenClock,
) -> None:
    # Issue 12 item 6: an app (or an adapter, or the CLI) calling the manager directly,
    # not the strategy, reached no revocation set: the access token lived on.
    strategy = _strategy(clock)
    phone, laptop = await _login(strategy), await _login(strategy)
    assert strategy.manager.revocations is strategy.revocations
    await strategy.manager.revoke_id(phone.session_id or "")
    assert await strategy.verify(phone.token) is None
    await strategy.manager.revoke_user("alice")
    assert await strategy.verify(laptop.token) is None


def test_the_strategy_uses_the_managers_revocations(clock: FrozenClock) -> None:
    codec = JWTCodec([Key.from_secret("k" * 32)], clock=clock)
    own = RevocationSet(retention=timedelta(minutes=6), clock=clock)
    manager = SessionManager(MemoryStore(), clock=clock, revocations=own)
    assert HybridStrategy(manager, codec, SECRET_A, clock=clock).revocations is own
    other = RevocationSet(retention=timedelta(minutes=6), clock=clock)
    with pytest.raises(ConfigurationError):
        HybridStrategy(manager, codec, SECRET_A, revocations=other, clock=clock)
    short = SessionManager(
        MemoryStore(), clock=clock, revocations=RevocationSet(retention=timedelta(minutes=1))
    )
    with pytest.raises(ConfigurationError):
        HybridStrategy(short, codec, SECRET_A, clock=clock)


async def test_the_token_cache_is_sized_or_off_and_never_skips_revocation(
    clock: FrozenClock,
) -> None:
    key = Key.from_secret("k" * 32, kid="k1")
    for size in (0, 4):
        manager = SessionManager(MemoryStore(), clock=clock)
        strategy = HybridStrategy(
            manager, JWTCodec([key], clock=clock), SecretRing([SECRET_A]), clock=clock,
            cache_size=size,
        )
        issued = await _login(strategy)
        first = await strategy.verify(issued.token, via="bearer")
        second = await strategy.verify(issued.token, via="bearer")
        assert first is not None
        assert second is not None
        assert (first is second) == (size > 0)  # served from the cache when it is on
        assert strategy.cache_info().hits == (1 if size else 0)
        await strategy.revoke(issued.token)
        assert await strategy.verify(issued.token, via="bearer") is None
    with pytest.raises(ConfigurationError):
        HybridStrategy(
            SessionManager(MemoryStore(), clock=clock), JWTCodec([key], clock=clock),
            SecretRing([SECRET_A]), clock=clock, cache_size=-1,
        )
