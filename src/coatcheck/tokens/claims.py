"""JWT claims validation as a pure function of (claims, policy, now) (RFC 7519 §4.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import (
    ClaimError,
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidIssuer,
    MissingClaim,
)
from ..policies import ClaimsPolicy

__all__ = ["validate_claims"]

_STRING_CLAIMS = ("iss", "sub", "jti")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        if name in claims:
            raise ClaimError(f"'{name}' must be a NumericDate", claim=name)
        return None
    # bool is an int subclass; true is not a date (RFC 7519 §2 NumericDate).
    if type(value) is not int and type(value) is not float:
        raise ClaimError(f"'{name}' must be a NumericDate", claim=name)
    return value


def validate_claims(claims: Mapping[str, Any], policy: ClaimsPolicy, now: float) -> None:
    """Check registered claims against ``policy`` at time ``now`` (POSIX seconds).

    ``exp`` must be after ``now - leeway`` (§4.1.4), checked last so that
    :class:`ExpiredToken` implies every other check passed; ``nbf`` and ``iat`` must not be
    after ``now + leeway`` (§4.1.5, §4.1.6); ``iss`` must equal the policy's issuer and
    the policy's audience must be in ``aud`` (§4.1.3: a token that names an audience
    is refused by a verifier that has none). Claims in ``policy.require`` must exist.

    :raises MissingClaim: a required claim is absent.
    :raises ExpiredToken: ``exp`` has passed.
    :raises ImmatureToken: ``nbf`` or ``iat`` lies in the future.
    :raises InvalidIssuer: ``iss`` does not match.
    :raises InvalidAudience: ``aud`` does not match.
    :raises ClaimError: a registered claim has the wrong type.
    """
    for name in policy.require:
        if name not in claims:
            raise MissingClaim(f"the '{name}' claim is required", claim=name)
    leeway = policy.leeway.total_seconds()
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise ImmatureToken("the token is not valid yet", claim="nbf")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise ImmatureToken("the token was issued in the future", claim="iat")
    for name in _STRING_CLAIMS:
        value = claims.get(name)
        if value is not None and type(value) is not str:
            raise ClaimError(f"'{name}' must be a string", claim=name)
    if policy.issuer is not None:
        if "iss" not in claims:
            raise MissingClaim("the 'iss' claim is required", claim="iss")
        if claims["iss"] != policy.issuer:
            raise InvalidIssuer("the token was issued by someone else", claim="iss")
    _check_audience(claims, policy.audience)
    # Expiry last: ExpiredToken then means "genuine, for us, only too old", which the
    # hybrid refresh relies on to treat an expired access token as refreshable.
    exp = _number(claims, "exp")
    if exp is not None and exp <= now - leeway:
        raise ExpiredToken("the token has expired", claim="exp")


def _check_audience(claims: Mapping[str, Any], audience: str | None) -> None:
    if "aud" not in claims:
        if audience is not None:
            raise MissingClaim("the 'aud' claim is required", claim="aud")
        return
    aud = claims["aud"]
    if type(aud) is str:
        found = aud == audience
    elif type(aud) is list and all(type(item) is str for item in aud):
        found = audience in aud
    else:
        raise ClaimError("'aud' must be a string or a list of strings", claim="aud")
    if not found:
        raise InvalidAudience("the token is meant for another audience", claim="aud")
