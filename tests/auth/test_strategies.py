from __future__ import annotations

from datetime import timedelta

import pytest

from coatcheck._bounded import ADMIT_EVERY
from coatcheck.auth import PERSISTENT_KEY, JWTStrategy, SessionStrategy, Strategy
from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, StoreUnavailable
from coatcheck.policies import SessionPolicy
from coatcheck.sessions import SessionManager, SessionRecord
from coatcheck.stores import MemoryStore
from coatcheck.tokens import JWTCodec, Key

pytestmark = pytest.mark.anyio

POLICY = SessionPolicy(
    idle_timeout=timedelta(hours=2),
    absolute_timeout=timedelta(days=1),
    renew_interval=timedelta(minutes=10),
)


class DownStore(MemoryStore):
    """A store whose backend is unreachable (what a Redis outage looks like)."""

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        raise StoreUnavailable("the store is down")


@pytest.fixture
def sessions(clock: FrozenClock) -> SessionStrategy:
    return SessionStrategy(SessionManager(MemoryStore(), policy=POLICY, clock=clock), clock=clock)


@pytest.fixture
def jwt(clock: FrozenClock) -> JWTStrategy:
    codec = JWTCodec(Key.generate("HS256"), clock=clock)
    return JWTStrategy(codec, ttl=timedelta(hours=1), clock=clock)


def test_strategies_satisfy_the_protocol(sessions: SessionStrategy, jwt: JWTStrategy) -> None:
    assert isinstance(sessions, Strategy)
    assert isinstance(jwt, Strategy)


# -- sessions ---------------------------------------------------------------------------


async def test_session_issue_and_verify(sessions: SessionStrategy, clock: FrozenClock) -> None:
    issued = await sessions.issue(
        "u1", data={"name": "Alice Example"}, user_agent="UA", ip="10.0.0.1", persistent=True
    )
    assert issued.session_id is not None
    assert issued.identity.claims[PERSISTENT_KEY] is True
    assert issued.expires_at == clock.now() + 2 * 3600
    clock.advance(1)
    verified = await sessions.verify(issued.token)
    assert verified is not None
    identity = verified.identity
    assert (identity.user_id, identity.mode, identity.name) == ("u1", "session", "Alice Example")
    assert identity.session_id == issued.session_id
    assert identity.auth_time == clock.now() - 1
    assert identity.persistent
    # Unchanged session: nothing to re-send.
    assert verified.reissued is None


@pytest.mark.parametrize("token", ["", "garbage", "0" * 52, "deadbeef." + "A" * 43])
async def test_session_verify_refuses_bad_tokens(sessions: SessionStrategy, token: str) -> None:
    assert await sessions.verify(token) is None


async def test_session_renewal_reissues_a_persistent_cookie(
    sessions: SessionStrategy, clock: FrozenClock
) -> None:
    issued = await sessions.issue("u1")
    clock.advance(11 * 60)
    verified = await sessions.verify(issued.token)
    assert verified is not None
    assert verified.reissued is not None
    assert verified.reissued.token == issued.token
    assert verified.reissued.expires_at == clock.now() + 2 * 3600
    # Right after the renewal the session is unchanged again.
    clock.advance(1)
    again = await sessions.verify(issued.token)
    assert again is not None
    assert again.reissued is None


async def test_session_renewal_leaves_browser_session_cookies_alone(
    sessions: SessionStrategy, clock: FrozenClock
) -> None:
    issued = await sessions.issue("u1", persistent=False)
    clock.advance(11 * 60)
    verified = await sessions.verify(issued.token)
    assert verified is not None
    assert not verified.identity.persistent
    assert verified.reissued is None


async def test_session_expires_idle(sessions: SessionStrategy, clock: FrozenClock) -> None:
    issued = await sessions.issue("u1")
    clock.advance(2 * 3600 + 1)
    assert await sessions.verify(issued.token) is None


async def test_session_revoke_is_immediate(sessions: SessionStrategy, clock: FrozenClock) -> None:
    issued = await sessions.issue("u1")
    await sessions.revoke(issued.token)
    assert await sessions.verify(issued.token) is None
    await sessions.revoke("not-a-token")  # nothing to do, no error


