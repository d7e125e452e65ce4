"""The pure DBSC rules: challenges, bound cookies, the wire formats (checked with an
independent RFC 9651 parser, http_sf), the instructions JSON and the admission table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import http_sf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.errors import ConfigurationError, DbscChallengeFailed
from coatcheck.policies import CookiePolicy
from coatcheck.sessions.dbsc import (
    BINDING_KEY,
    BOUND_CLAIM,
    Admission,
    Binding,
    BoundCookies,
    Challenges,
    DbscPolicy,
    admission,
    challenge_header,
    cookie_attributes,
    instructions,
    read_sf_string,
    registration_header,
)

SECRET = "s" * 32
SID = "0123abcd." + "f" * 64
NOW = 1_700_000_000.0


# -- challenges ---------------------------------------------------------------------------


def test_a_challenge_checks_for_its_session_and_purpose_only() -> None:
    challenges = Challenges(SECRET)
    challenge = challenges.issue(SID, "refresh", NOW)
    issued = challenges.check(challenge, SID, "refresh", NOW + 1)
    assert issued == int(NOW * 1_000_000)
    for sid, purpose in ((SID.replace("f", "e"), "refresh"), (SID, "register")):
        with pytest.raises(DbscChallengeFailed, match="another session or use"):
            challenges.check(challenge, sid, purpose, NOW + 1)


def test_challenges_expire_and_are_answered_once() -> None:
    challenges = Challenges(SECRET, ttl=timedelta(minutes=5))
    challenge = challenges.issue(SID, "refresh", NOW)
    with pytest.raises(DbscChallengeFailed, match="expired"):
        challenges.check(challenge, SID, "refresh", NOW + 301)
    issued = challenges.check(challenge, SID, "refresh", NOW)
    with pytest.raises(DbscChallengeFailed, match="already answered"):
        challenges.check(challenge, SID, "refresh", NOW, after=issued)
    # A newer challenge is fine after the older one was answered.
    newer = challenges.issue(SID, "refresh", NOW)
    assert challenges.check(newer, SID, "refresh", NOW, after=issued) > issued


def test_challenges_from_the_future_are_refused() -> None:
    challenges = Challenges(SECRET)
    challenge = challenges.issue(SID, "refresh", NOW + 3600)
    with pytest.raises(DbscChallengeFailed, match="future"):
        challenges.check(challenge, SID, "refresh", NOW)


def test_secret_rotation_keeps_old_challenges_valid() -> None:
    old = Challenges(["o" * 32])
    challenge = old.issue(SID, "register", NOW)
    rotated = Challenges(["n" * 32, "o" * 32])
    assert rotated.check(challenge, SID, "register", NOW)
    with pytest.raises(DbscChallengeFailed):
        Challenges(["n" * 32]).check(challenge, SID, "register", NOW)


def test_challenges_are_unique_even_on_a_frozen_clock() -> None:
    challenges = Challenges(SECRET)
    issued = [challenges.check(challenges.issue(SID, "refresh", NOW), SID, "refresh", NOW)
              for _ in range(5)]  # fmt: skip
    assert issued == sorted(set(issued))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_challenges_only_ever_fail_cleanly(text: str) -> None:
    try:
        Challenges(SECRET).check(text, SID, "refresh", NOW)
    except DbscChallengeFailed:
        pass
    else:  # pragma: no cover - a forgery would land here
        pytest.fail(f"accepted a forged challenge {text!r}")


def test_a_tampered_challenge_is_refused() -> None:
    challenges = Challenges(SECRET)
    challenge = challenges.issue(SID, "refresh", NOW)
    # 26 and 49 are the last characters of the two parts, whose low bits are padding:
    # a non-canonical spelling of the same bytes is refused too.
    for index in (0, 10, 26, 30, 49):
        other = "A" if challenge[index] != "A" else "B"
        flipped = challenge[:index] + other + challenge[index + 1 :]
        with pytest.raises(DbscChallengeFailed):
            challenges.check(flipped, SID, "refresh", NOW)


# -- bound cookies --------------------------------------------------------------------------


def test_bound_cookie_is_tied_to_session_and_expiry() -> None:
    cookies = BoundCookies(SECRET)
    value = cookies.make(SID, NOW + 600)
    assert cookies.check(value, SID, NOW)
    assert cookies.check(value, SID, NOW + 602, leeway=5)
    assert not cookies.check(value, SID, NOW + 606, leeway=5)
    assert not cookies.check(value, SID.replace("f", "e"), NOW)
    exp, _, mac = value.partition(".")
    assert not cookies.check(f"{int(exp) + 3600}.{mac}", SID, NOW)  # a longer life is forged
    assert not BoundCookies("t" * 32).check(value, SID, NOW)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=100)))
def test_bound_cookie_check_never_raises(value: str | None) -> None:
    assert BoundCookies(SECRET).check(value, SID, NOW) is False


# -- the wire -------------------------------------------------------------------------------


def test_registration_header_is_a_valid_structured_list() -> None:
    value = registration_header(("ES256", "RS256"), "/auth/dbsc/register", "c.1_-")
    ((inner, params),) = http_sf.parse(value.encode(), tltype="list")
    assert [str(token) for token, _ in inner] == ["ES256", "RS256"]
    assert params == {"path": "/auth/dbsc/register", "challenge": "c.1_-"}


def test_challenge_header_is_a_valid_structured_list() -> None:
    ((challenge, params),) = http_sf.parse(challenge_header("abc", SID).encode(), tltype="list")
    assert (challenge, params) == ("abc", {"id": SID})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("eyJh.eyJq.sig", "eyJh.eyJq.sig"),  # Chromium: bare
        ('"eyJh.eyJq.sig"', "eyJh.eyJq.sig"),  # the draft: an sf-string
        ('"sid";foo=1', "sid"),  # parameters are ignored
        (f"  {SID}  ", SID),
        ('"a\\"b"', 'a"b'),
        ("", None),
        (None, None),
        ('"unterminated', None),
        ('"x" trailing', None),
        ('"bad \\n escape"', None),
        ("two words", None),
        ('"\x7f"', None),
        ("a" * 9000, None),
    ],
)
def test_read_sf_string(raw: str | None, expected: str | None) -> None:
    assert read_sf_string(raw) == expected


def test_read_sf_string_agrees_with_http_sf() -> None:
    for value in ('"abc"', '"a\\\\b"', '"with space";x=?1', '"semi;colon"'):
        parsed, _ = http_sf.parse(value.encode(), tltype="item")
        assert read_sf_string(value) == parsed


def test_cookie_attributes_name_what_set_cookie_sets() -> None:
    assert cookie_attributes(CookiePolicy()) == "Path=/; Secure; HttpOnly; SameSite=Lax"
    policy = CookiePolicy(secure=False, domain="example.test", same_site="strict", path="/a")
    assert cookie_attributes(policy) == "Path=/a; Domain=example.test; HttpOnly; SameSite=Strict"


def test_instructions_json() -> None:
    body = instructions(
        session_id=SID,
        refresh_url="/auth/dbsc/refresh",
        credentials=[("b", "Path=/; Secure; HttpOnly; SameSite=Lax")],
        exclude_paths=("/static",),
        host="app.test",
    )
    assert body == {
        "session_identifier": SID,
        "refresh_url": "/auth/dbsc/refresh",
        "scope": {
            "include_site": False,
            "scope_specification": [{"type": "exclude", "path": "/static", "domain": "app.test"}],
        },
        "credentials": [
            {"type": "cookie", "name": "b", "attributes": "Path=/; Secure; HttpOnly; SameSite=Lax"}
        ],
    }
    odd = instructions(session_id=SID, refresh_url="/r", credentials=[], exclude_paths=("/s",),
                       host="evil host\r\n")  # fmt: skip
    assert odd["scope"]["scope_specification"] == [{"type": "exclude", "path": "/s"}]


# -- policy, binding, admission -------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bound_ttl": timedelta(0)},
        {"challenge_ttl": timedelta(0)},
        {"unbound": timedelta(seconds=-1)},
        {"pending": timedelta(minutes=2)},
        {"leeway": timedelta(minutes=6)},
        {"algorithms": ()},
        {"algorithms": "ES256"},
        {"algorithms": ("ES256", "none")},
        {"registration_path": "relative"},
        {"registration_path": "//host/x"},
        {"refresh_path": "/a;b"},
        {"exclude_paths": ("/ok", "/with space")},
        {"cookie_name": "bad name"},
    ],
)
def test_policy_refuses_contradictions(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        DbscPolicy(**kwargs)


def test_binding_round_trip_and_garbage() -> None:
    binding = Binding(jwk={"kty": "EC"}, alg="ES256", jkt="t", bound_at=NOW, last_challenge=5)
    assert Binding.from_data(binding.to_data()) == binding
    data = binding.to_data()
    garbage = (None, 1, "x", {}, {**data, "alg": "none"}, {**data, "ch": True},
               {**data, "jwk": {"x": 1}})  # fmt: skip
    for value in garbage:
        assert Binding.from_data(value) is None


DEFAULT = DbscPolicy()


def _admit(claims: dict[str, Any], cookie: str | None, now: float,
           policy: DbscPolicy = DEFAULT, hybrid: bool = False) -> Admission:  # fmt: skip
    return admission(claims, session_id=SID, auth_time=NOW, bound_cookie=cookie, now=now,
                     policy=policy, cookies=None if hybrid else BoundCookies(SECRET))  # fmt: skip


def test_admission_table() -> None:
    cookie = BoundCookies(SECRET).make(SID, NOW + 600)
    bound = {BINDING_KEY: Binding(jwk={}, alg="ES256", jkt="t", bound_at=NOW).to_data()}
    strict = DbscPolicy(unbound=timedelta(minutes=1))
    assert _admit({}, None, NOW + 10**6) is Admission.ADMIT  # unbound, no limit: as today
    assert _admit({}, None, NOW + 59, strict) is Admission.ADMIT
    assert _admit({}, None, NOW + 61, strict) is Admission.UNBOUND_TOO_LONG
    assert _admit(bound, cookie, NOW + 100) is Admission.ADMIT
    assert _admit(bound, None, NOW + 4) is Admission.ADMIT  # registration still settling
    assert _admit(bound, None, NOW + 6) is Admission.MISSING_BOUND_COOKIE
    assert _admit(bound, cookie, NOW + 606) is Admission.MISSING_BOUND_COOKIE
    assert _admit(bound, "forged.cookie", NOW + 100) is Admission.MISSING_BOUND_COOKIE
    # Hybrid: the access token is the bound cookie; its claim says it is bound.
    assert _admit({BOUND_CLAIM: "t"}, None, NOW + 61, strict, hybrid=True) is Admission.ADMIT
    assert _admit({}, None, NOW + 61, strict, hybrid=True) is Admission.UNBOUND_TOO_LONG
