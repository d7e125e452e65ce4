from __future__ import annotations

import pytest

from coatcheck.auth import BearerTransport, CookieTransport, Identity, Issued, Transport
from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, CookieError
from coatcheck.policies import CookiePolicy


def _issued(expires_at: float = 1_800_003_600.0) -> Issued:
    return Issued(
        token="abc.def",
        expires_at=expires_at,
        session_id=None,
        identity=Identity(user_id="u1", mode="session"),
    )


def test_both_transports_satisfy_the_protocol() -> None:
    assert isinstance(CookieTransport(), Transport)
    assert isinstance(BearerTransport(), Transport)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("__Host-session=tok", "tok"),
        ("a=1; __Host-session=tok; b=2", "tok"),
        ("x__Host-session=nope", None),
        ("__Host-session=", None),
        ("__Host-session", None),
        (";;; __Host-session=tok ;", "tok"),
        ("\x00\xff=garbage; __Host-session=tok", "tok"),
        # The old default name is not read here (the Authenticator reads it, guarded).
        ("session=tok", None),
        # Sent twice: ambiguous, neither is trusted (issue 12, item 1).
        ("__Host-session=mine; __Host-session=theirs", None),
    ],
)
def test_cookie_read(header: str | None, expected: str | None) -> None:
    headers = {} if header is None else {"cookie": header}
    assert CookieTransport().read(headers) == expected


@pytest.mark.parametrize(
    ("kwargs", "name", "renamed_from"),
    [
        ({}, "__Host-session", None),
        ({"policy": CookiePolicy(secure=False)}, "session", None),
        ({"policy": CookiePolicy(domain="example.com")}, "__Secure-session", None),
        ({"renamed_from": "session"}, "__Host-session", "session"),
        # A cookie the caller names keeps its name, unprefixed even over HTTPS.
        ({"name": "session"}, "session", None),
        ({"name": "sid", "renamed_from": "old_sid"}, "sid", "old_sid"),
    ],
)
def test_default_name_is_prefixed_unless_named(
    kwargs: dict[str, object], name: str, renamed_from: str | None
) -> None:
    transport = CookieTransport(**kwargs)  # type: ignore[arg-type]
    assert (transport.cookie_name, transport.renamed_from) == (name, renamed_from)


def test_renamed_cookie_is_read_only_when_the_current_name_is_absent() -> None:
    transport = CookieTransport(renamed_from="session")
    assert transport.read_renamed({"cookie": "session=old"}) == "old"
    assert transport.read_renamed({"cookie": "session=old; __Host-session=new"}) is None
    assert transport.read_renamed({"cookie": "session=a; session=b"}) is None  # ambiguous
    assert CookieTransport("sid").read_renamed({"cookie": "session=old"}) is None
    # Not by default: "session" is also the session-data cookie's default name.
    assert CookieTransport().read_renamed({"cookie": "session=data"}) is None
    assert [v.split("=")[0] for _, v in CookieTransport().clear()] == ["__Host-session"]
    with pytest.raises(ConfigurationError):
        CookieTransport("sid", renamed_from="sid")
    cleared = [value for _, value in transport.clear()]
    assert [c.split("=")[0] for c in cleared] == ["__Host-session", "session"]
    assert [v.split("=")[0] for _, v in transport.clear_renamed()] == ["session"]


def test_cookie_write_persistent_has_max_age_from_expiry(clock: FrozenClock) -> None:
    transport = CookieTransport("sid", CookiePolicy(secure=False), clock=clock)
    [(name, value)] = transport.write(_issued(expires_at=clock.now() + 3600), persistent=True)
    assert name == "set-cookie"
    assert value.startswith("sid=abc.def; Max-Age=3600; Expires=")
    assert "HttpOnly" in value
    assert "Secure" not in value


def test_cookie_write_browser_session_has_no_lifetime(clock: FrozenClock) -> None:
    [(_, value)] = CookieTransport(clock=clock).write(_issued(), persistent=False)
    assert "Max-Age" not in value
    assert "Expires" not in value
    assert "; Secure" in value


def test_cookie_write_never_negative(clock: FrozenClock) -> None:
    [(_, value)] = CookieTransport(clock=clock).write(
        _issued(expires_at=clock.now() - 10), persistent=True
    )
    assert "Max-Age=0" in value


def test_cookie_clear_expires_it() -> None:
    [(_, value)] = CookieTransport("__Host-sid").clear()
    assert value.startswith("__Host-sid=; Max-Age=0")


def test_host_prefix_needs_secure_at_construction() -> None:
    with pytest.raises(CookieError):
        CookieTransport("__Host-sid", CookiePolicy(secure=False))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("bearer abc", "abc"),
        ("BEARER abc==", "abc=="),
        ("Bearer  abc", "abc"),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearerabc", None),
        ("Token abc", None),
        ("Bearer abc def", None),
        ("Bearer a, Bearer b", None),
        ("Bearer abc\x00", None),
        ("Bearer " + "a" * 9000, None),
        ("Bearer é", None),
    ],
)
def test_bearer_read(header: str, expected: str | None) -> None:
    assert BearerTransport().read({"authorization": header}) == expected


def test_bearer_never_writes() -> None:
    transport = BearerTransport()
    assert transport.read({}) is None
    assert transport.write(_issued(), persistent=True) == []
    assert transport.clear() == []
