"""Every exception coatcheck raises, each with a stable machine-readable ``code``.

The tree (codes are part of the public API and never renamed)::

    CoatcheckError                    coatcheck_error        root; never raised directly
    ├── ConfigurationError            configuration_error    bad policy, key or extra (start-up)
    │   └── KeyRefused                key_refused            a key or key set refused at load; .kid
    │       ├── MalformedKey          malformed_key          not a JWK/PEM, or not for its algorithm
    │       ├── WeakKey               weak_key               RSA < 2048 bits or e not odd >= 3;
    │       │                                                HMAC secret shorter than its hash
    │       ├── VulnerableKey         vulnerable_key         RSA modulus with the ROCA fingerprint
    │       ├── PointNotOnCurve       point_not_on_curve     EC public point off its named curve
    │       ├── KeyUseConflict        key_use_conflict       use / key_ops forbid this algorithm
    │       ├── NotAPublicKey         not_a_public_key       secret or private part in a JWKS
    │       └── DuplicateKid          duplicate_kid          two keys of one set share a kid
    ├── CookieError                   cookie_error           dump_cookie(): illegal name/value/attr
    ├── StoreError                    store_error            a store backend failed (__cause__)
    │   └── StoreUnavailable          store_unavailable      the backend cannot be reached (503)
    ├── ConflictError                 conflict               a compare-and-set lost too many times
    ├── SessionDataError              session_data_error     the app's session data cannot be kept
    │   ├── SessionValueError         session_value_invalid  not JSON (also a TypeError); .key
    │   └── SessionTooLarge           session_too_large      over the size limit; .size, .limit
    ├── SignatureError                bad_signature          Signer.unsign(): tampered or foreign
    │   └── SignatureExpired          signature_expired      older than max_age; .signed_at
    ├── TokenError                    invalid_token          base of every token refusal
    │   ├── MalformedToken            malformed_token        segments, base64, JSON, size
    │   ├── UnsupportedAlgorithm      unsupported_algorithm  not allowed, unknown, or not the key's
    │   ├── UnknownKey                unknown_key            no key with that kid (or rotated out)
    │   ├── UnsupportedHeader         unsupported_header     crit, jku, x5u, embedded jwk ...
    │   ├── InvalidSignature          invalid_signature      JWS verification failed
    │   ├── DecryptionFailed          decryption_failed      JWE could not be decrypted
    │   ├── InvalidDPoPProof          invalid_dpop_proof     a DPoP proof failed RFC 9449 §4.3
    │   │   ├── DPoPProofReplayed     dpop_proof_replayed    its jti was already used (§11.1)
    │   │   ├── DPoPRequired          dpop_required          the policy requires a DPoP proof
    │   │   └── UseDPoPNonce          use_dpop_nonce         send the server's nonce (§8, §9)
    │   ├── InvalidEphemeralKey       invalid_ephemeral_key  ECDH-ES epk off the curve or low order
    │   ├── InvalidDbscProof          invalid_dbsc_proof     a DBSC proof JWT was refused
    │   │   └── DbscChallengeFailed   dbsc_challenge_failed  its challenge: unknown, stale, reused
    │   └── ClaimError                invalid_claim          .claim names the claim
    │       ├── MissingClaim          missing_claim          required claim absent
    │       ├── ExpiredToken          expired_token          exp <= now - leeway
    │       ├── ImmatureToken         immature_token         nbf or iat > now + leeway
    │       ├── InvalidIssuer         invalid_issuer         iss does not match
    │       └── InvalidAudience       invalid_audience       aud does not match
    ├── AuthenticationError           unauthenticated        require(); adapters: 401
    │   ├── MissingCredentials        missing_credentials    the transport found nothing
    │   ├── InvalidCredentials        invalid_credentials    unknown/expired session or a bad token
    │   ├── RevokedCredentials        revoked_credentials    its session was revoked
    │   ├── RefreshReuse              refresh_token_reused   a retired refresh token came back
    │   ├── DeviceBindingRequired     device_binding_required  bound session without its bound
    │   │                                                    cookie, or unbound past the policy
    │   ├── InvalidDPoPBinding        dpop_binding_mismatch  a DPoP-bound token without its key
    │   └── StaleAuthentication       reauthentication_required  the login is older than allowed
    ├── CsrfError                     csrf_failed            adapters: 403
    │   ├── CrossOriginRequest        csrf_cross_origin      Sec-Fetch-Site/Origin: another site
    │   ├── MissingCsrfToken          csrf_token_missing     no token in the form or header
    │   └── CsrfTokenMismatch         csrf_token_invalid     bad MAC or bound to another session
    ├── RateLimited                   rate_limited           too many attempts; .retry_after (429)
    └── InputError                    bad_request            malformed request body or field (400)
        ├── InvalidText               invalid_text           not Unicode scalar values, or a NUL
        └── PayloadTooLarge           payload_too_large      a body over the size limit (413)

``str(error)`` is ``"{code}: {message}"``. Messages never contain a token, cookie
value or key. Errors do not know HTTP; ``coatcheck.adapters`` maps them to statuses.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ClaimError",
    "CoatcheckError",
    "ConfigurationError",
    "ConflictError",
    "CookieError",
    "CrossOriginRequest",
    "CsrfError",
    "CsrfTokenMismatch",
    "DPoPProofReplayed",
    "DPoPRequired",
    "DbscChallengeFailed",
    "DecryptionFailed",
    "DeviceBindingRequired",
    "DuplicateKid",
    "ExpiredToken",
    "ImmatureToken",
    "InputError",
    "InvalidAudience",
    "InvalidCredentials",
    "InvalidDPoPBinding",
    "InvalidDPoPProof",
    "InvalidDbscProof",
    "InvalidEphemeralKey",
    "InvalidIssuer",
    "InvalidSignature",
    "InvalidText",
    "KeyRefused",
    "KeyUseConflict",
    "MalformedKey",
    "MalformedToken",
    "MissingClaim",
    "MissingCredentials",
    "MissingCsrfToken",
    "NotAPublicKey",
    "PayloadTooLarge",
    "PointNotOnCurve",
    "RateLimited",
    "RefreshReuse",
    "RevokedCredentials",
    "SessionDataError",
    "SessionTooLarge",
    "SessionValueError",
    "SignatureError",
    "SignatureExpired",
    "StaleAuthentication",
    "StoreError",
    "StoreUnavailable",
    "TokenError",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "UnsupportedHeader",
    "UseDPoPNonce",
    "VulnerableKey",
    "WeakKey",
]


class CoatcheckError(Exception):
    """Root of every coatcheck error."""

    code = "coatcheck_error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or (self.__doc__ or self.code).strip().splitlines()[0])
        self.message = self.args[0]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ConfigurationError(CoatcheckError):
    """The configuration is invalid; the message says how to fix it."""

    code = "configuration_error"


class KeyRefused(ConfigurationError):
    """A key or key set was refused when loaded; the message says why, ``kid`` names the key.

    A subclass of :class:`ConfigurationError`: keys are configuration, so an application
    that loads a bad key fails at start-up. Code that builds keys from untrusted input (a
    JWK in a DPoP proof) catches this class.
    """

    code = "key_refused"

    def __init__(self, message: str = "", *, kid: str | None = None) -> None:
        super().__init__(message)
        self.kid = kid


class MalformedKey(KeyRefused):
    """The key is not a valid JWK or PEM, or not of the type and curve its algorithm needs."""

    code = "malformed_key"


class WeakKey(KeyRefused):
    """The key is too weak: an RSA modulus under 2048 bits, an RSA public exponent that is not
    an odd number of at least 3, or an HMAC secret shorter than its hash."""

    code = "weak_key"


class VulnerableKey(KeyRefused):
    """The RSA modulus carries the ROCA fingerprint (CVE-2017-15361): it came from a broken
    key generator and can be factored."""

    code = "vulnerable_key"


class PointNotOnCurve(KeyRefused):
    """The EC public point is not on the curve the key names (invalid-curve attack)."""

    code = "point_not_on_curve"


class KeyUseConflict(KeyRefused):
    """The JWK's ``use`` / ``key_ops`` disagree, or forbid the algorithm it is bound to
    (RFC 7517 §4.2, §4.3)."""

    code = "key_use_conflict"


class NotAPublicKey(KeyRefused):
    """A secret or private key where only public keys belong (a verification JWKS, a
    public JWK from a token)."""

    code = "not_a_public_key"


class DuplicateKid(KeyRefused):
    """Two keys of one set share a ``kid``."""

    code = "duplicate_kid"


class CookieError(CoatcheckError):
    """A cookie name, value or attribute is not allowed."""

    code = "cookie_error"


class StoreError(CoatcheckError):
    """The session store failed."""

    code = "store_error"


class StoreUnavailable(StoreError):
    """The session store cannot be reached right now."""

    code = "store_unavailable"


class ConflictError(CoatcheckError):
    """A concurrent update kept winning; the change was not applied."""

    code = "conflict"


class SessionDataError(CoatcheckError):
    """Data the app put in its session mapping cannot be kept (a bug in the app: 500)."""

    code = "session_data_error"


class SessionValueError(SessionDataError, TypeError):
    """A session value is not JSON; ``key`` names where it was put (``cart[2]``)."""

    code = "session_value_invalid"

    def __init__(self, message: str = "", *, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class SessionTooLarge(SessionDataError):
    """The session's data is over the size limit; ``size`` and ``limit`` are bytes."""

    code = "session_too_large"

    def __init__(self, message: str = "", *, size: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class SignatureError(CoatcheckError):
    """The signature does not match: the value was tampered with or signed for another use."""

    code = "bad_signature"


class SignatureExpired(SignatureError):
    """The signature is valid but older than allowed."""

    code = "signature_expired"

    def __init__(self, message: str = "", *, signed_at: float | None = None) -> None:
        super().__init__(message)
        self.signed_at = signed_at


class TokenError(CoatcheckError):
    """The token was refused."""

    code = "invalid_token"


class MalformedToken(TokenError):
    """The token is not well-formed (segments, base64, JSON or size)."""

    code = "malformed_token"


class UnsupportedAlgorithm(TokenError):
    """The token's algorithm is not allowed, not known, or not the one its key is bound to."""

    code = "unsupported_algorithm"


class UnknownKey(TokenError):
    """No key matches the token (unknown or rotated-out kid)."""

    code = "unknown_key"


class UnsupportedHeader(TokenError):
    """The token carries a header coatcheck refuses (crit, jku, x5u, jwk, ...)."""

    code = "unsupported_header"


class InvalidSignature(TokenError):
    """The token's signature does not verify."""

    code = "invalid_signature"


class DecryptionFailed(TokenError):
    """The encrypted token could not be decrypted."""

    code = "decryption_failed"


class InvalidDbscProof(TokenError):
    """A Device Bound Session Credentials proof (a ``dbsc+jwt``) was refused."""

    code = "invalid_dbsc_proof"


class DbscChallengeFailed(InvalidDbscProof):
    """The DBSC proof signs a challenge that is unknown, too old, already used, or
    another session's: the refresh endpoint answers with a fresh one (403)."""

    code = "dbsc_challenge_failed"


class InvalidDPoPProof(TokenError):
    """The DPoP proof was refused (RFC 9449 §4.3).

    ``algs`` are the proof algorithms the server accepts and ``nonce`` the nonce it
    wants in the next proof (None when it uses none); adapters put both in the
    ``WWW-Authenticate: DPoP`` challenge and the ``DPoP-Nonce`` header (§7.1, §8).
    """

    code = "invalid_dpop_proof"

    def __init__(
        self, message: str = "", *, algs: tuple[str, ...] = (), nonce: str | None = None
    ) -> None:
        super().__init__(message)
        self.algs = algs
        self.nonce = nonce


class DPoPProofReplayed(InvalidDPoPProof):
    """This DPoP proof was already used (its ``jti`` was seen within the window)."""

    code = "dpop_proof_replayed"


class DPoPRequired(InvalidDPoPProof):
    """The server requires a DPoP proof (a key-bound token) and none was sent."""

    code = "dpop_required"


class UseDPoPNonce(InvalidDPoPProof):
    """The proof must carry the server's current nonce, given in ``nonce`` (RFC 9449 §8, §9)."""

    code = "use_dpop_nonce"


class InvalidEphemeralKey(TokenError):
    """The ECDH-ES ephemeral key (``epk``) is malformed, on another curve, off its curve or
    of low order (invalid-curve attack)."""

    code = "invalid_ephemeral_key"


class ClaimError(TokenError):
    """A claim is invalid; ``claim`` names it."""

    code = "invalid_claim"

    def __init__(self, message: str = "", *, claim: str = "") -> None:
        super().__init__(message)
        self.claim = claim


class MissingClaim(ClaimError):
    """A required claim is missing."""

    code = "missing_claim"


class ExpiredToken(ClaimError):
    """The token has expired."""

    code = "expired_token"


class ImmatureToken(ClaimError):
    """The token is not valid yet."""

    code = "immature_token"


class InvalidIssuer(ClaimError):
    """The token was issued by someone else."""

    code = "invalid_issuer"


class InvalidAudience(ClaimError):
    """The token is meant for another audience."""

    code = "invalid_audience"


class AuthenticationError(CoatcheckError):
    """Authentication is required."""

    code = "unauthenticated"


class MissingCredentials(AuthenticationError):
    """No credentials were presented."""

    code = "missing_credentials"


class InvalidCredentials(AuthenticationError):
    """The presented credentials are unknown, expired or invalid."""

    code = "invalid_credentials"


class RevokedCredentials(AuthenticationError):
    """The session behind these credentials was revoked."""

    code = "revoked_credentials"


class RefreshReuse(AuthenticationError):
    """A retired refresh token was presented again; its whole family was revoked."""

    code = "refresh_token_reused"


class DeviceBindingRequired(AuthenticationError):
    """The session is bound to a device key and this request lacks its bound cookie, or
    it was never bound and the policy no longer lets it stay unbound."""

    code = "device_binding_required"


class InvalidDPoPBinding(AuthenticationError):
    """A DPoP-bound credential came without a valid proof of its own key.

    Sent as ``Bearer`` (or in a cookie), or with a proof signed by another key
    (RFC 9449 §7.1, §7.2). ``algs`` and ``nonce`` as for :class:`InvalidDPoPProof`.
    """

    code = "dpop_binding_mismatch"

    def __init__(
        self, message: str = "", *, algs: tuple[str, ...] = (), nonce: str | None = None
    ) -> None:
        super().__init__(message)
        self.algs = algs
        self.nonce = nonce


class StaleAuthentication(AuthenticationError):
    """This action needs a recent login."""

    code = "reauthentication_required"


class CsrfError(CoatcheckError):
    """The request failed cross-site request forgery protection."""

    code = "csrf_failed"


class CrossOriginRequest(CsrfError):
    """The request comes from another origin (Sec-Fetch-Site or Origin)."""

    code = "csrf_cross_origin"


class MissingCsrfToken(CsrfError):
    """The request carries no CSRF token."""

    code = "csrf_token_missing"


class CsrfTokenMismatch(CsrfError):
    """The CSRF token is invalid or belongs to another session."""

    code = "csrf_token_invalid"


class RateLimited(CoatcheckError):
    """Too many attempts; try again later."""

    code = "rate_limited"

    def __init__(self, message: str = "", *, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InputError(CoatcheckError):
    """The request body or a field in it is malformed."""

    code = "bad_request"


class InvalidText(InputError):
    """A text field is not a sequence of Unicode scalar values (a lone surrogate, or bytes
    that are not UTF-8), or holds a NUL, which no store and no header can carry."""

    code = "invalid_text"


class PayloadTooLarge(InputError):
    """The request body is larger than the limit."""

    code = "payload_too_large"
