"""DBSC proofs: real Chromium proofs as vectors, proofs from the independent test client,
and every way a hostile proof is refused (always InvalidDbscProof, never anything else)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.errors import ConfigurationError, InvalidDbscProof
from coatcheck.tokens import Key
from coatcheck.tokens.dbsc import (
    DBSC_ALGORITHMS,
    device_key,
    make_proof,
    public_members,
    verify_refresh_proof,
    verify_registration_proof,
)

from ..dbsc_client import DeviceKey, b64

VECTORS = json.loads((Path(__file__).parent / "vectors" / "chromium_dbsc.json").read_text())


def test_chromium_registration_and_refresh_proofs_verify() -> None:
    registration = verify_registration_proof(VECTORS["registration"]["proof"])
    assert registration.jti == VECTORS["registration"]["challenge"]
    assert registration.alg == "ES256"
    assert set(registration.jwk) == {"kty", "crv", "x", "y"}
    assert registration.jkt == Key.from_jwk(dict(registration.jwk)).thumbprint()
    refresh = verify_refresh_proof(
        VECTORS["refresh"]["proof"], key=registration.key, jwk=registration.jwk
    )
    assert refresh.jti == VECTORS["refresh"]["challenge"]
    assert refresh.jkt == registration.jkt


def test_a_chromium_refresh_proof_fails_with_another_key() -> None:
    other = DeviceKey("ES256")
    key = device_key(other.jwk, "ES256")
    with pytest.raises(InvalidDbscProof, match="does not verify"):
        verify_refresh_proof(VECTORS["refresh"]["proof"], key=key, jwk=other.jwk)


@pytest.mark.parametrize("alg", sorted(DBSC_ALGORITHMS))
def test_proofs_of_the_independent_client(alg: str) -> None:
    device = DeviceKey(alg)
    proof = verify_registration_proof(device.proof("abc", with_jwk=True, authorization="code"))
    assert (proof.jti, proof.alg, proof.authorization) == ("abc", alg, "code")
    refreshed = verify_refresh_proof(device.proof("def", with_jwk=False), key=proof.key,
                                     jwk=proof.jwk)  # fmt: skip
    assert refreshed.jti == "def"


@pytest.mark.parametrize("alg", sorted(DBSC_ALGORITHMS))
def test_make_proof_round_trip(alg: str) -> None:
    key = Key.generate(alg)
    registration = verify_registration_proof(make_proof(key, "c1", registration=True))
    assert registration.jkt == key.thumbprint()
    refresh = verify_refresh_proof(
        make_proof(key, "c2", registration=False), key=registration.key, jwk=registration.jwk
    )
    assert refresh.jti == "c2"


def test_make_proof_refuses_other_keys() -> None:
    with pytest.raises(ConfigurationError):
        make_proof(Key.generate("HS256"), "c", registration=True)


def _forge(header: dict[str, Any], payload: dict[str, Any], signer: DeviceKey) -> str:
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    return signing_input + "." + b64(signer.sign(signing_input.encode()))


ES = DeviceKey("ES256")
RS = DeviceKey("RS256")
GOOD_HEADER = {"alg": "ES256", "typ": "dbsc+jwt", "jwk": ES.jwk}


def _rsa_jwk_of(bits: int, e: int = 65537) -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    numbers = rsa.generate_private_key(public_exponent=e, key_size=bits).public_key()
    n = numbers.public_numbers().n
    return {"kty": "RSA", "n": b64(n.to_bytes((n.bit_length() + 7) // 8, "big")),
            "e": b64(e.to_bytes(3, "big"))}  # fmt: skip


HOSTILE: dict[str, str] = {
    "not three segments": "a.b",
    "empty": "",
    "non-ascii": "é.é.é",
    "huge": "a" * 5000 + ".b.c",
    "header not base64": "@@@.e30.AA",
    "header not json": b64(b"{nope") + ".e30.AA",
    "alg none": _forge({**GOOD_HEADER, "alg": "none"}, {"jti": "c"}, ES),
    "alg HS256": _forge({**GOOD_HEADER, "alg": "HS256"}, {"jti": "c"}, ES),
    "alg swapped to RS256": _forge({**GOOD_HEADER, "alg": "RS256"}, {"jti": "c"}, ES),
    "no typ": _forge({"alg": "ES256", "jwk": ES.jwk}, {"jti": "c"}, ES),
    "wrong typ": _forge({**GOOD_HEADER, "typ": "dpop+jwt"}, {"jti": "c"}, ES),
    "no jwk": _forge({"alg": "ES256", "typ": "dbsc+jwt"}, {"jti": "c"}, ES),
    "jwk not an object": _forge({**GOOD_HEADER, "jwk": "key"}, {"jti": "c"}, ES),
    "private jwk": _forge({**GOOD_HEADER, "jwk": {**ES.jwk, "d": ES.jwk["x"]}}, {"jti": "c"}, ES),
    "symmetric jwk": _forge({**GOOD_HEADER, "jwk": {"kty": "oct", "k": "AAAA"}}, {"jti": "c"}, ES),
    "another curve": _forge({**GOOD_HEADER, "jwk": {**ES.jwk, "crv": "P-384"}}, {"jti": "c"}, ES),
    "short coordinate": _forge({**GOOD_HEADER, "jwk": {**ES.jwk, "x": "AAAA"}}, {"jti": "c"}, ES),
    "point off the curve": _forge(
        {**GOOD_HEADER, "jwk": {**ES.jwk, "y": b64(b"\x01" * 32)}}, {"jti": "c"}, ES
    ),
    "signed by another key": _forge(
        {**GOOD_HEADER, "jwk": DeviceKey("ES256").jwk}, {"jti": "c"}, ES
    ),
    "rsa 1024": _forge(
        {"alg": "RS256", "typ": "dbsc+jwt", "jwk": _rsa_jwk_of(1024)}, {"jti": "c"}, RS
    ),
    "rsa even exponent": _forge(
        {"alg": "RS256", "typ": "dbsc+jwt", "jwk": {**RS.jwk, "e": b64(b"\x01\x00\x00\x02")}},
        {"jti": "c"},
        RS,
    ),
    "crit header": _forge({**GOOD_HEADER, "crit": ["exp"]}, {"jti": "c"}, ES),
    "jku header": _forge({**GOOD_HEADER, "jku": "https://evil.test/jwks"}, {"jti": "c"}, ES),
    "no jti": _forge(GOOD_HEADER, {}, ES),
    "jti not a string": _forge(GOOD_HEADER, {"jti": 7}, ES),
    "jti too long": _forge(GOOD_HEADER, {"jti": "c" * 600}, ES),
    "authorization not a string": _forge(GOOD_HEADER, {"jti": "c", "authorization": 1}, ES),
    "payload not an object": ".".join(
        [b64(json.dumps(GOOD_HEADER).encode()), b64(b"[1]"), b64(b"x" * 64)]
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_registration_proofs_are_refused(name: str) -> None:
    with pytest.raises(InvalidDbscProof):
        verify_registration_proof(HOSTILE[name])


def test_tampered_payload_and_signature_are_refused() -> None:
    good = ES.proof("c", with_jwk=True)
    head, payload, signature = good.split(".")
    for forged in (
        f"{head}.{b64(json.dumps({'jti': 'other'}).encode())}.{signature}",
        f"{head}.{payload}.{signature[:-2]}AA",
        f"{head}.{payload}.",
        f"{head}.{payload}.{b64(bytes(64))}",  # r = s = 0 (CVE-2022-21449)
    ):
        with pytest.raises(InvalidDbscProof):
            verify_registration_proof(forged)


def test_allow_list_narrows_the_algorithms() -> None:
    with pytest.raises(InvalidDbscProof):
        verify_registration_proof(RS.proof("c", with_jwk=True), algorithms=("ES256",))


def test_refresh_proof_must_use_the_stored_algorithm() -> None:
    stored = device_key(ES.jwk, "ES256")
    with pytest.raises(InvalidDbscProof):
        verify_refresh_proof(RS.proof("c", with_jwk=False), key=stored, jwk=ES.jwk)


def test_public_members_keep_only_the_key() -> None:
    extra = {**ES.jwk, "kid": "k", "use": "sig", "alg": "ES256", "ext": True}
    assert public_members(extra, "ES256") == ES.jwk
    with pytest.raises(InvalidDbscProof):
        public_members({**RS.jwk}, "ES256")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_only_ever_raises_invalid_proof(text: str) -> None:
    with contextlib.suppress(InvalidDbscProof):
        verify_registration_proof(text)
