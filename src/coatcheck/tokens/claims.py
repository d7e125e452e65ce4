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

__all__ = ["ClaimsCheck", "validate_claims"]

_ABSENT: Any = object()


class ClaimsCheck:
    """:func:`validate_claims` for one policy, with the policy read once.

    Codecs build one at construction: the per-token path then does no timedelta
    arithmetic, looks each claim up once and calls no helper in the common case. The
    checks run in :func:`validate_claims`'s order, so the same error comes first.
    """

    __slots__ = ("_audience", "_issuer", "_leeway", "_require", "_required")

    def __init__(self, policy: ClaimsPolicy) -> None:
        self._require = tuple(policy.require)
        self._required = frozenset(policy.require)
        self._leeway = policy.leeway.total_seconds()
        self._issuer = policy.issuer
        self._audience = policy.audience

    def __call__(self, claims: Mapping[str, Any], now: float) -> None:
        """Raise as :func:`validate_claims` does; ``None`` when every check passes."""
        if not claims.keys() >= self._required:
            for name in self._require:
                if name not in claims:
                    raise MissingClaim(f"the '{name}' claim is required", claim=name)
        get = claims.get
        # bool is an int subclass; true is not a date (RFC 7519 §2 NumericDate), and
        # neither is null: a registered time claim that is present must be a number.
        nbf = get("nbf", _ABSENT)
        if nbf is not _ABSENT:
            if type(nbf) is not int and type(nbf) is not float:
                raise ClaimError("'nbf' must be a NumericDate", claim="nbf")
            if nbf > now + self._leeway:
                raise ImmatureToken("the token is not valid yet", claim="nbf")
        iat = get("iat", _ABSENT)
        if iat is not _ABSENT:
            if type(iat) is not int and type(iat) is not float:
                raise ClaimError("'iat' must be a NumericDate", claim="iat")
            if iat > now + self._leeway:
                raise ImmatureToken("the token was issued in the future", claim="iat")
        iss = get("iss", _ABSENT)
        if iss is not _ABSENT and iss is not None and type(iss) is not str:
            raise ClaimError("'iss' must be a string", claim="iss")
        sub = get("sub")
        if sub is not None and type(sub) is not str:
            raise ClaimError("'sub' must be a string", claim="sub")
        jti = get("jti")
        if jti is not None and type(jti) is not str:
            raise ClaimError("'jti' must be a string", claim="jti")
        issuer = self._issuer
        if issuer is not None:
            if iss is _ABSENT:
                raise MissingClaim("the 'iss' claim is required", claim="iss")
            if iss != issuer:
                raise InvalidIssuer("the token was issued by someone else", claim="iss")
        aud = get("aud", _ABSENT)
        if aud is _ABSENT:
            if self._audience is not None:
                raise MissingClaim("the 'aud' claim is required", claim="aud")
        elif type(aud) is not str or aud != self._audience:
            _check_audience(aud, self._audience)
        # Expiry last: ExpiredToken then means "genuine, for us, only too old", which the
        # hybrid refresh relies on to treat an expired access token as refreshable.
        exp = get("exp", _ABSENT)
        if exp is not _ABSENT:
            if type(exp) is not int and type(exp) is not float:
                raise ClaimError("'exp' must be a NumericDate", claim="exp")
            if exp <= now - self._leeway:
                raise ExpiredToken("the token has expired", claim="exp")


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
    ClaimsCheck(policy)(claims, now)


def _check_audience(aud: Any, audience: str | None) -> None:
    if type(aud) is str:
        found = aud == audience
    elif type(aud) is list and all(type(item) is str for item in aud):
        found = audience in aud
    else:
        raise ClaimError("'aud' must be a string or a list of strings", claim="aud")
    if not found:
        raise InvalidAudience("the token is meant for another audience", claim="aud")
