"""coatcheck.signing: namespaced HMAC-SHA256 signatures with secrets in rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from coatcheck import signing
from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, SignatureError, SignatureExpired
from coatcheck.secret import Secret, SecretRing
from coatcheck.signing import MAX_CLOCK_SKEW, Signer

OLD = "o" * 32
NEW = "n" * 32


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def signer(clock: FrozenClock) -> Signer:
    return Signer(NEW, namespace="session", clock=clock)


def test_all_is_sorted() -> None:
    assert signing.__all__ == sorted(signing.__all__)


@pytest.mark.parametrize(
    "data", [b"", b"hello", "h\u00e9llo \u2603", b"\x00\xff" * 50, "a.b.c", "x" * 5000]
)
def test_round_trip(signer: Signer, data: str | bytes) -> None:
    raw = data.encode() if isinstance(data, str) else data
    assert signer.unsign(signer.sign(data)) == raw


def test_str_with_lone_surrogate_round_trips(signer: Signer) -> None:
    value = signer.sign("a\ud800b")
    assert signer.unsign(value).decode("utf-8", "surrogatepass") == "a\ud800b"


def test_known_answer_pins_the_wire_format(clock: FrozenClock) -> None:
    value = Signer(NEW, namespace="session", clock=clock).sign(b"user-42")
    key = hmac.new(NEW.encode(), b"coatcheck.signer\x00session", hashlib.sha256).digest()
    stamp = b64(int(clock.now()).to_bytes(4, "big"))
    signed = f"{b64(b'user-42')}.{stamp}"
    mac = b64(hmac.new(key, signed.encode(), hashlib.sha256).digest())
    assert value == f"{signed}.{mac}"
    assert value == "dXNlci00Mg.a0nSAA.868Ut2ibDuD6eewjHyQ9J3BwEt_Re5FfsNLf0KkaW9M"


def test_value_is_url_and_cookie_safe(signer: Signer) -> None:
    value = signer.sign(b"\xff" * 40)
    assert value.count(".") == 2
    assert len(value.rsplit(".", 1)[1]) == 43
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_each_namespace_has_its_own_key(clock: FrozenClock) -> None:
    a = Signer(NEW, namespace="csrf", clock=clock)
    b = Signer(NEW, namespace="flash", clock=clock)
    c = Signer(NEW, namespace="csrf ", clock=clock)
    value = a.sign(b"data")
    for other in (b, c):
        with pytest.raises(SignatureError) as info:
            other.unsign(value)
        assert type(info.value) is SignatureError


def test_another_secret_is_refused(signer: Signer, clock: FrozenClock) -> None:
    other = Signer(OLD, namespace="session", clock=clock)
    with pytest.raises(SignatureError):
        other.unsign(signer.sign(b"data"))


def test_rotation_newest_signs_all_verify(clock: FrozenClock) -> None:
    old_only = Signer(OLD, namespace="s", clock=clock)
    rotated = Signer([OLD, NEW], namespace="s", clock=clock)
    new_only = Signer(NEW, namespace="s", clock=clock)
    legacy = old_only.sign(b"legacy")
    assert rotated.unsign(legacy) == b"legacy"
    fresh = rotated.sign(b"fresh")
    assert new_only.unsign(fresh) == b"fresh"
    with pytest.raises(SignatureError):
        old_only.unsign(fresh)
    with pytest.raises(SignatureError):
        new_only.unsign(legacy)


@pytest.mark.parametrize(
    "secrets",
    [
        SecretRing([OLD, NEW]),
        [Secret(OLD), NEW.encode()],
        (OLD, NEW),
    ],
)
def test_secret_forms(secrets: Any, clock: FrozenClock) -> None:
    assert Signer(NEW, namespace="s", clock=clock).unsign(
        Signer(secrets, namespace="s", clock=clock).sign(b"x")
    ) == b"x"


@pytest.mark.parametrize(
    ("secrets", "namespace"),
    [(NEW, ""), ("short", "s"), ([], "s"), (NEW, None)],
)
def test_bad_configuration(secrets: Any, namespace: Any) -> None:
    with pytest.raises(ConfigurationError):
        Signer(secrets, namespace=namespace)


def test_max_age(signer: Signer, clock: FrozenClock) -> None:
    signed_at = clock.now()
    value = signer.sign(b"x")
    clock.advance(100)
    assert signer.unsign(value, max_age=100) == b"x"
    assert signer.unsign(value) == b"x"
    clock.advance(1)
    with pytest.raises(SignatureExpired) as info:
        signer.unsign(value, max_age=100)
    assert info.value.signed_at == signed_at
    assert info.value.code == "signature_expired"
    assert isinstance(info.value, SignatureError)


def test_unsign_with_timestamp(signer: Signer, clock: FrozenClock) -> None:
    clock.set(1_800_000_000.75)
    value = signer.sign("x")
    clock.advance(5)
    assert signer.unsign_with_timestamp(value, max_age=10) == (b"x", 1_800_000_000.0)


def test_future_timestamps_beyond_skew_are_refused(clock: FrozenClock) -> None:
    verifier = Signer(NEW, namespace="s", clock=clock)
    ahead = FrozenClock(clock.now() + MAX_CLOCK_SKEW)
    assert verifier.unsign(Signer(NEW, namespace="s", clock=ahead).sign(b"x")) == b"x"
    ahead.advance(1)
    with pytest.raises(SignatureError) as info:
        verifier.unsign(Signer(NEW, namespace="s", clock=ahead).sign(b"x"))
    assert type(info.value) is SignatureError


def test_clock_before_epoch_signs_time_zero(clock: FrozenClock) -> None:
    early = Signer(NEW, namespace="s", clock=FrozenClock(-5.0))
    assert Signer(NEW, namespace="s", clock=clock).unsign_with_timestamp(early.sign(b"x")) == (
        b"x",
        0.0,
    )


def _good(signer: Signer) -> str:
    return signer.sign(b"payload")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda v: "",
        lambda v: ".",
        lambda v: "..",
        lambda v: "...",
        lambda v: "a.b",
        lambda v: "a.b.c",
        lambda v: v + ".",
        lambda v: "." + v,
        lambda v: v + "A",
        lambda v: v[:-1],
        lambda v: v[:-1] + ("A" if v[-1] != "A" else "B"),
        lambda v: v + "=",
        lambda v: v + " ",
        lambda v: " " + v,
        lambda v: v.upper(),
        lambda v: v.replace(".", ".x", 1),
        lambda v: v.split(".")[0] + ".." + v.split(".")[2],
        lambda v: "." + v.split(".", 1)[1],
        lambda v: v.rsplit(".", 1)[0],
        lambda v: v.rsplit(".", 1)[0] + "." + "A" * 43,
        lambda v: v.rsplit(".", 1)[0] + "." + "\u00e9" * 43,
        lambda v: v.replace("-", "+").replace("_", "/") + "+/",
        lambda v: v + "\x00",
        lambda v: v.split(".")[0] + "AAAA." + ".".join(v.split(".")[1:]),
        lambda v: ".".join([v.split(".")[0], "A" * 24, v.split(".")[2]]),
    ],
)
def test_mangled_values_are_refused_with_signature_error(signer: Signer, mangle: Any) -> None:
    value = mangle(_good(signer))
    with pytest.raises(SignatureError) as info:
        signer.unsign(value)
    assert type(info.value) is SignatureError
    assert value not in str(info.value) or not value


@pytest.mark.parametrize("value", [None, b"abc.def.ghi", 42, ["a"]])
def test_non_str_is_refused(signer: Signer, value: Any) -> None:
    with pytest.raises(SignatureError):
        signer.unsign(value)


def test_repr_shows_no_secret(signer: Signer) -> None:
    assert NEW not in repr(signer)
    assert "session" in repr(signer)
    assert signer.namespace == "session"


def test_sign_accepts_bytes_like_but_not_int(signer: Signer) -> None:
    assert signer.unsign(signer.sign(bytearray(b"ab"))) == b"ab"  # type: ignore[arg-type]
    assert signer.unsign(signer.sign(memoryview(b"cd"))) == b"cd"  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        signer.sign(5)  # type: ignore[arg-type]
