"""The inspector recognises each format, shows its parts and verifies with a secret."""

from __future__ import annotations

import base64
import json
import zlib

import itsdangerous
import pytest

from coatcheck.clock import FrozenClock
from coatcheck.inspect import KeyMaterial, inspect_value, render_text
from coatcheck.interop.authjs import AUTHJS_SECURE_COOKIE, chunk_token, encode_authjs
from coatcheck.interop.express import ExpressSessionCookie
from coatcheck.sessions.ids import new_token, session_id, user_slot
from coatcheck.tokens import JWTCodec, Key, KeyRing

HS = "inspector-test-secret-0123456789abcdef"


def _secrets(*values: str) -> KeyMaterial:
    return KeyMaterial(secrets=values)


def test_jws_parts_and_verification(clock: FrozenClock) -> None:
    token = JWTCodec(KeyRing([Key.from_secret(HS, kid="k1")]), clock=clock).encode({"sub": "u"})
    report = inspect_value(token, clock=clock)
    assert report.kind == "jws"
    assert report.header == {"alg": "HS256", "kid": "k1", "typ": "JWT"}
    assert report.kid == "k1"
    assert report.payload["sub"] == "u"
    assert [t.name for t in report.times] == ["iat", "exp"]
    assert report.times[1].relative == "in 15 minutes"
    assert report.verification is not None
    assert report.verification.status == "not_checked"
    assert report.verification.detail == "signature not verified (no key given)"
    assert not report.verification_failed
    good = inspect_value(token, material=_secrets("wrong-secret", HS), clock=clock)
    assert good.verification is not None
    assert good.verification.status == "verified"
    assert good.verification.key == "--secret #2"
    bad = inspect_value(token, material=_secrets("wrong-secret"), clock=clock)
    assert bad.verification_failed
    clock.advance(3600)
    expired = inspect_value(token, material=_secrets(HS), clock=clock)
    assert expired.verification is not None
    assert expired.verification.error_code == "expired_token"
    assert any(f.code == "expired" for f in expired.findings)


