"""coatcheck's Cookie-header parser against the npm ``cookie`` package Express uses (0.7).

They agree on real-world headers once values are percent-decoded. The deliberate
differences, each pinned below:

* Percent-decoding: ``cookie.parse`` runs ``decodeURIComponent`` on every value;
  ``parse_cookie`` returns values as sent (so two spellings of one value never
  compare equal) and ``unquote_cookie_value`` does the decoding for interop.
* A pair with an empty name (``=x``) or a space or control character in the name is
  skipped by coatcheck; ``cookie`` keeps it (browsers never send such a name).
* Values with control characters are skipped by coatcheck; ``cookie`` keeps them.
* Only space and tab are trimmed (RFC 6265bis §5.4); JavaScript's ``trim()`` also
  drops other Unicode white space.
"""

from __future__ import annotations

from coatcheck.cookies import parse_cookie, unquote_cookie_value

from .conftest import NodeRunner, ok

CORPUS = [
    # Google Analytics, consent managers, Cloudflare
    "_ga=GA1.1.1234567890.1700000000; _ga_ABC123XYZ=GS1.1.1700000000.1.1.1700000100.0.0.0; "
    "_gid=GA1.2.987654321.1700000000",
    "__cf_bm=Vq1.abc_DEF-123=.-1700000000-0-AbCdEfGh/IjKl+MnOp==; "
    "cf_clearance=xyz.abc-1700000000-0-150",
    "OptanonConsent=isGpcEnabled=0&datestamp=Mon+Nov+20+2023+10%3A00%3A00+GMT%2B0100&version=202310.1.0"
    "&groups=C0001%3A1%2CC0002%3A0; OptanonAlertBoxClosed=2023-11-20T09:00:00.000Z",
    # Express, Auth.js, Django, Rails, PHP, ASP.NET, Laravel
    "connect.sid=s%3AZx9-_Qp0wEr1tY2uI3oP4aS5dF6gH7jK.pqHYfkcRFoBYBMTReEIdR7rQIXCT8YmRYmtxOwIjY6s",
    "authjs.csrf-token=3f1c%7C9a8b; authjs.callback-url=http%3A%2F%2Flocalhost%3A3000%2Fdashboard; "
    "authjs.session-token=eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0..abc.def.ghi",
    "csrftoken=AbCdEf0123456789AbCdEf0123456789; sessionid=k3j4h5g6f7d8s9a0",
    "_myapp_session=bGtqaGdmZHNh--0123456789abcdef; remember_user_token=W1sxXSwiJDJhJDEyJCJd--abc",
    "PHPSESSID=abc123def456; XSRF-TOKEN=eyJpdiI6IkFCQyIsInZhbHVlIjoiREVGIn0%3D; "
    "laravel_session=eyJpdiI6In0%3D",
    ".AspNetCore.Cookies=CfDJ8ABC-_def; ARRAffinity=0123abcd; ARRAffinitySameSite=0123abcd",
    # cookie-parser JSON cookies, quoting, padding, '=' inside values
    "prefs=j%3A%7B%22theme%22%3A%22dark%22%2C%22lang%22%3A%22fr%22%7D; flag=1",
    'quoted="hello world"; empty=""; plain=x',
    "b64=SGVsbG8gV29ybGQ=; b64pad=YQ==; eq=a=b=c",
    # spacing, empty values, duplicates (first wins in both), stray separators
    "a=1;b=2;  c = 3 ; d=",
    "dup=first; dup=second; other=1",
    ";; leading=1; ;trailing=2;",
    "flag; name=value; another",
    # percent-encoded UTF-8 and malformed escapes (decodeURIComponent throws: value kept)
    "utf=%E2%9C%93%20ok; bad=%E0%A4%A; pct=100%; lone=%zz",
    "emoji=%F0%9F%8D%AA; plus=a+b; slash=a%2Fb",
]

# Headers the two parse differently on purpose: (header, what cookie.parse adds or changes).
DIFFERENT = [
    ("=orphan; ok=1", {"": "orphan"}),
    ("a b=1; ok=1", {"a b": "1"}),
    ("ctl=a\x01b; ok=1", {"ctl": "a\x01b"}),
]


def _ours(header: str) -> dict[str, str]:
    return {name: unquote_cookie_value(value) for name, value in parse_cookie(header).items()}


def test_parse_cookie_agrees_with_the_cookie_package(node_express: NodeRunner) -> None:
    theirs, = node_express({"op": "cookie.parse", "headers": CORPUS})
    for header, expected in zip(CORPUS, ok(theirs), strict=True):
        assert _ours(header) == expected, header


def test_values_are_not_percent_decoded_by_parse_cookie(node_express: NodeRunner) -> None:
    header = "connect.sid=s%3Aabc.def; utf=%E2%9C%93"
    theirs, = node_express({"op": "cookie.parse", "headers": [header]})
    assert ok(theirs)[0] == {"connect.sid": "s:abc.def", "utf": "\u2713"}
    assert parse_cookie(header) == {"connect.sid": "s%3Aabc.def", "utf": "%E2%9C%93"}


def test_documented_differences(node_express: NodeRunner) -> None:
    theirs, = node_express({"op": "cookie.parse", "headers": [h for h, _ in DIFFERENT]})
    for (header, extra), parsed in zip(DIFFERENT, ok(theirs), strict=True):
        assert _ours(header) == {"ok": "1"}
        assert parsed == {**extra, "ok": "1"}


def test_coatcheck_set_cookie_round_trips_through_cookie_parse(node_express: NodeRunner) -> None:
    from coatcheck.cookies import dump_cookie
    from coatcheck.policies import CookiePolicy

    line = dump_cookie("__Host-session", "abc.DEF-123_x", CookiePolicy(), max_age=60, now=0)
    theirs, = node_express({"op": "cookie.parse", "headers": [line.split(";", 1)[0]]})
    assert ok(theirs)[0] == {"__Host-session": "abc.DEF-123_x"}
