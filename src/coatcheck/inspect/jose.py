"""JWS and JWE (including Auth.js / NextAuth session tokens) for the inspector."""

from __future__ import annotations

import base64
import binascii
import json
import re
import warnings
from typing import Any, Literal

from joserfc import jwe, jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import OctKey

from ..errors import CoatcheckError
from ..interop.authjs import (
    AUTHJS_COOKIE,
    AUTHJS_SECURE_COOKIE,
    NEXTAUTH_COOKIE,
    AuthJSDecoder,
)
from ..tokens import CONTENT_ENCRYPTIONS, ENCRYPTION_ALGORITHMS
from .material import KeyMaterial
from .report import Finding, Report, Verification, time_info

__all__ = ["inspect_jwe", "inspect_jws", "looks_like_jose"]

_SEGMENT = r"[A-Za-z0-9_-]*"
_JWS_RE = re.compile(rf"eyJ{_SEGMENT}\.{_SEGMENT}\.{_SEGMENT}")
_JWE_RE = re.compile(rf"eyJ{_SEGMENT}(?:\.{_SEGMENT}){{4}}")
_TIME_CLAIMS = ("iat", "nbf", "exp", "auth_time")
_LEEWAY = 15.0


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_object(segment: str) -> dict[str, Any] | None:
    try:
        value = json.loads(_b64(segment))
    except (ValueError, binascii.Error):
        return None
    return value if isinstance(value, dict) else None


def looks_like_jose(value: str) -> str | None:
    """``"jws"`` or ``"jwe"`` when ``value`` has the compact shape and a JSON header."""
    if _JWS_RE.fullmatch(value):
        header = _json_object(value.split(".", 1)[0])
        if header is not None and "alg" in header:
            return "jws"
    if _JWE_RE.fullmatch(value):
        header = _json_object(value.split(".", 1)[0])
        if header is not None and "enc" in header:
            return "jwe"
    return None


def _claim_times(report: Report, claims: dict[str, Any], now: float) -> None:
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            info = time_info(name, float(value), now)
            if info is not None:
                report.times.append(info)
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, (int, float)) and exp <= now:
        report.findings.append(Finding("error", "expired", "the token has expired"))
    elif "exp" not in claims:
        report.findings.append(Finding("warning", "no_exp", "the token never expires (no 'exp')"))
    if isinstance(nbf, (int, float)) and nbf > now:
        report.findings.append(
            Finding("error", "not_yet_valid", "the token is not valid yet ('nbf')")
        )


def _time_failure(claims: dict[str, Any], now: float, *, leeway: float = 0.0) -> str | None:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, (int, float)) and exp <= now - leeway:
        return "expired"
    if isinstance(nbf, (int, float)) and nbf > now + leeway:
        return "not yet valid"
    return None


def inspect_jws(value: str, material: KeyMaterial, now: float, name: str | None) -> Report:
    """Header, claims and signature of a compact JWS; verified when keys are given."""
    header_segment, payload_segment, signature = value.split(".")
    header = _json_object(header_segment) or {}
    title = "JSON Web Signature (signed JWT)"
    report = Report(kind="jws", title=title, name=name, length=len(value))
    report.header = header
    report.signature = signature
    kid = header.get("kid")
    report.kid = kid if isinstance(kid, str) else None
    claims = _json_object(payload_segment)
    if claims is None:
        try:
            report.payload = _b64(payload_segment).decode()
        except (ValueError, binascii.Error):
            report.payload = None
            report.findings.append(Finding("error", "bad_payload", "the payload is not base64url"))
    else:
        report.payload = claims
        _claim_times(report, claims, now)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        report.findings.append(
            Finding("error", "alg_none", "'alg' is 'none' or missing: this token is not signed")
        )
    if material.empty:
        # Said plainly: readable claims are easily mistaken for trustworthy ones.
        report.verification = Verification(
            "not_checked", "signature not verified (no key given)"
        )
    else:
        report.verification = _verify_jws(value, alg, report.kid, material, claims or {}, now)
    return report


