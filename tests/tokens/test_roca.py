"""The ROCA fingerprint (CVE-2017-15361): moduli built the way Infineon's RSALib built them
are found, keys from a sound generator are not, and a key carrying it is refused at load.

The vulnerable moduli are made here from the published structure (p = k·M + 65537^a mod M,
M the product of the first 126 primes for 2048-bit keys), with real primes where a private
key is needed. Miller-Rabin below only builds test data; coatcheck never tests primality.
"""

from __future__ import annotations

import json
import math
import random

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.errors import VulnerableKey
from coatcheck.tokens import Key, KeyRing
from coatcheck.tokens._roca import has_roca_fingerprint

from .conftest import b64

PRIMES = [p for p in range(2, 800) if all(p % d for d in range(2, math.isqrt(p) + 1))][:126]
M = math.prod(PRIMES)
ORDER = math.lcm(*(p - 1 for p in PRIMES))  # any exponent mod this gives every residue


def _probably_prime(n: int, rng: random.Random) -> bool:
    if n < 2 or any(n % p == 0 for p in PRIMES if p < n):
        return n in PRIMES
    d, s = n - 1, 0
    while not d & 1:
        d, s = d >> 1, s + 1
    for _ in range(24):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _roca_candidate(rng: random.Random, bits: int) -> int:
    k = rng.getrandbits(bits - M.bit_length())
    return k * M + pow(65537, rng.randrange(ORDER), M)


def _roca_prime(rng: random.Random, bits: int) -> int:
    while True:
        candidate = _roca_candidate(rng, bits)
        if candidate.bit_length() == bits and _probably_prime(candidate, rng):
            return candidate


@pytest.fixture(scope="module")
def roca_private_key() -> rsa.RSAPrivateKey:
    rng = random.Random(15361)
    e = 65537
    while True:
        p, q = _roca_prime(rng, 1024), _roca_prime(rng, 1024)
        if (p * q).bit_length() == 2048 and math.gcd(e, (p - 1) * (q - 1)) == 1:
            break
    d = pow(e, -1, math.lcm(p - 1, q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, p * q)
    )
    return numbers.private_key()


def _int(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def test_roca_keys_are_refused_in_every_form(roca_private_key: rsa.RSAPrivateKey) -> None:
    public = roca_private_key.public_key()
    assert has_roca_fingerprint(public.public_numbers().n)
    pem = roca_private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    numbers = public.public_numbers()
    jwk = {"kty": "RSA", "kid": "infineon", "n": _int(numbers.n), "e": _int(numbers.e)}
    attempts = [
        lambda: Key.from_pem(pem, alg="RS256"),
        lambda: Key.from_pem(public_pem, alg="PS256"),
        lambda: Key.from_jwk(jwk, alg="RS256"),
        lambda: Key.from_public_jwk(jwk, alg="RSA-OAEP-256"),
        lambda: KeyRing.from_jwks(json.dumps({"keys": [jwk]})),
    ]
    for attempt in attempts:
        with pytest.raises(VulnerableKey) as caught:
            attempt()
        assert caught.value.code == "vulnerable_key"
        assert "ROCA" in caught.value.message
        assert "CVE-2017-15361" in caught.value.message
    with pytest.raises(VulnerableKey) as caught:
        KeyRing.from_jwks({"keys": [jwk]})
    assert caught.value.kid == "infineon"
    assert "keys[0]" in caught.value.message


def test_sound_keys_are_not_flagged() -> None:
    for _ in range(4):
        for bits in (2048, 3072):
            key = rsa.generate_private_key(65537, bits)
            assert not has_roca_fingerprint(key.public_key().public_numbers().n)
    assert Key.generate("RS256").alg == "RS256"


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**64))
def test_every_modulus_of_the_roca_form_is_flagged(seed: int) -> None:
    """The structure alone decides: any product of two numbers of RSALib's form, prime
    or not, carries the fingerprint (so no real ROCA modulus can slip through)."""
    rng = random.Random(seed)
    n = _roca_candidate(rng, 1024) * _roca_candidate(rng, 1024)
    assert has_roca_fingerprint(n)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**64), prime=st.sampled_from([p for p in PRIMES if p > 2]))
def test_moving_the_modulus_off_the_subgroup_clears_it(seed: int, prime: int) -> None:
    """Multiplying by a residue outside 65537's subgroup mod one tested prime breaks the
    fingerprint; the test really looks at every prime it claims to."""
    rng = random.Random(seed)
    n = _roca_candidate(rng, 1024) * _roca_candidate(rng, 1024)
    subgroup = {pow(65537, i, prime) for i in range(prime)}
    outside = [r for r in range(1, prime) if r not in subgroup]
    if not outside:
        return  # 65537 generates everything mod this prime: nothing to break here
    # Choose t with t ≡ outside (mod prime) and t ≡ 1 modulo every other tested prime.
    rest = M // prime
    t = (outside[0] * rest * pow(rest, -1, prime) + prime * pow(prime, -1, rest)) % M
    assert not has_roca_fingerprint(n * t)
