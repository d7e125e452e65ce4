"""DPoP in the Authenticator: bound logins, refreshes and requests in every mode."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from coatcheck.auth import (
    Authenticator,
    BearerTransport,
    CookieTransport,
    DPoPPolicy,
    DPoPTransport,
    HybridCookieTransport,
    HybridStrategy,
    JWTStrategy,
    SessionStrategy,
)
from coatcheck.auth.dpop import key_binding
from coatcheck.clock import FrozenClock
from coatcheck.errors import (
    ConfigurationError,
    DPoPProofReplayed,
    DPoPRequired,
    InvalidCredentials,
    InvalidDPoPBinding,
    InvalidDPoPProof,
    StoreUnavailable,
    UseDPoPNonce,
)
from coatcheck.policies import CookiePolicy
from coatcheck.sessions import SessionManager
from coatcheck.stores import MemoryStore
from coatcheck.tokens import JWTCodec, Key, unverified_parts
from coatcheck.tokens.dpop import make_proof
from coatcheck.tokens.dpop_nonce import DPoPNonces

pytestmark = pytest.mark.anyio

HOST = "api.example.com"
ME = f"https://{HOST}/api/me"
LOGIN = f"https://{HOST}/api/login"
MODES = ("session", "jwt", "hybrid")


class ReplayDown(MemoryStore):
    async def remember_once(self, key: str, ttl: float, now: float) -> bool:
        raise StoreUnavailable("the store is down")


def _authenticator(
    mode: str,
    clock: FrozenClock,
    *,
    store: MemoryStore | None = None,
    policy: DPoPPolicy = DPoPPolicy(),  # noqa: B008 - frozen
    nonces: DPoPNonces | None = None,
) -> Authenticator:
    store = store if store is not None else MemoryStore()
    codec = JWTCodec([Key.generate("ES256", kid="k1")], clock=clock)
    manager = SessionManager(store, clock=clock)
    cookie: CookieTransport
    if mode == "session":
        strategy: Any = SessionStrategy(manager, clock=clock)
        cookie = CookieTransport("sid", CookiePolicy(secure=False), clock=clock)
    elif mode == "jwt":
        strategy = JWTStrategy(codec, ttl=timedelta(hours=1), clock=clock)
        cookie = CookieTransport("tok", CookiePolicy(secure=False), clock=clock)
    else:
        strategy = HybridStrategy(manager, codec, "r" * 32, clock=clock)
        cookie = HybridCookieTransport("acc", CookiePolicy(secure=False), clock=clock)
    dpop = DPoPTransport(store, policy=policy, nonces=nonces, clock=clock)
    return Authenticator(strategy, (cookie, dpop, BearerTransport()))


def request(
    url: str,
    *,
    method: str = "GET",
    key: Key | None = None,
    token: str | None = None,
    scheme: str = "DPoP",
    now: float,
    nonce: str | None = None,
    proof: str | None = None,
) -> dict[str, str]:
    """Request headers as an adapter hands them over (pseudo-headers included)."""
    scheme_part, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    headers = {"host": host, ":method": method, ":scheme": scheme_part, ":path": "/" + path}
    if token is not None:
        headers["authorization"] = f"{scheme} {token}"
    if proof is not None:
        headers["dpop"] = proof
    elif key is not None:
        access = token if scheme == "DPoP" else None
        headers["dpop"] = make_proof(
            key, method=method, url=url, now=now, access_token=access, nonce=nonce
        )
    return headers


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- issuing ------------------------------------------------------------------------------


async def test_a_login_with_a_proof_gets_a_bound_token(mode: str, clock: FrozenClock) -> None:
    auth = _authenticator(mode, clock)
    key = Key.generate("ES256")
    result = await auth.login(
        "alice", headers=request(LOGIN, method="POST", key=key, now=clock.now())
    )
    assert (result.token_type, result.jkt) == ("DPoP", key.thumbprint())
    assert key_binding(result.identity.claims) == key.thumbprint()
    assert result.set_headers == []  # never a bound token in a cookie
    if mode != "session":
        assert unverified_parts(result.token)[1]["cnf"] == {"jkt": key.thumbprint()}


async def test_a_login_without_a_proof_gets_a_bearer_token(mode: str, clock: FrozenClock) -> None:
    auth = _authenticator(mode, clock)
    result = await auth.login("alice", headers={}, data={"cnf": {"jkt": "forged"}})
    assert (result.token_type, result.jkt) == ("Bearer", None)
    assert "cnf" not in result.identity.claims  # only a checked proof may bind
    identity = await auth.require({"authorization": f"Bearer {result.token}"})
    assert (identity.user_id, identity.via) == ("alice", "bearer")


async def test_a_login_with_a_bad_or_replayed_proof_is_refused(
    mode: str, clock: FrozenClock
) -> None:
    auth = _authenticator(mode, clock)
    key = Key.generate("ES256")
    headers = request(LOGIN, method="POST", key=key, now=clock.now())
    await auth.login("alice", headers=headers)
    with pytest.raises(DPoPProofReplayed):
        await auth.login("alice", headers=headers)
    with pytest.raises(InvalidDPoPProof, match="htu"):
        await auth.login("alice", headers=request(LOGIN, method="POST", key=key,
                                                   now=clock.now()) | {":path": "/other"})


async def test_required_policy_refuses_token_requests_without_proof(clock: FrozenClock) -> None:
    auth = _authenticator("jwt", clock, policy=DPoPPolicy(required=True))
    assert auth.dpop is not None
    with pytest.raises(DPoPRequired) as info:
        await auth.dpop.token_request({})
    assert info.value.algs
    # A browser login still works: its cookie needs no key, but the same credential
    # used as a bearer token is refused.
    login = await auth.login("alice", headers={})
    assert login.token_type == "Bearer"
    assert (await auth.authenticate({"cookie": f"tok={login.token}"})).identity is not None
    bearer = await auth.authenticate({"authorization": f"Bearer {login.token}"})
    assert isinstance(bearer.error, DPoPRequired)


# -- using a bound token -------------------------------------------------------------------


async def _bound(auth: Authenticator, clock: FrozenClock) -> tuple[Key, str]:
    key = Key.generate("ES256")
    result = await auth.login(
        "alice", headers=request(LOGIN, method="POST", key=key, now=clock.now())
    )
    return key, result.token


async def test_a_bound_token_works_with_a_proof_of_its_key(mode: str, clock: FrozenClock) -> None:
    auth = _authenticator(mode, clock)
    key, token = await _bound(auth, clock)
    for _ in range(3):  # a fresh proof each time
        result = await auth.authenticate(request(ME, key=key, token=token, now=clock.now()))
        assert result.identity is not None
        assert (result.identity.user_id, result.identity.via) == ("alice", "dpop")
        assert result.error is None


async def test_a_stolen_bound_token_is_refused(mode: str, clock: FrozenClock) -> None:
    auth = _authenticator(mode, clock)
    key, token = await _bound(auth, clock)
    thief = Key.generate("ES256")
    cases: list[tuple[dict[str, str], type[Exception]]] = [
        # as a bearer token (RFC 9449 §7.2) ...
        (request(ME, token=token, scheme="Bearer", now=clock.now()), InvalidDPoPBinding),
        # ... even with a proof of the right key beside it
        (request(ME, key=key, token=token, scheme="Bearer", now=clock.now()), InvalidDPoPBinding),
        # with a proof of the thief's own key
        (request(ME, key=thief, token=token, now=clock.now()), InvalidDPoPBinding),
        # with no proof at all
        (request(ME, token=token, now=clock.now()), InvalidDPoPProof),
    ]
    for headers, error in cases:
        result = await auth.authenticate(headers)
        assert result.identity is None
        assert isinstance(result.error, error)
        with pytest.raises(error):
            await auth.require(headers)


async def test_a_bound_token_in_a_cookie_is_refused(clock: FrozenClock) -> None:
    auth = _authenticator("jwt", clock)
    _, token = await _bound(auth, clock)
    result = await auth.authenticate({"cookie": f"tok={token}"})
    assert result.identity is None
    assert isinstance(result.error, InvalidDPoPBinding)
    assert any("Max-Age=0" in v for _, v in result.set_headers)  # the cookie is cleared


async def test_a_captured_proof_cannot_be_replayed(mode: str, clock: FrozenClock) -> None:
    auth = _authenticator(mode, clock)
    key, token = await _bound(auth, clock)
    headers = request(ME, key=key, token=token, now=clock.now())
    assert (await auth.authenticate(headers)).identity is not None
    replay = await auth.authenticate(headers)
    assert replay.identity is None
    assert isinstance(replay.error, DPoPProofReplayed)


async def test_a_proof_for_another_token_or_request_is_refused(clock: FrozenClock) -> None:
    auth = _authenticator("jwt", clock)
    key, token = await _bound(auth, clock)
    _, other_token = await _bound(auth, clock)
    proof = make_proof(key, method="GET", url=ME, now=clock.now(), access_token=other_token)
    refused = await auth.authenticate(request(ME, token=token, proof=proof, now=clock.now()))
    assert isinstance(refused.error, InvalidDPoPProof)
    assert "ath" in refused.error.message
    post = make_proof(key, method="POST", url=ME, now=clock.now(), access_token=token)
    refused = await auth.authenticate(request(ME, token=token, proof=post, now=clock.now()))
    assert isinstance(refused.error, InvalidDPoPProof)
    assert "htm" in refused.error.message


async def test_a_stale_proof_is_refused(clock: FrozenClock) -> None:
    auth = _authenticator("session", clock)
    key, token = await _bound(auth, clock)
    old = make_proof(key, method="GET", url=ME, now=clock.now() - 120, access_token=token)
    result = await auth.authenticate(request(ME, token=token, proof=old, now=clock.now()))
    assert isinstance(result.error, InvalidDPoPProof)
    assert "iat" in result.error.message


async def test_an_unbound_token_with_the_dpop_scheme_is_refused(clock: FrozenClock) -> None:
    auth = _authenticator("jwt", clock)
    token = (await auth.login("alice", headers={})).token
    result = await auth.authenticate(
        request(ME, key=Key.generate("ES256"), token=token, now=clock.now())
    )
    assert isinstance(result.error, InvalidDPoPBinding)


async def test_a_replay_cache_outage_fails_closed(clock: FrozenClock) -> None:
    auth = _authenticator("jwt", clock, store=ReplayDown())
    with pytest.raises(StoreUnavailable):
        await auth.login(
            "alice",
            headers=request(LOGIN, method="POST", key=Key.generate("ES256"), now=clock.now()),
        )


async def test_required_policy_refuses_unbound_bearer_tokens(clock: FrozenClock) -> None:
    open_auth = _authenticator("jwt", clock)
    token = (await open_auth.login("alice", headers={})).token
    strict = Authenticator(
        open_auth.strategy,
        (DPoPTransport(MemoryStore(), policy=DPoPPolicy(required=True), clock=clock),
         BearerTransport()),
    )
    result = await strict.authenticate({"authorization": f"Bearer {token}"})
    assert isinstance(result.error, DPoPRequired)


async def test_nonces_are_asked_for_and_handed_out(clock: FrozenClock) -> None:
    nonces = DPoPNonces("n" * 32)
    auth = _authenticator("jwt", clock, nonces=nonces)
    key = Key.generate("ES256")
    with pytest.raises(UseDPoPNonce) as info:
        await auth.login("alice", headers=request(LOGIN, method="POST", key=key, now=clock.now()))
    nonce = info.value.nonce
    assert nonce == nonces.current(clock.now())
    result = await auth.login(
        "alice", headers=request(LOGIN, method="POST", key=key, now=clock.now(), nonce=nonce)
    )
    ok = await auth.authenticate(
        request(ME, key=key, token=result.token, now=clock.now(), nonce=nonce)
    )
    assert ok.identity is not None
    assert ("dpop-nonce", nonce) in ok.set_headers


# -- refresh (hybrid) -------------------------------------------------------------------------

REFRESH = f"https://{HOST}/api/refresh"


async def test_a_bound_refresh_token_needs_its_key(clock: FrozenClock) -> None:
    auth = _authenticator("hybrid", clock)
    key = Key.generate("ES256")
    login = await auth.login(
        "alice", headers=request(LOGIN, method="POST", key=key, now=clock.now())
    )
    refresh_token = login.refresh_token or ""
    thief = Key.generate("ES256")
    for headers in ({}, request(REFRESH, method="POST", key=thief, now=clock.now())):
        with pytest.raises(InvalidDPoPBinding) as info:
            await auth.refresh_bearer(refresh_token, headers=headers)
        assert info.value.algs  # the transport's challenge, not the strategy's bare error
    # The thief's attempts rotated and revoked nothing: the owner refreshes as usual.
    renewed = await auth.refresh_bearer(
        refresh_token, headers=request(REFRESH, method="POST", key=key, now=clock.now())
    )
    assert (renewed.token_type, renewed.jkt) == ("DPoP", key.thumbprint())
    assert unverified_parts(renewed.token)[1]["cnf"] == {"jkt": key.thumbprint()}
    ok = await auth.authenticate(request(ME, key=key, token=renewed.token, now=clock.now()))
    assert ok.identity is not None


async def test_an_unbound_session_is_bound_by_its_first_proof(clock: FrozenClock) -> None:
    auth = _authenticator("hybrid", clock)
    login = await auth.login("alice", headers={})
    assert login.token_type == "Bearer"
    key = Key.generate("ES256")
    renewed = await auth.refresh_bearer(
        login.refresh_token or "",
        headers=request(REFRESH, method="POST", key=key, now=clock.now()),
    )
    assert (renewed.token_type, renewed.jkt) == ("DPoP", key.thumbprint())
    with pytest.raises(InvalidDPoPBinding):
        await auth.refresh_bearer(renewed.refresh_token or "", headers={})


async def test_the_browser_refresh_of_a_bound_session_is_refused(clock: FrozenClock) -> None:
    auth = _authenticator("hybrid", clock)
    unbound = await auth.login("alice", headers={})
    # A browser sends the access cookie beside the refresh cookie (the refresh binding).
    pair = f"acc={unbound.token}; coatcheck_refresh={unbound.refresh_token}"
    issued, _ = await auth.refresh({"cookie": pair})
    assert issued is not None  # the control: an unbound session refreshes by cookie
    key = Key.generate("ES256")
    bound = await auth.login(
        "alice", headers=request(LOGIN, method="POST", key=key, now=clock.now())
    )
    issued, set_headers = await auth.refresh(
        {"cookie": f"acc={bound.token}; coatcheck_refresh={bound.refresh_token}"}
    )
    assert issued is None
    assert len(set_headers) == 2  # both cookies cleared


async def test_refresh_bearer_needs_hybrid_mode(clock: FrozenClock) -> None:
    with pytest.raises(ConfigurationError):
        await _authenticator("jwt", clock).refresh_bearer("x", headers={})


# -- logout ---------------------------------------------------------------------------------


async def test_a_stolen_bound_token_cannot_log_its_owner_out(clock: FrozenClock) -> None:
    auth = _authenticator("session", clock)
    key, token = await _bound(auth, clock)
    await auth.logout(request(ME, token=token, scheme="Bearer", now=clock.now()))
    await auth.logout(request(ME, key=Key.generate("ES256"), token=token, now=clock.now()))
    still = await auth.authenticate(request(ME, key=key, token=token, now=clock.now()))
    assert still.identity is not None
    await auth.logout(request(ME, method="POST", key=key, token=token, now=clock.now())
                      | {":method": "POST"})
    gone = await auth.authenticate(request(ME, key=key, token=token, now=clock.now()))
    assert gone.identity is None
    assert not isinstance(gone.error, InvalidDPoPProof)


async def test_bearer_logout_still_works_for_unbound_tokens(clock: FrozenClock) -> None:
    auth = _authenticator("session", clock)
    token = (await auth.login("alice", headers={})).token
    await auth.logout({"authorization": f"Bearer {token}"})
    with pytest.raises(InvalidCredentials):
        await auth.require({"authorization": f"Bearer {token}"})


# -- the transport and its policy -----------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("DPoP abc.def-ghi_", "abc.def-ghi_"),
        ("dpop abc", "abc"),
        ("DPOP  abc ", "abc"),
        ("Bearer abc", None),
        ("DPoP", None),
        ("DPoP a b", None),
        ("DPoP é", None),
        ("DPoP " + "a" * 9000, None),
    ],
)
def test_transport_reads_only_the_dpop_scheme(header: str, token: str | None) -> None:
    assert DPoPTransport(MemoryStore()).read({"authorization": header}) == token


def test_transport_needs_a_replay_cache() -> None:
    with pytest.raises(ConfigurationError, match="replay"):
        DPoPTransport(object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "url"),
    [
        ({"host": "a.example", ":scheme": "https", ":path": "/x"}, "https://a.example/x"),
        ({"host": "a.example:8443", ":scheme": "wss", ":path": "/ws"}, "https://a.example:8443/ws"),
        ({"host": "a.example", ":scheme": "http", ":path": "/caf\xe9 x"},
         "http://a.example/caf%E9%20x"),
        ({"host": "a.example", ":scheme": "gopher", ":path": "/x"}, None),
        ({":scheme": "https", ":path": "/x"}, None),
        ({"host": "a.example", ":scheme": "https"}, None),
        ({"host": "a.example", ":scheme": "https", ":path": "x"}, None),
        ({"host": "a.example", ":scheme": "https", ":path": "/\u20ac"}, None),
    ],
)
def test_request_url_from_the_pseudo_headers(headers: dict[str, str], url: str | None) -> None:
    assert DPoPTransport(MemoryStore()).request_url(headers) == url


def test_public_origin_wins_over_the_request(clock: FrozenClock) -> None:
    policy = DPoPPolicy(public_origin="HTTPS://API.Example.com:443/")
    assert policy.public_origin == "https://api.example.com"
    transport = DPoPTransport(MemoryStore(), policy=policy)
    headers = {"host": "10.0.0.5:8000", ":scheme": "http", ":path": "/api/me"}
    assert transport.request_url(headers) == "https://api.example.com/api/me"


@pytest.mark.parametrize(
    "options",
    [
        {"algorithms": ()},
        {"algorithms": ("HS256",)},
        {"algorithms": ("none",)},
        {"algorithms": "ES256"},
        {"max_age": timedelta(0)},
        {"leeway": timedelta(minutes=10)},
        {"public_origin": "https://example.com/path"},
        {"public_origin": "ftp://example.com"},
        {"public_origin": "example.com"},
        {"key_cache": -1},
    ],
)
def test_bad_policies_fail_at_start_up(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        DPoPPolicy(**options)


@pytest.mark.parametrize(
    ("claims", "jkt"),
    [
        ({}, None),
        ({"cnf": {"jkt": "abc"}}, "abc"),
        ({"cnf": {"jkt": "abc", "x5t#S256": "y"}}, ""),
        ({"cnf": {"x5t#S256": "y"}}, ""),
        ({"cnf": "abc"}, ""),
        ({"cnf": {"jkt": ""}}, ""),
        ({"cnf": None}, None),
    ],
)
def test_key_binding_fails_closed(claims: dict[str, Any], jkt: str | None) -> None:
    assert key_binding(claims) == jkt




async def test_expired_bound_tokens_and_bound_refresh_tokens_cannot_log_out(
    clock: FrozenClock,
) -> None:
    auth = _authenticator("hybrid", clock)
    key = Key.generate("ES256")
    login = await auth.login(
        "alice", headers=request(LOGIN, method="POST", key=key, now=clock.now())
    )
    await auth.logout({"authorization": f"Bearer {login.refresh_token}"})
    clock.advance(3600)  # the access token has expired
    await auth.logout({"authorization": f"Bearer {login.token}"})
    renewed = await auth.refresh_bearer(
        login.refresh_token or "",
        headers=request(REFRESH, method="POST", key=key, now=clock.now()),
    )
    assert renewed.token_type == "DPoP"  # the session survived both attempts
    unbound = await auth.login("bob", headers={})
    await auth.logout({"authorization": f"Bearer {unbound.refresh_token}"})
    with pytest.raises(InvalidCredentials):
        await auth.refresh_bearer(unbound.refresh_token or "", headers={})