def _verify_jws(
    value: str,
    alg: object,
    kid: str | None,
    material: KeyMaterial,
    claims: dict[str, Any],
    now: float,
) -> Verification:
    if not isinstance(alg, str) or alg.lower() == "none":
        return Verification(
            "failed", "unsigned tokens never verify", error_code="unsupported_algorithm"
        )
    candidates: list[tuple[str, Any]] = []
    if alg.startswith("HS"):
        with warnings.catch_warnings():
            # A short secret is still worth checking; the inspector reports, it does not refuse.
            warnings.simplefilter("ignore")
            candidates += [
                (material.secret_label(i), OctKey.import_key(s.encode()))
                for i, s in enumerate(material.secrets)
            ]
    for labelled in material.keys:
        if kid is None or labelled.kid in (None, kid):
            candidates.append((labelled.label, labelled.key))
    for label, key in candidates:
        try:
            with warnings.catch_warnings():
                # joserfc flags the polymorphic EdDSA name (RFC 9864); tokens made elsewhere
                # still carry it, and the user asked to read this one: no warning for them.
                warnings.filterwarnings(
                    "ignore", message="EdDSA is deprecated", category=SecurityWarning
                )
                jws.deserialize_compact(value, key, algorithms=[alg])
        except (JoseError, ValueError, TypeError, KeyError, NotImplementedError):
            continue
        problem = _time_failure(claims, now)
        if problem:
            return Verification(
                "failed", f"{alg} signature verified with {label}, but the token is {problem}",
                key=label, error_code="expired_token" if problem == "expired" else "immature_token",
            )
        return Verification("verified", f"{alg} signature verified with {label}", key=label)
    tried = len(candidates)
    return Verification(
        "failed",
        f"the {alg} signature matches none of the {tried} key(s) tried"
        if tried
        else f"no given secret or key fits {alg}",
        error_code="invalid_signature",
    )


def _salts(name: str | None) -> list[tuple[str, Literal[4, 5]]]:
    salts: list[tuple[str, Literal[4, 5]]] = [
        (AUTHJS_COOKIE, 5),
        (AUTHJS_SECURE_COOKIE, 5),
        (NEXTAUTH_COOKIE, 4),
    ]
    if name:
        base = name.rsplit(".", 1)[0] if name.rsplit(".", 1)[-1].isdigit() else name
        salts.insert(0, (base, 5))
    return list(dict.fromkeys(salts))


def inspect_jwe(value: str, material: KeyMaterial, now: float, name: str | None) -> Report:
    """A compact JWE: the header always, the claims when a secret or key decrypts it."""
    parts = value.split(".")
    header = _json_object(parts[0]) or {}
    alg, enc = header.get("alg"), header.get("enc")
    authjs = alg == "dir" and enc in ("A256CBC-HS512", "A256GCM")
    if authjs and enc == "A256CBC-HS512":
        kind, title = "authjs", "Auth.js v5 session token (JWE, dir + A256CBC-HS512)"
    elif authjs and "kid" not in header:
        kind, title = "nextauth", "NextAuth v4 session token (JWE, dir + A256GCM)"
    else:
        kind, title = "jwe", "JSON Web Encryption (encrypted JWT)"
    report = Report(kind=kind, title=title, name=name, length=len(value), header=header)
    kid = header.get("kid")
    report.kid = kid if isinstance(kid, str) else None
    report.fields = {
        "encrypted_key_length": len(parts[1]),
        "ciphertext_length": len(parts[3]),
        "authentication_tag": parts[4],
    }
    if material.empty:
        report.findings.append(
            Finding("info", "encrypted", "encrypted claims: give --secret or --key to read them")
        )
        return report
    # Every JWE algorithm coatcheck supports (RSA1_5 and PBES2 stay refused, issue 11).
    algorithms = (
        [alg, enc] if alg in ENCRYPTION_ALGORITHMS and enc in CONTENT_ENCRYPTIONS else None
    )
    claims, verification = _decrypt(value, authjs, material, now, name, algorithms)
    report.verification = verification
    if claims is not None:
        report.payload = claims
        _claim_times(report, claims, now)
    return report


def _decrypt(
    value: str,
    authjs: bool,
    material: KeyMaterial,
    now: float,
    name: str | None,
    algorithms: list[str] | None,
) -> tuple[dict[str, Any] | None, Verification]:
    if authjs:
        for index, secret in enumerate(material.secrets):
            for salt, version in _salts(name):
                decoder = AuthJSDecoder([secret], cookie_name=salt, version=version)
                try:
                    claims = decoder.decrypt(value)
                except CoatcheckError:
                    continue
                label = material.secret_label(index)
                how = f"decrypted as Auth.js v{version} with {label} (salt {salt!r})"
                problem = _time_failure(claims, now, leeway=_LEEWAY)
                if problem:
                    code = "expired_token" if problem == "expired" else "immature_token"
                    return claims, Verification(
                        "failed", f"{how}, but the session is {problem}", key=label, error_code=code
                    )
                return claims, Verification("verified", how, key=label)
    for labelled in material.keys:
        try:
            result = jwe.decrypt_compact(value, labelled.key, algorithms=algorithms)
            claims = json.loads(result.plaintext or b"")
        except (JoseError, ValueError, TypeError, KeyError, NotImplementedError):
            continue
        if isinstance(claims, dict):
            how = f"decrypted with {labelled.label}"
            problem = _time_failure(claims, now)
            if problem:
                return claims, Verification(
                    "failed", f"{how}, but the token is {problem}", key=labelled.label,
                    error_code="expired_token" if problem == "expired" else "immature_token",
                )
            return claims, Verification("verified", how, key=labelled.label)
    return None, Verification(
        "failed", "no given secret or key decrypts this token", error_code="decryption_failed"
    )