async def test_session_store_outage_propagates(clock: FrozenClock) -> None:
    strategy = SessionStrategy(SessionManager(DownStore(), clock=clock), clock=clock)
    with pytest.raises(StoreUnavailable):
        await strategy.verify("deadbeef." + "A" * 43)


# -- JWT --------------------------------------------------------------------------------


async def test_jwt_issue_and_verify(jwt: JWTStrategy, clock: FrozenClock) -> None:
    issued = await jwt.issue(
        "u1", data={"name": "Alice Example", "sub": "admin", "exp": 1}, persistent=False
    )
    assert issued.session_id is None
    assert issued.expires_at == clock.now() + 3600
    verified = await jwt.verify(issued.token)
    assert verified is not None
    identity = verified.identity
    assert identity.user_id == "u1"  # data cannot override sub
    assert identity.mode == "jwt"
    assert identity.name == "Alice Example"
    assert identity.persistent is False
    assert identity.auth_time == clock.now()
    assert identity.expires_at == clock.now() + 3600
    assert identity.claims["per"] is False
    assert verified.reissued is None


async def test_jwt_refuses_tampered_expired_and_foreign(
    jwt: JWTStrategy, clock: FrozenClock
) -> None:
    token = (await jwt.issue("u1")).token
    head, payload, sig = token.split(".")
    assert await jwt.verify(f"{head}.{payload}.{sig[:-2]}AA") is None
    assert await jwt.verify(f"{head}.{payload}") is None
    assert await jwt.verify("") is None
    other = JWTStrategy(JWTCodec(Key.generate("HS256"), clock=clock), clock=clock)
    assert await other.verify(token) is None
    clock.advance(3600 + 60)
    assert await jwt.verify(token) is None


async def test_jwt_without_subject_is_refused(clock: FrozenClock) -> None:
    codec = JWTCodec(Key.generate("HS256"), clock=clock)
    strategy = JWTStrategy(codec, clock=clock)
    assert await strategy.verify(codec.encode({"name": "nobody"})) is None
    assert await strategy.verify(codec.encode({"sub": ""})) is None
    assert await strategy.verify(codec.encode({"sub": 42})) is None


async def test_jwt_slides_past_half_its_life(jwt: JWTStrategy, clock: FrozenClock) -> None:
    issued = await jwt.issue("u1", data={"name": "Alice Example"})
    login = clock.now()
    clock.advance(29 * 60)
    early = await jwt.verify(issued.token)
    assert early is not None
    assert early.reissued is None
    clock.advance(2 * 60)
    late = await jwt.verify(issued.token)
    assert late is not None
    assert late.reissued is not None
    fresh = await jwt.verify(late.reissued.token)
    assert fresh is not None
    assert fresh.identity.expires_at == clock.now() + 3600
    assert fresh.identity.auth_time == login  # still the time of the password check
    assert fresh.identity.name == "Alice Example"
    assert fresh.identity.claims["jti"] != late.identity.claims["jti"]


async def test_jwt_no_sliding_when_disabled(clock: FrozenClock) -> None:
    codec = JWTCodec(Key.generate("HS256"), clock=clock)
    strategy = JWTStrategy(codec, ttl=timedelta(hours=1), renew=False, clock=clock)
    issued = await strategy.issue("u1")
    clock.advance(50 * 60)
    verified = await strategy.verify(issued.token)
    assert verified is not None
    assert verified.reissued is None


async def test_jwt_revoke_cannot_take_a_token_back(jwt: JWTStrategy) -> None:
    issued = await jwt.issue("u1")
    await jwt.revoke(issued.token)
    assert await jwt.verify(issued.token) is not None


def test_jwt_ttl_must_be_positive(clock: FrozenClock) -> None:
    codec = JWTCodec(Key.generate("HS256"), clock=clock)
    with pytest.raises(ConfigurationError):
        JWTStrategy(codec, ttl=timedelta(0))


