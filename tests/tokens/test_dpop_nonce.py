"""Stateless DPoP nonces: rotation by time, by secret, and nothing else accepted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coatcheck.errors import ConfigurationError
from coatcheck.secret import SecretRing
from coatcheck.tokens.dpop_nonce import DPoPNonces

from .conftest import NOW

OLD, NEW = "o" * 32, "n" * 32


def test_a_nonce_lives_its_period_and_the_next() -> None:
    nonces = DPoPNonces(NEW, lifetime=timedelta(minutes=5))
    start = (NOW // 300) * 300
    nonce = nonces.current(start)
    assert nonces.current(start + 299) == nonce
    assert nonces.check(nonce, start + 299)
    assert nonces.current(start + 300) != nonce
    assert nonces.check(nonce, start + 599)  # the period after: still accepted
    assert not nonces.check(nonce, start + 600)  # two periods on: refused
    assert not nonces.check(nonce, start - 1)  # from the future: refused


def test_nonces_fit_rfc_9449_syntax() -> None:
    # §8.1: nonce = 1*NQCHAR, printable ASCII without '"' and '\'.
    nonce = DPoPNonces(NEW).current(NOW)
    assert nonce.isascii()
    assert all(0x21 <= ord(c) <= 0x7E and c not in '"\\' for c in nonce)


def test_secret_rotation_keeps_nonces_of_the_old_secret() -> None:
    before = DPoPNonces(OLD)
    after = DPoPNonces(SecretRing([OLD, NEW]))
    nonce = before.current(NOW)
    assert after.check(nonce, NOW)
    assert after.current(NOW) != nonce  # the newest secret makes new ones
    assert not DPoPNonces(NEW).check(nonce, NOW)


@pytest.mark.parametrize(
    "nonce", [None, 1, "", "short", "x" * 32, "A" * 31 + "=", "A" * 33, ["a"]]
)
def test_foreign_values_are_refused(nonce: object) -> None:
    assert not DPoPNonces(NEW).check(nonce, NOW)


def test_a_changed_nonce_is_refused() -> None:
    nonces = DPoPNonces(NEW)
    nonce = nonces.current(NOW)
    flipped = nonce[:-1] + ("A" if nonce[-1] != "A" else "B")
    assert not nonces.check(flipped, NOW)


def test_bad_configuration_fails_at_start_up() -> None:
    with pytest.raises(ConfigurationError):
        DPoPNonces("too short")
    with pytest.raises(ConfigurationError):
        DPoPNonces(NEW, lifetime=timedelta(milliseconds=10))