def test_jws_with_public_key_file(tmp_path, clock: FrozenClock) -> None:  # type: ignore[no-untyped-def]
    key = Key.generate("ES256", kid="ec1")
    token = JWTCodec(KeyRing([key]), clock=clock).encode({"sub": "u"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(KeyRing([key]).jwks()))
    material = KeyMaterial.load(jwks_file=jwks)
    report = inspect_value(token, material=material, clock=clock)
    assert report.verification is not None
    assert report.verification.status == "verified"
    assert "kid=ec1" in (report.verification.key or "")


def test_alg_none_is_flagged(clock: FrozenClock) -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(b'{"sub":"x"}').rstrip(b"=").decode()
    report = inspect_value(f"{header}.{payload}.", material=_secrets(HS), clock=clock)
    assert report.kind == "jws"
    assert any(f.code == "alg_none" for f in report.findings)
    assert report.verification_failed


def test_authjs_token_decrypts_with_secret_and_cookie_name(clock: FrozenClock) -> None:
    token = encode_authjs({"sub": "u"}, HS, cookie_name=AUTHJS_SECURE_COOKIE, clock=clock)
    blind = inspect_value(token, clock=clock)
    assert blind.kind == "authjs"
    assert blind.payload is None
    report = inspect_value(token, material=_secrets(HS), clock=clock)
    assert report.payload["sub"] == "u"
    assert report.verification is not None
    assert "__Secure-" in report.verification.detail
    v4 = inspect_value(encode_authjs({"sub": "u"}, HS, version=4, clock=clock),
                       material=_secrets(HS), clock=clock)
    assert v4.kind == "nextauth"
    assert v4.verification is not None
    assert v4.verification.status == "verified"


def test_chunked_authjs_cookie_header(clock: FrozenClock) -> None:
    token = encode_authjs({"sub": "u", "blob": "y" * 5000}, HS, clock=clock)
    chunks = chunk_token(token, "authjs.session-token")
    header = "Cookie: " + "; ".join(f"{n}={v}" for n, v in chunks)
    report = inspect_value(header, material=_secrets(HS), clock=clock)
    assert report.kind == "cookie-header"
    (child,) = report.children
    assert child.name == "authjs.session-token"
    assert child.fields["chunks"] == 2
    assert child.payload["sub"] == "u"


def test_express_cookie(clock: FrozenClock) -> None:
    value = ExpressSessionCookie("keyboard cat").set_cookie("sid123").split(";")[0].split("=", 1)[1]
    report = inspect_value(value, material=_secrets("keyboard cat"), clock=clock)
    assert report.kind == "express-session"
    assert report.fields["session_id"] == "sid123"
    assert report.verification is not None
    assert report.verification.status == "verified"
    assert inspect_value(value, material=_secrets("nope"), clock=clock).verification_failed


def test_flask_cookie_plain_and_compressed(clock: FrozenClock) -> None:
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    app = Flask("t")
    app.secret_key = "flask-key"
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    small = serializer.dumps({"user": "alice"})
    big = serializer.dumps({"items": ["same"] * 200})
    assert big.startswith(".")
    for value, expected in ((small, {"user": "alice"}), (big, {"items": ["same"] * 200})):
        report = inspect_value(value, material=_secrets("flask-key"), clock=clock)
        assert report.kind == "flask-session"
        assert report.payload == expected
        assert report.verification is not None
        assert report.verification.status == "verified"


def test_starlette_cookie(clock: FrozenClock) -> None:
    data = base64.b64encode(json.dumps({"user": "bob", "n": 1}).encode())
    value = itsdangerous.TimestampSigner("starlette-key").sign(data).decode()
    report = inspect_value(value, material=_secrets("starlette-key"), clock=clock)
    assert report.kind == "starlette-session"
    assert report.payload == {"user": "bob", "n": 1}
    assert report.verification is not None
    assert report.verification.status == "verified"


def test_django_values(clock: FrozenClock) -> None:
    # Django (dev extra) is the oracle for its own format.
    import django
    from django.conf import settings

    if not settings.configured:
        # The apps the Django adapter's modules need, should a later test import them.
        settings.configure(
            SECRET_KEY="django-secret-key",
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
        )
    from django.core import signing
    from django.test import override_settings

    assert django.VERSION >= (3, 1)
    packed = signing.dumps({"cart": list(range(50))}, compress=True, key="django-secret-key")
    report = inspect_value(packed, material=_secrets("django-secret-key"), clock=clock)
    assert report.kind == "django-signed"
    assert report.payload == {"cart": list(range(50))}
    assert report.fields["compressed"] is True
    assert report.verification is not None
    assert report.verification.status == "verified"
    with override_settings(SECRET_KEY="django-secret-key"):  # whoever configured Django
        cookie_signer = signing.get_cookie_signer(salt="pref")
    report = inspect_value(f"Cookie: pref={cookie_signer.sign('dark')}",
                           material=_secrets("django-secret-key"), clock=clock)
    (child,) = report.children
    assert child.verification is not None
    assert child.verification.status == "verified"


def test_coatcheck_session_token_explains_its_slot(clock: FrozenClock) -> None:
    user = "u_0123456789abcdef"
    token = new_token(user)
    report = inspect_value(token, clock=clock)
    assert report.kind == "coatcheck-session"
    assert report.fields == {"slot": user_slot(user), "session_id": session_id(token)}
    (slot,) = [f for f in report.findings if f.code == "slot"]
    assert "SHA-256 of the user id" in slot.message
    assert "shared by all of a user's sessions" in slot.message
    assert "not secret" in slot.message


def test_coatcheck_hybrid_refresh_token(clock: FrozenClock) -> None:
    token = new_token("u_1")
    refresh = f"{token}~{'G' * 43}"
    report = inspect_value(refresh, clock=clock)
    assert (report.kind, report.title) == ("coatcheck-refresh", "coatcheck hybrid refresh token")
    assert report.fields == {
        "slot": user_slot("u_1"),
        "session_token": token,
        "session_id": session_id(token),
        "generation_secret_length": 43,
    }
    assert "G" * 43 not in render_text(report)  # the generation secret is never shown
    assert {f.code for f in report.findings} == {"slot", "refresh_token"}
    (child,) = inspect_value(f"Cookie: cc_refresh={refresh}", clock=clock).children
    assert (child.name, child.kind) == ("cc_refresh", "coatcheck-refresh")
    for near_miss in (f"{token}~{'G' * 42}", f"{token}~~{'G' * 43}", f"{token[:-1]}~{'G' * 43}"):
        assert inspect_value(near_miss, clock=clock).kind != "coatcheck-refresh"


def test_opaque_values(clock: FrozenClock) -> None:
    assert inspect_value("a1b2c3d4." + "A" * 43, clock=clock).kind == "coatcheck-session"
    short = inspect_value("0123456789abcdef", clock=clock)
    assert short.kind == "opaque"
    assert any(f.code == "short_id" for f in short.findings)


@pytest.mark.parametrize(
    "value", ["", "   ", "\x00\x01", "{{{", "eyJ.eyJ.x", "a" * 300_000, "s:%%%", "=;=;="]
)
def test_hostile_values_never_raise(value: str, clock: FrozenClock) -> None:
    report = inspect_value(value, material=_secrets(HS), clock=clock)
    assert report.kind
    assert isinstance(report.to_dict(), dict)


def test_zlib_bomb_is_not_inflated(clock: FrozenClock) -> None:
    bomb = zlib.compress(b"[" + b"0," * 2_000_000 + b"0]", 9)
    payload = "." + base64.urlsafe_b64encode(bomb).rstrip(b"=").decode()
    report = inspect_value(f"{payload}.ZxYzAA.{'A' * 27}", clock=clock)
    assert report.payload is None
