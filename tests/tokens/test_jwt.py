"""JWTCodec and the conveniences: what encode adds, what decode returns, arbitrary payloads."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import coatcheck.tokens as tokens
from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, InputError, MalformedToken, TokenError
from coatcheck.policies import ClaimsPolicy
from coatcheck.tokens import (
    JWTCodec,
    Key,
    KeyRing,
    _codec,
    decode_jwt,
    encode_jwt,
    unverified_header,
    unverified_parts,
)

from .conftest import NOW, forge


def test_encode_adds_registered_claims(hs_key: Key) -> None:
    clock = FrozenClock(NOW)
    codec = JWTCodec(hs_key, policy=ClaimsPolicy(issuer="me", audience="api"), clock=clock)
    first, second = codec.encode({"sub": "a"}), codec.encode({"sub": "a"}, ttl=5)
    one, two = codec.decode(first), codec.decode(second)
    assert one["iat"] == int(NOW)
    assert one["exp"] == int(NOW) + 900
    assert two["exp"] == int(NOW) + 5
    assert one["iss"] == "me"
    assert one["aud"] == "api"
    assert len(one["jti"]) == 22
    assert one["jti"] != two["jti"]
    header, claims = unverified_parts(first)
    assert header == {"alg": "HS256", "kid": hs_key.kid, "typ": "JWT"}
    assert claims == one
    assert unverified_header(first) == header
    mine = {"exp": int(NOW) + 7, "jti": "mine", "aud": ["api", "x"]}
    given_claims = codec.decode(codec.encode(mine))
    assert given_claims["exp"] == int(NOW) + 7
    assert given_claims["jti"] == "mine"


def test_decode_complete(es_key: Key) -> None:
    codec = JWTCodec(KeyRing([Key.generate("ES256"), es_key]), clock=FrozenClock(NOW))
    result = codec.decode_complete(codec.encode({"sub": "a"}))
    assert result.key is es_key
    assert result.header["kid"] == es_key.kid
    assert result.claims["sub"] == "a"
    result.header["alg"] = "none"  # a copy: the verifier's cache is untouched
    assert codec.decode_complete(codec.encode({})).header["alg"] == "ES256"


def test_conveniences(ed_key: Key) -> None:
    clock = FrozenClock(NOW)
    token = encode_jwt({"sub": "a"}, ed_key, clock=clock)
    assert decode_jwt(token, [ed_key], algorithms=["EdDSA"], clock=clock)["sub"] == "a"


def test_verify_only_ring_cannot_encode(es_key: Key) -> None:
    public = Key.from_jwk(es_key.public_jwk())  # type: ignore[arg-type]
    codec = JWTCodec(public, clock=FrozenClock(NOW))
    assert codec.decode(JWTCodec(es_key, clock=FrozenClock(NOW)).encode({}))
    with pytest.raises(ConfigurationError):
        codec.encode({})
    with pytest.raises(ConfigurationError):
        JWTCodec(Key.generate("dir"))  # no JWS algorithm at all


# (orjson writes NaN as null, so NaN is not in this list.)
@pytest.mark.parametrize("claims", [{"x": object()}, {1: "a"}, {"x": b"bytes"}])
def test_unserialisable_claims(hs_key: Key, claims: dict[Any, Any]) -> None:
    with pytest.raises(InputError):
        JWTCodec(hs_key).encode(claims)


@pytest.mark.parametrize("bad", ["", "a.b", "a.b.c", "é.e.e", "x" * 9000, 5])
def test_unverified_parts_refuses_garbage(bad: Any) -> None:
    with pytest.raises(MalformedToken):
        unverified_parts(bad)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=80) | _json.map(lambda v: json.dumps(v).encode()))
def test_signed_arbitrary_payload_only_raises_token_errors(payload: bytes) -> None:
    key = Key.from_secret(b"k" * 32, kid="k")
    codec = JWTCodec(key, policy=ClaimsPolicy(require=()), clock=FrozenClock(NOW))
    token = forge({"alg": "HS256", "kid": "k"}, payload, key.sign)
    try:
        claims = codec.decode(token)
    except TokenError:
        return
    assert claims == json.loads(payload)


@settings(max_examples=200, deadline=None)
@given(value=st.dictionaries(st.text(max_size=6), _json, max_size=5))
def test_orjson_and_stdlib_paths_agree(value: dict[str, Any]) -> None:
    compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw in (json.dumps(value).encode(), compact.encode()):
        fast = _codec.loads_object(raw)
        saved = _codec._fast_loads
        _codec._fast_loads = None
        try:
            assert _codec._slow_loads(raw) == fast == json.loads(raw)
        finally:
            _codec._fast_loads = saved


def test_public_names_sorted_and_complete() -> None:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    def rank(name: str) -> tuple[bool, bool, str]:
        return (not name.isupper(), not name[0].isupper(), name)

    assert tokens.__all__ == sorted(tokens.__all__, key=rank)
    exported = {name for name in dir(tokens) if not name.startswith("_")}
    # Submodules show up once imported (tokens.dpop by the auth package, for one).
    modules = {name for name in exported if isinstance(getattr(tokens, name), ModuleType)}
    modules.add("annotations")
    assert exported - modules == set(tokens.__all__)


def test_the_header_cache_is_sized_or_off() -> None:
    key = Key.generate("HS256")
    token = JWTCodec(key).encode({"sub": "u1"})
    for size in (0, 1, 64):
        codec = JWTCodec(key, header_cache_size=size)
        assert codec.decode(token)["sub"] == "u1"
        assert codec.decode(token)["sub"] == "u1"
        cache = codec._verifier._cache
        assert (cache is None) == (size == 0)
        if cache is not None:
            assert cache.cache_info()[:2] == (1, 1)
    with pytest.raises(ConfigurationError):
        JWTCodec(key, header_cache_size=-1)