async def test_jwt_verify_cache_never_changes_an_answer(clock: FrozenClock) -> None:
    codec = JWTCodec(Key.generate("HS256"), clock=clock)
    strategy = JWTStrategy(codec, ttl=timedelta(hours=1), cache_size=2, clock=clock)
    tokens = [(await strategy.issue(f"u{i}")).token for i in range(3)]
    for token in tokens:
        # Once the cache is full, one miss in ADMIT_EVERY is kept: within that many
        # the token is cached.
        seen = [await strategy.verify(token) for _ in range(ADMIT_EVERY + 1)]
        assert all(v is not None and v.identity.user_id == seen[0].identity.user_id
                   for v in seen)  # type: ignore[union-attr]
        assert seen[-1].identity is seen[-2].identity  # type: ignore[union-attr]
    # Past half its life a cached token still gets its sliding reissue ...
    clock.advance(31 * 60)
    renewed = await strategy.verify(tokens[-1])
    assert renewed is not None
    assert renewed.reissued is not None
    # ... and past exp (plus leeway) it is refused, cached or not.
    clock.advance(30 * 60 + 11)
    assert await strategy.verify(tokens[-1]) is None


async def test_jwt_claims_are_read_only(jwt: JWTStrategy) -> None:
    verified = await jwt.verify((await jwt.issue("u1")).token)
    assert verified is not None
    with pytest.raises(TypeError):
        verified.identity.claims["sub"] = "admin"  # type: ignore[index]


def test_jwt_cache_size_must_not_be_negative(clock: FrozenClock) -> None:
    with pytest.raises(ConfigurationError):
        JWTStrategy(JWTCodec(Key.generate("HS256")), cache_size=-1)


async def test_a_guests_session_never_verifies(sessions: SessionStrategy) -> None:
    # A guest's session (the session mapping's) holds data, never an identity.
    token, record = await sessions.manager.create("", data={"_session": {"cart": ["hat"]}})
    assert record.user_id == ""
    assert await sessions.verify(token) is None
    issued = await sessions.issue("u1")
    verified = await sessions.verify(issued.token)
    assert verified is not None
    assert verified.record is not None  # the read the session mapping reuses
    assert verified.record.id == issued.session_id


async def test_a_guests_token_is_no_hybrid_refresh_token(clock: FrozenClock) -> None:
    import secrets

    from coatcheck.auth import HybridStrategy
    from coatcheck.errors import InvalidCredentials

    manager = SessionManager(MemoryStore(), policy=POLICY, clock=clock)
    hybrid = HybridStrategy(
        manager, JWTCodec(Key.generate("HS256"), clock=clock), secrets.token_bytes(32),
        clock=clock,
    )  # fmt: skip
    token, _ = await manager.create("", data={"_session": {"a": 1}})
    with pytest.raises(InvalidCredentials):
        await hybrid.refresh(f"{token}~{'A' * 43}")


async def test_session_verify_says_renewed_only_when_this_call_renewed(
    sessions: SessionStrategy, clock: FrozenClock
) -> None:
    # Regression: renewal was guessed from last_seen >= the time before the call, so a
    # session used in the same instant it was made (or touched) looked renewed and its
    # cookie was re-sent. The manager's lookup says exactly.
    issued = await sessions.issue("u1")
    verified = await sessions.verify(issued.token)
    assert verified is not None
    assert verified.reissued is None
    clock.advance(10 * 60)  # exactly renew_interval: due now
    renewed = await sessions.verify(issued.token)
    assert renewed is not None
    assert renewed.reissued is not None
    assert renewed.reissued.expires_at == clock.now() + 2 * 3600
    same_instant = await sessions.verify(issued.token)
    assert same_instant is not None
    assert same_instant.reissued is None


async def test_session_verify_needs_no_clock_of_its_own(clock: FrozenClock) -> None:
    # The strategy's clock may differ from the manager's (the default is the system
    # clock); whether a call renewed must not depend on comparing the two.
    manager = SessionManager(MemoryStore(), policy=POLICY, clock=clock)
    strategy = SessionStrategy(manager)  # system clock: years before the frozen one
    issued = await strategy.issue("u1")
    clock.advance(1)
    verified = await strategy.verify(issued.token)
    assert verified is not None
    assert verified.reissued is None
