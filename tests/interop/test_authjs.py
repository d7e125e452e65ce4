"""AuthJSDecoder and friends without Node: malformed input, configuration, chunks."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jwe
from joserfc.jwk import OctKey

from coatcheck.clock import FrozenClock
from coatcheck.errors import (
    ConfigurationError,
    ImmatureToken,
    MalformedToken,
    MissingClaim,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
)
from coatcheck.interop.authjs import (
    AUTHJS_COOKIE,
    AuthJSDecoder,
    chunk_token,
    derive_authjs_key,
    encode_authjs,
    join_chunks,
    read_authjs_token,
)

SECRET = "secret-for-unit-tests-0123456789abcdef"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _raw_token(header: dict[str, object], claims: dict[str, object], key: bytes) -> str:
    return jwe.encrypt_compact(header, json.dumps(claims).encode(), OctKey.import_key(key),
                               algorithms=["dir", str(header["enc"])])


def test_round_trip_and_repr(clock: FrozenClock) -> None:
    token = encode_authjs({"sub": "u"}, SECRET, clock=clock, max_age=60)
    decoder = AuthJSDecoder(SECRET, clock=clock)
    assert decoder.decode(token)["sub"] == "u"
    assert decoder.cookie_name == AUTHJS_COOKIE
    assert SECRET not in repr(decoder)


@pytest.mark.parametrize("secrets", [[], [""], ""])
def test_needs_a_secret(secrets: list[str] | str) -> None:
    with pytest.raises(ConfigurationError):
        AuthJSDecoder(secrets)


@pytest.mark.parametrize(
    "token",
    ["", "a.b.c", "a.b.c.d.e", "!!!.x.y.z.w", _b64({"alg": "dir"})[:-1] + "*....", "x" * 200_000],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(MalformedToken):
        AuthJSDecoder(SECRET).decode(token)


def test_refuses_other_algorithms_and_headers() -> None:
    decoder = AuthJSDecoder(SECRET)
    rsa = _b64({"alg": "RSA-OAEP", "enc": "A256GCM"}) + ".a.b.c.d"
    with pytest.raises(UnsupportedAlgorithm):
        decoder.decode(rsa)
    zipped = _b64({"alg": "dir", "enc": "A256GCM", "zip": "DEF"}) + ".a.b.c.d"
    with pytest.raises(UnsupportedHeader):
        decoder.decode(zipped)
    unknown = _b64({"alg": "dir", "enc": "A256GCM", "kid": "nope"}) + ".a.b.c.d"
    with pytest.raises(UnknownKey):
        decoder.decode(unknown)


def test_token_without_kid_uses_the_first_secret(clock: FrozenClock) -> None:
    key = derive_authjs_key(SECRET, salt=AUTHJS_COOKIE)
    claims = {"sub": "u", "exp": clock.now() + 60}
    token = _raw_token({"alg": "dir", "enc": "A256CBC-HS512"}, claims, key)
    assert AuthJSDecoder([SECRET, "other"], clock=clock).decode(token)["sub"] == "u"
    with pytest.raises(Exception, match="decrypt"):
        AuthJSDecoder(["other", SECRET], clock=clock).decode(token)


def test_exp_is_required_and_nbf_checked(clock: FrozenClock) -> None:
    key = derive_authjs_key(SECRET, salt=AUTHJS_COOKIE, enc="A256GCM")
    no_exp = _raw_token({"alg": "dir", "enc": "A256GCM"}, {"sub": "u"}, key)
    with pytest.raises(MissingClaim):
        AuthJSDecoder(SECRET, clock=clock).decode(no_exp)
    future = _raw_token({"alg": "dir", "enc": "A256GCM"},
                        {"sub": "u", "exp": clock.now() + 600, "nbf": clock.now() + 16}, key)
    with pytest.raises(ImmatureToken):
        AuthJSDecoder(SECRET, clock=clock).decode(future)
    bad_type = _raw_token({"alg": "dir", "enc": "A256GCM"}, {"exp": "soon"}, key)
    with pytest.raises(MalformedToken):
        AuthJSDecoder(SECRET, clock=clock).decode(bad_type)


def test_join_chunks() -> None:
    assert join_chunks({"authjs.session-token.1": "b", "authjs.session-token.0": "a"},
                       AUTHJS_COOKIE) == "ab"
    assert join_chunks({"authjs.session-token": "whole", "authjs.session-token.0": "x"},
                       AUTHJS_COOKIE) == "whole"
    # only numeric suffixes count (Auth.js itself takes any name with the prefix)
    assert join_chunks({"authjs.session-token-evil": "x"}, AUTHJS_COOKIE) is None
    assert join_chunks({"authjs.session-token.x": "x"}, AUTHJS_COOKIE) is None
    assert join_chunks({}, AUTHJS_COOKIE) is None
    many = {f"authjs.session-token.{i}": "x" for i in range(40)}
    assert join_chunks(many, AUTHJS_COOKIE) is None


def test_chunk_token_sizes() -> None:
    assert chunk_token("abc", "n") == [("n", "abc")]
    chunks = chunk_token("x" * 8000, "n")
    assert [name for name, _ in chunks] == ["n.0", "n.1", "n.2"]
    assert [len(v) for _, v in chunks] == [3936, 3936, 128]


def test_read_authjs_token() -> None:
    assert read_authjs_token({}) is None
    assert read_authjs_token({"authorization": "Basic abc"}) is None
    assert read_authjs_token({"authorization": "bearer a%2Eb"}) == "a.b"
    assert read_authjs_token({"authorization": "Bearer %ff"}) is None
    both = {"cookie": "authjs.session-token=t", "authorization": "Bearer x"}
    assert read_authjs_token(both) == "t"


def test_derive_refuses_unknown_enc() -> None:
    with pytest.raises(ConfigurationError):
        derive_authjs_key(SECRET, salt="x", enc="A128GCM")
    with pytest.raises(ConfigurationError):
        derive_authjs_key(SECRET, salt="", enc="A256CBC-HS512", version=4)
