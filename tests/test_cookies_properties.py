"""Property tests for coatcheck.cookies: the parser never raises, dump -> parse round-trips."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.cookies import MAX_COOKIE_COUNT, dump_cookie, find_cookie, parse_cookie
from coatcheck.errors import CookieError
from coatcheck.policies import CookiePolicy

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
COOKIE_OCTETS = "".join(
    chr(c) for c in [0x21, *range(0x23, 0x2C), *range(0x2D, 0x3B), *range(0x3C, 0x5C),
                     *range(0x5D, 0x7F)]
)

names = st.text(alphabet=TCHARS, min_size=1, max_size=40)
values = st.text(alphabet=COOKIE_OCTETS, max_size=200)
# Text rich in the characters that matter to a Cookie header, plus anything at all.
header_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list(';= "\t,\\\x00\x7fa1é')), max_size=200),
    st.lists(
        st.tuples(st.text(max_size=12), st.sampled_from(["=", "", "=="]), st.text(max_size=20)),
        max_size=30,
    ).map(lambda pairs: "; ".join(f"{n}{eq}{v}" for n, eq, v in pairs)),
)
policies = st.builds(
    CookiePolicy,
    path=st.sampled_from(["/", "/app", "/a/b"]),
    domain=st.sampled_from([None, "example.com"]),
    same_site=st.sampled_from(["lax", "strict"]),
    http_only=st.booleans(),
)


@settings(max_examples=300)
@given(header_text)
def test_parse_never_raises_and_is_bounded(header: str) -> None:
    parsed = parse_cookie(header)
    assert isinstance(parsed, dict)
    assert len(parsed) <= MAX_COOKIE_COUNT
    for name, value in parsed.items():
        assert isinstance(name, str)
        assert isinstance(value, str)
        assert name
        assert ";" not in name
        assert ";" not in value
        assert "=" not in name


@settings(max_examples=300)
@given(names, values, policies, st.one_of(st.none(), st.integers(0, 10**9)))
def test_dump_then_parse_round_trips(
    name: str, value: str, policy: CookiePolicy, max_age: int | None
) -> None:
    try:
        header = dump_cookie(name, value, policy, max_age=max_age, now=1_800_000_000.0)
    except CookieError:
        # Only a prefix rule or the size cap may refuse a legal name and value.
        assert name[:9].lower().startswith(("__host-", "__secure-")) or len(name + value) > 4096
        return
    pair = header.split(";", 1)[0]
    assert parse_cookie(pair) == {name: value}
    assert parse_cookie(f"zz-other=1; {pair}; {name}=shadowed")[name] == value


@settings(max_examples=300)
@given(names, values)
def test_quoted_values_round_trip_to_their_content(name: str, value: str) -> None:
    # The default policy (Secure, Path=/, no Domain) satisfies every prefix rule.
    header = dump_cookie(name, f'"{value}"')
    assert parse_cookie(header.split(";", 1)[0]) == {name: value}


@settings(max_examples=300)
@given(st.text(max_size=50), st.text(max_size=100))
def test_dump_raises_only_cookie_error(name: str, value: str) -> None:
    try:
        header = dump_cookie(name, value)
    except CookieError:
        return
    # Whatever is accepted is one header line that parses back exactly.
    assert "\r" not in header
    assert "\n" not in header
    quoted = len(value) >= 2 and value[0] == value[-1] == '"'
    assert parse_cookie(header.split(";", 1)[0]) == {name: value[1:-1] if quoted else value}


@settings(max_examples=500)
@given(header_text, st.one_of(names, st.sampled_from(["a", "session", "1", "é"])))
def test_find_cookie_agrees_with_parse_cookie(header: str, name: str) -> None:
    assert find_cookie(header, name) == parse_cookie(header, unique=True).get(name)


@settings(max_examples=200)
@given(st.lists(st.tuples(names, values), min_size=1, max_size=120), st.integers(0, 119))
def test_find_cookie_agrees_near_the_count_bound(pairs: list[tuple[str, str]], pick: int) -> None:
    header = "; ".join(f"{n}={v}" for n, v in pairs)
    name = pairs[pick % len(pairs)][0]
    assert find_cookie(header, name) == parse_cookie(header, unique=True).get(name)


def test_find_cookie_edge_cases_match_the_parser() -> None:
    cases = [
        "other=session; session=b",  # the name inside another cookie's value
        "session=\x01bad; session=good",  # a pair with a control character is skipped
        "session; session=v",  # a pair without "=" is skipped
        ' session = "quoted" ; session=second',
        "xsession=1; sessionx=2",
        "session=",
        "",
    ]
    for header in cases:
        expected = parse_cookie(header, unique=True).get("session")
        assert find_cookie(header, "session") == expected, header
    assert find_cookie("=v", "") is None
    assert find_cookie(None, "session") is None
