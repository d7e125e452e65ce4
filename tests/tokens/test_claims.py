"""validate_claims: a table of (claims, policy) -> outcome at a fixed time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from coatcheck.errors import (
    ClaimError,
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidIssuer,
    MissingClaim,
)
from coatcheck.policies import ClaimsPolicy
from coatcheck.tokens import validate_claims

NOW = 1_000_000.0
BASE = {"iat": NOW, "exp": NOW + 60, "jti": "j"}
AUD = ClaimsPolicy(audience="api")
ISS = ClaimsPolicy(issuer="me")
LOOSE = ClaimsPolicy(require=())

CASES: list[tuple[dict[str, Any], ClaimsPolicy, type[Exception] | None, str]] = [
    ({}, ClaimsPolicy(), MissingClaim, "exp"),
    ({"exp": NOW + 1, "iat": NOW}, ClaimsPolicy(), MissingClaim, "jti"),
    (BASE, ClaimsPolicy(), None, ""),
    ({**BASE, "exp": NOW - 10}, ClaimsPolicy(), ExpiredToken, "exp"),
    ({**BASE, "exp": NOW - 9.9}, ClaimsPolicy(), None, ""),
    ({**BASE, "exp": True}, ClaimsPolicy(), ClaimError, "exp"),
    ({**BASE, "exp": "9999999999"}, ClaimsPolicy(), ClaimError, "exp"),
    ({**BASE, "exp": None}, ClaimsPolicy(), ClaimError, "exp"),
    ({**BASE, "nbf": NOW + 10}, ClaimsPolicy(), None, ""),
    ({**BASE, "nbf": NOW + 10.5}, ClaimsPolicy(), ImmatureToken, "nbf"),
    ({**BASE, "nbf": [1]}, ClaimsPolicy(), ClaimError, "nbf"),
    ({**BASE, "iat": NOW + 11}, ClaimsPolicy(), ImmatureToken, "iat"),
    ({**BASE, "iat": False}, ClaimsPolicy(), ClaimError, "iat"),
    ({**BASE, "aud": "api"}, AUD, None, ""),
    ({**BASE, "aud": ["x", "api"]}, AUD, None, ""),
    ({**BASE, "aud": ["x"]}, AUD, InvalidAudience, "aud"),
    ({**BASE, "aud": "apix"}, AUD, InvalidAudience, "aud"),
    ({**BASE, "aud": [1]}, AUD, ClaimError, "aud"),
    ({**BASE, "aud": {"api": 1}}, AUD, ClaimError, "aud"),
    (BASE, AUD, MissingClaim, "aud"),
    ({**BASE, "aud": "api"}, ClaimsPolicy(), InvalidAudience, "aud"),  # RFC 7519 §4.1.3
    ({**BASE, "iss": "me"}, ISS, None, ""),
    ({**BASE, "iss": "you"}, ISS, InvalidIssuer, "iss"),
    (BASE, ISS, MissingClaim, "iss"),
    ({**BASE, "iss": 5}, ClaimsPolicy(), ClaimError, "iss"),
    ({**BASE, "sub": 5}, ClaimsPolicy(), ClaimError, "sub"),
    ({"sub": "x"}, LOOSE, None, ""),
    ({"exp": NOW - 1}, ClaimsPolicy(require=(), leeway=timedelta(0)), ExpiredToken, "exp"),
]


@pytest.mark.parametrize(("claims", "policy", "error", "claim"), CASES)
def test_claims(
    claims: dict[str, Any], policy: ClaimsPolicy, error: type[Exception] | None, claim: str
) -> None:
    if error is None:
        assert validate_claims(claims, policy, NOW) is None
        return
    with pytest.raises(ClaimError) as caught:
        validate_claims(claims, policy, NOW)
    assert type(caught.value) is error
    assert caught.value.claim == claim
