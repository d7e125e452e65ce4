"""coatcheck.cookies: strict Set-Cookie building, lenient Cookie parsing."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from coatcheck import cookies
from coatcheck.clock import FrozenClock
from coatcheck.cookies import (
    MAX_COOKIE_COUNT,
    MAX_COOKIE_HEADER,
    dump_cookie,
    expire_cookie,
    find_cookie,
    parse_cookie,
    prefixed_name,
    unquote_cookie_value,
)
from coatcheck.errors import ConfigurationError, CookieError
from coatcheck.policies import CookiePolicy

NOW = 1_800_000_000.0  # Fri, 15 Jan 2027 08:00:00 GMT
DEFAULT_ATTRS = "; Path=/; Secure; HttpOnly; SameSite=Lax"


def test_all_is_sorted_and_complete() -> None:
    assert cookies.__all__ == sorted(cookies.__all__)
    public = {n for n in vars(cookies) if not n.startswith("_") and n.isidentifier()}
    defined_here = {
        n for n in public if getattr(getattr(cookies, n), "__module__", None) == cookies.__name__
    }
    assert defined_here <= set(cookies.__all__)


# --- dump_cookie ---------------------------------------------------------------------


def test_dump_defaults_are_a_secure_session_cookie() -> None:
    assert dump_cookie("sid", "abc") == "sid=abc" + DEFAULT_ATTRS


def test_dump_with_max_age_adds_max_age_and_expires(clock: FrozenClock) -> None:
    header = dump_cookie("sid", "abc", max_age=3600, now=clock.now())
    assert header == (
        "sid=abc; Max-Age=3600; Expires=Fri, 15 Jan 2027 09:00:00 GMT" + DEFAULT_ATTRS
    )
    expires = header.split("Expires=")[1].split(";")[0]
    assert parsedate_to_datetime(expires).timestamp() == clock.now() + 3600


def test_dump_max_age_zero() -> None:
    assert dump_cookie("sid", "abc", max_age=0, now=NOW) == (
        "sid=abc; Max-Age=0; Expires=Fri, 15 Jan 2027 08:00:00 GMT" + DEFAULT_ATTRS
    )


def test_dump_caps_max_age_at_400_days_as_browsers_do() -> None:
    header = dump_cookie("sid", "abc", max_age=10 * 365 * 86400, now=NOW)
    assert "Max-Age=34560000;" in header
    assert "Expires=Sat, 19 Feb 2028 08:00:00 GMT" in header


def test_dump_without_now_uses_the_system_clock() -> None:
    header = dump_cookie("sid", "abc", max_age=60)
    expires = header.split("Expires=")[1].split(";")[0]
    assert expires.endswith(" GMT")
    assert parsedate_to_datetime(expires).year >= 2025


@pytest.mark.parametrize("max_age", [-1, -3600, True, False, 1.5, "60"])
def test_dump_refuses_bad_max_age(max_age: Any) -> None:
    with pytest.raises(CookieError):
        dump_cookie("sid", "abc", max_age=max_age, now=NOW)


@pytest.mark.parametrize(
    ("policy", "attrs"),
    [
        (CookiePolicy(), "; Path=/; Secure; HttpOnly; SameSite=Lax"),
        (CookiePolicy(same_site="strict"), "; Path=/; Secure; HttpOnly; SameSite=Strict"),
        (CookiePolicy(same_site="none"), "; Path=/; Secure; HttpOnly; SameSite=None"),
        (
            CookiePolicy(same_site="none", partitioned=True),
            "; Path=/; Secure; HttpOnly; SameSite=None; Partitioned",
        ),
        (CookiePolicy(secure=False, http_only=False), "; Path=/; SameSite=Lax"),
        (
            CookiePolicy(path="/app", domain="example.com"),
            "; Path=/app; Domain=example.com; Secure; HttpOnly; SameSite=Lax",
        ),
        (
            CookiePolicy(domain=".example.com"),
            "; Path=/; Domain=.example.com; Secure; HttpOnly; SameSite=Lax",
        ),
    ],
)
def test_dump_attributes(policy: CookiePolicy, attrs: str) -> None:
    assert dump_cookie("sid", "v", policy) == "sid=v" + attrs
    assert expire_cookie("sid", policy) == (
        "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT" + attrs
    )


@pytest.mark.parametrize(
    "name",
    [
        "sid",
        "SID_2",
        "a",
        "!#$%&'*+-.^_`|~",
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        "__Host-sid",
        "__Secure-sid",
        "_Host-sid",  # not a prefix
        "__Host",  # not a prefix without the dash
    ],
)
def test_dump_accepts_token_names(name: str) -> None:
    assert dump_cookie(name, "v").startswith(f"{name}=v;")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a b",
        "a;b",
        "a=b",
        "a,b",
        "a\tb",
        "a\x00",
        "a\x7f",
        '"a"',
        "a(b)",
        "a/b",
        "[a]",
        "{a}",
        "a@b",
        "a:b",
        "a?b",
        "a<b>",
        "a\\b",
        "é",
        "a\nSet-Cookie: x=y",
        " a",
    ],
)
def test_dump_refuses_illegal_names(name: str) -> None:
    with pytest.raises(CookieError):
        dump_cookie(name, "v")
    with pytest.raises(CookieError):
        expire_cookie(name)


@pytest.mark.parametrize(
    "value",
    [
        "",
        '""',
        '"abc"',
        "abc=def",
        "!#$%&'()*+-./:<=>?@[]^_`{|}~",
        "s%3Aabc.def",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_",
    ],
)
def test_dump_accepts_cookie_octet_values(value: str) -> None:
    assert dump_cookie("sid", value).startswith(f"sid={value};")


@pytest.mark.parametrize(
    "value",
    [
        "a b",
        'a"b',
        "a,b",
        "a;b",
        "a\\b",
        "é",
        "\x7f",
        "\x00",
        "a\tb",
        "a\r\nSet-Cookie: evil=1",
        'a"',
        '"a',
        '"a b"',
        '"a"b"',
        " a",
    ],
)
def test_dump_refuses_illegal_values(value: str) -> None:
    with pytest.raises(CookieError):
        dump_cookie("sid", value)


def test_dump_error_message_never_contains_the_value() -> None:
    with pytest.raises(CookieError) as info:
        dump_cookie("sid", "secret-token-value;oops")
    assert "secret-token-value" not in str(info.value)


def test_dump_refuses_non_str_input() -> None:
    with pytest.raises(CookieError):
        dump_cookie("sid", b"abc")  # type: ignore[arg-type]
    with pytest.raises(CookieError):
        dump_cookie(b"sid", "abc")  # type: ignore[arg-type]


def test_dump_size_limit_is_name_plus_value_4096() -> None:
    assert dump_cookie("sid", "x" * (4096 - 3))
    with pytest.raises(CookieError):
        dump_cookie("sid", "x" * (4096 - 2))
    with pytest.raises(CookieError):
        dump_cookie("n" * 4000, "x" * 97)


# Prefix rules, RFC 6265bis §4.1.3, matched case-insensitively.
@pytest.mark.parametrize(
    ("name", "policy", "ok"),
    [
        ("__Host-sid", CookiePolicy(), True),
        ("__Host-sid", CookiePolicy(same_site="strict"), True),
        ("__Host-sid", CookiePolicy(secure=False), False),
        ("__Host-sid", CookiePolicy(path="/app"), False),
        ("__Host-sid", CookiePolicy(domain="example.com"), False),
        ("__host-sid", CookiePolicy(secure=False), False),
        ("__HOST-sid", CookiePolicy(domain="example.com"), False),
        ("__hOsT-sid", CookiePolicy(path="/x"), False),
        ("__Secure-sid", CookiePolicy(), True),
        ("__Secure-sid", CookiePolicy(domain="example.com", path="/app"), True),
        ("__Secure-sid", CookiePolicy(secure=False), False),
        ("__secure-sid", CookiePolicy(secure=False), False),
        ("__SECURE-sid", CookiePolicy(secure=False), False),
        ("__Host-Http-sid", CookiePolicy(secure=False), False),
        ("_Host-sid", CookiePolicy(secure=False), True),
        ("__Hostsid", CookiePolicy(secure=False), True),
        ("x__Host-sid", CookiePolicy(secure=False), True),
        ("sid", CookiePolicy(secure=False, path="/a", domain="example.com"), True),
    ],
)
def test_prefix_rules(name: str, policy: CookiePolicy, ok: bool) -> None:
    if ok:
        assert dump_cookie(name, "v", policy).startswith(f"{name}=v;")
        assert expire_cookie(name, policy).startswith(f"{name}=;")
    else:
        with pytest.raises(CookieError):
            dump_cookie(name, "v", policy)
        with pytest.raises(CookieError):
            expire_cookie(name, policy)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"path": "/a;b"},
        {"path": "/a\x00"},
        {"path": "/a\nb"},
        {"path": "/a b"},
        {"path": "/é"},
        {"path": "/" + "a" * 1024},
        {"domain": ""},
        {"domain": "example.com; Secure"},
        {"domain": "exa\rmple.com"},
        {"domain": "example com"},
        {"domain": "exämple.com"},
        {"domain": "a" * 1025},
    ],
)
def test_dump_refuses_illegal_attribute_values(kwargs: dict[str, str]) -> None:
    policy = CookiePolicy(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(CookieError):
        dump_cookie("sid", "v", policy)
    with pytest.raises(CookieError):
        expire_cookie("sid", policy)


def test_attribute_value_of_1024_chars_is_accepted() -> None:
    policy = CookiePolicy(path="/" + "a" * 1023)
    assert "; Path=/aaa" in dump_cookie("sid", "v", policy)


def test_policy_refuses_same_site_none_and_partitioned_without_secure() -> None:
    with pytest.raises(ConfigurationError):
        CookiePolicy(same_site="none", secure=False)
    with pytest.raises(ConfigurationError):
        CookiePolicy(partitioned=True, secure=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [("secure", False), ("same_site", "bogus")],
)
def test_dump_rechecks_a_policy_altered_after_validation(field: str, value: object) -> None:
    # Defence in depth: a frozen policy forced into a contradictory state is still refused.
    policy = CookiePolicy(same_site="none", partitioned=True)
    object.__setattr__(policy, field, value)
    with pytest.raises(CookieError):
        dump_cookie("sid", "v", policy)


def test_partitioned_without_secure_is_refused_even_if_forced() -> None:
    policy = CookiePolicy(partitioned=True)
    object.__setattr__(policy, "secure", False)
    with pytest.raises(CookieError):
        dump_cookie("sid", "v", policy)


# --- parse_cookie --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, {}),
        ("", {}),
        (";", {}),
        (" ; ;; ", {}),
        ("a=1", {"a": "1"}),
        ("a=1; b=2", {"a": "1", "b": "2"}),
        ("a=1;b=2", {"a": "1", "b": "2"}),
        ("  a = 1 ;\tb=2\t", {"a": "1", "b": "2"}),
        ('a="quoted"', {"a": "quoted"}),
        ('a=""', {"a": ""}),
        ('a=" spaced "', {"a": " spaced "}),
        ('a="', {"a": '"'}),
        ('a="x', {"a": '"x'}),
        ('a=x"', {"a": 'x"'}),
        ('a="b"c"', {"a": 'b"c'}),
        ("a=1; a=2", {"a": "1"}),
        ("a=; b=1", {"a": "", "b": "1"}),
        ("a=b=c", {"a": "b=c"}),
        ("a==", {"a": "="}),
        ("novalue; a=1", {"a": "1"}),
        ("=foo; a=1", {"a": "1"}),
        (" =foo", {}),
        ("a=%20%3B", {"a": "%20%3B"}),
        ("a=s%3Aabc.def", {"a": "s%3Aabc.def"}),
        ("a=\x00b; c=1", {"c": "1"}),
        ("a\x01=b; c=1", {"c": "1"}),
        ("a=b\x7f; c=1", {"c": "1"}),
        ("a=x\ny; c=1", {"c": "1"}),
        ("a b=1; c=2", {"c": "2"}),
        ("a=1 2", {"a": "1 2"}),
        ("a=\u00e9", {"a": "\u00e9"}),
        ("\u00e9=1", {"\u00e9": "1"}),
        ("a=1,b=2", {"a": "1,b=2"}),
        ("__Host-sid=abc; __Secure-x=y", {"__Host-sid": "abc", "__Secure-x": "y"}),
        ("a=\x00; a=2", {"a": "2"}),
        ("$Version=1; a=1", {"$Version": "1", "a": "1"}),
    ],
)
def test_parse_table(header: str | None, expected: dict[str, str]) -> None:
    assert parse_cookie(header) == expected


@pytest.mark.parametrize("header", [b"a=1", 42, ["a=1"], object()])
def test_parse_non_str_is_empty(header: Any) -> None:
    assert parse_cookie(header) == {}


def test_parse_count_is_bounded() -> None:
    header = "; ".join(f"c{i}={i}" for i in range(MAX_COOKIE_COUNT + 50))
    assert len(header) < MAX_COOKIE_HEADER
    parsed = parse_cookie(header)
    assert len(parsed) == MAX_COOKIE_COUNT
    assert list(parsed) == [f"c{i}" for i in range(MAX_COOKIE_COUNT)]


def test_parse_size_is_bounded_and_drops_the_cut_pair() -> None:
    pairs = [f"k{i}={'v' * 90}{i}" for i in range(200)]
    header = "; ".join(pairs)
    assert len(header) > MAX_COOKIE_HEADER
    parsed = parse_cookie(header)
    # Every cookie returned is whole; nothing past the bound is read.
    assert parsed
    for name, value in parsed.items():
        assert value == "v" * 90 + name[1:]
    total = sum(len(p) + 2 for p in pairs[: len(parsed)])
    assert total <= MAX_COOKIE_HEADER + 2
    assert f"k{len(parsed)}" not in parsed


def test_parse_size_bound_on_a_single_huge_cookie() -> None:
    assert parse_cookie("a=" + "x" * (MAX_COOKIE_HEADER + 10)) == {}
    assert parse_cookie("a=1; b=" + "x" * MAX_COOKIE_HEADER) == {"a": "1"}


def test_parse_keyword_bounds() -> None:
    assert parse_cookie("a=1; b=2; c=3", max_count=2) == {"a": "1", "b": "2"}
    assert parse_cookie("a=1; b=2; c=3", max_size=8) == {"a": "1", "b": "2"}
    assert parse_cookie("a=1; b=2; c=3", max_size=7) == {"a": "1"}


def test_parse_of_exactly_max_size_is_whole() -> None:
    header = "a=" + "x" * (MAX_COOKIE_HEADER - 2)
    assert parse_cookie(header) == {"a": "x" * (MAX_COOKIE_HEADER - 2)}


def test_parse_reads_what_dump_writes() -> None:
    set_cookie = dump_cookie("__Host-sid", "tok.en-_", max_age=60, now=NOW)
    pair = set_cookie.split(";")[0]
    assert parse_cookie(f"other=1; {pair}") == {"other": "1", "__Host-sid": "tok.en-_"}


# --- unquote_cookie_value ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        ("", ""),
        ("s%3Aabc.def", "s:abc.def"),
        ("%2B%2F%3D", "+/="),
        ("%C3%A9", "\u00e9"),
        ("%E9", "%E9"),  # not UTF-8: unchanged, like decodeURIComponent's catch in `cookie`
        ("%zz", "%zz"),
        ("100%", "100%"),
    ],
)
def test_unquote_cookie_value(value: str, expected: str) -> None:
    assert unquote_cookie_value(value) == expected


@pytest.mark.parametrize("now", [1e20, float("inf"), float("nan")])
def test_dump_refuses_an_unrepresentable_now(now: float) -> None:
    with pytest.raises(CookieError):
        dump_cookie("sid", "v", max_age=60, now=now)


# -- duplicated credential cookies (issue 12, item 1) -----------------------------------------

ATTACKER, VICTIM = "attacker.jwt.sig", "victim.jwt.sig"


@pytest.mark.parametrize(
    "header",
    [
        # The exact request of the issue: a sibling subdomain's cookie comes first.
        f"__Secure-coatcheck_access={ATTACKER}; __Secure-coatcheck_access={VICTIM}",
        f"__Secure-coatcheck_access={VICTIM}; __Secure-coatcheck_access={ATTACKER}",
        f"a=1; __Secure-coatcheck_access={ATTACKER}; b=2; __Secure-coatcheck_access={VICTIM}",
        f' __Secure-coatcheck_access = "{ATTACKER}" ;__Secure-coatcheck_access={VICTIM}',
        # A malformed copy still makes the name ambiguous: fail closed.
        f"__Secure-coatcheck_access={VICTIM}; __Secure-coatcheck_access=\x01{ATTACKER}",
        f"__Secure-coatcheck_access={VICTIM}; __Secure-coatcheck_access=",
        # The second copy past the parser's size bound is still seen.
        f"__Secure-coatcheck_access={ATTACKER}; pad={'x' * 9000}; __Secure-coatcheck_access=v",
        # ... and past its count bound.
        f"__Secure-coatcheck_access={ATTACKER}; "
        + "; ".join(f"c{i}=1" for i in range(150))
        + f"; __Secure-coatcheck_access={VICTIM}",
    ],
)
def test_a_credential_name_sent_twice_is_ambiguous(header: str) -> None:
    name = "__Secure-coatcheck_access"
    assert find_cookie(header, name) is None
    assert name not in parse_cookie(header, unique=True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"__Secure-coatcheck_access={VICTIM}", VICTIM),
        # The name inside another cookie's name or value is not a second copy.
        (f"x__Secure-coatcheck_access=1; __Secure-coatcheck_access={VICTIM}", VICTIM),
        (f"other=__Secure-coatcheck_access; __Secure-coatcheck_access={VICTIM}", VICTIM),
        (f"__Secure-coatcheck_access_csrf=1; __Secure-coatcheck_access={VICTIM}", VICTIM),
        # A pair without "=" is a nameless cookie's value, not a second name.
        (f"__Secure-coatcheck_access; __Secure-coatcheck_access={VICTIM}", VICTIM),
        # Names are case-sensitive (RFC 6265bis §5.7.3 compares them octet by octet).
        (f"__secure-coatcheck_access=1; __Secure-coatcheck_access={VICTIM}", VICTIM),
    ],
)
def test_one_copy_is_read(header: str, expected: str) -> None:
    assert find_cookie(header, "__Secure-coatcheck_access") == expected
    assert parse_cookie(header, unique=True)["__Secure-coatcheck_access"] == expected


def test_unique_keeps_the_other_cookies() -> None:
    header = "a=1; s=x; b=2; s=y; c=3"
    assert parse_cookie(header, unique=True) == {"a": "1", "b": "2", "c": "3"}
    assert parse_cookie(header) == {"a": "1", "s": "x", "b": "2", "c": "3"}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (CookiePolicy(), "__Host-sid"),
        (CookiePolicy(secure=False), "sid"),
        (CookiePolicy(path="/auth/refresh"), "__Secure-sid"),
        (CookiePolicy(domain="example.com"), "__Secure-sid"),
    ],
)
def test_prefixed_name_takes_the_strongest_prefix_the_policy_allows(
    policy: CookiePolicy, expected: str
) -> None:
    assert prefixed_name("sid", policy) == expected
    dump_cookie(expected, "v", policy)  # and the browser rules hold for it
