"""Property tests for DPoP proofs: hostile bytes only ever make InvalidDPoPProof."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.errors import InvalidDPoPProof
from coatcheck.tokens import Key
from coatcheck.tokens.dpop import DPoPVerifier, make_proof, normalize_htu

from .conftest import NOW, b64, forge

URL = "https://api.example.com/api/me"
KEY = Key.generate("ES256")
VERIFIER = DPoPVerifier()
GOOD = make_proof(KEY, method="GET", url=URL, now=NOW, access_token="tok")
PROOF_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ,é"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


def _refused(proof: Any) -> None:
    # Nothing else may escape (a 5xx in an app), and nothing here can be a valid proof:
    # the ath of "tok" is never among the drawn values.
    with pytest.raises(InvalidDPoPProof):
        VERIFIER.verify(proof, method="GET", url=URL, now=NOW, access_token="tok")


@settings(max_examples=400)
@given(st.text(alphabet=PROOF_CHARS, max_size=600))
def test_random_text_is_refused_cleanly(text: str) -> None:
    _refused(text)


@settings(max_examples=400)
@given(st.data())
def test_changing_any_character_of_a_good_proof_is_refused(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(GOOD) - 1))
    char = data.draw(st.sampled_from(PROOF_CHARS).filter(lambda c: c != GOOD[index]))
    changed = GOOD[:index] + char + GOOD[index + 1 :]
    with pytest.raises(InvalidDPoPProof):
        VERIFIER.verify(changed, method="GET", url=URL, now=NOW, access_token="tok")


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from(["typ", "alg", "jwk", "kid", "crit", "x"]), json_values),
    st.dictionaries(st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce"]), json_values),
)
def test_signed_hostile_headers_and_claims_are_refused_cleanly(
    header: dict[str, Any], claims: dict[str, Any]
) -> None:
    # Signed by a real key, so the checks after the signature see the garbage too.
    _refused(forge(header, claims, KEY.sign))
    with_jwk = {**header, "typ": "dpop+jwt", "alg": "ES256",
                "jwk": {k: v for k, v in (KEY.public_jwk() or {}).items() if k in "kty crv x y"}}
    _refused(forge(with_jwk, claims, KEY.sign))


@settings(max_examples=300)
@given(json_values)
def test_any_jwk_value_is_refused_cleanly(jwk: Any) -> None:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    claims = {"jti": "x", "htm": "GET", "htu": URL, "iat": int(NOW), "ath": b64(b"x")}
    with pytest.raises(InvalidDPoPProof):
        VERIFIER.verify(forge(header, claims, KEY.sign), method="GET", url=URL, now=NOW,
                        access_token="tok")


uri_chars = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("é\x00\n"),
    max_size=80,
)


@settings(max_examples=500)
@given(st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", ""]), uri_chars)
def test_normalize_htu_never_raises_and_is_idempotent(prefix: str, rest: str) -> None:
    normal = normalize_htu(prefix + rest)
    if normal is not None:
        assert normalize_htu(normal) == normal
        assert "?" not in normal
        assert "#" not in normal
        assert normal.startswith(("http://", "https://"))
