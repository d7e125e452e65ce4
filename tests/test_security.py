"""The usual holes (issue 5, item 5): open redirects, cookie tossing, secrets in logs and reprs."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coatcheck._forms import form_field
from coatcheck.auth import Authenticator, CookieTransport, JWTStrategy, SessionStrategy
from coatcheck.cookies import dump_cookie
from coatcheck.csrf import CsrfProtector
from coatcheck.errors import CookieError, CsrfError
from coatcheck.policies import CookiePolicy
from coatcheck.ratelimit import LoginLimiter
from coatcheck.redirects import is_safe_redirect, safe_redirect
from coatcheck.secret import Secret, SecretRing
from coatcheck.sessions import SessionManager
from coatcheck.signing import Signer
from coatcheck.stores import MemoryStore, open_store
from coatcheck.tokens import JWTCodec, Key, KeyRing

from ._net import free_port

# -- open redirects ------------------------------------------------------------------------

_UNSAFE = [
    "//evil.example", "///evil.example", "/\\evil.example", "\\/evil.example", "\\\\evil",
    "https://evil.example", "http:evil.example", "HTTPS://evil.example", "javascript:alert(1)",
    "JaVaScRiPt:alert(1)", "data:text/html,x", "vbscript:x", "evil.example", "./x", "?x=1",
    "/%2F%2Fevil.example", "/%2f%2fevil.example", "/%2fevil.example", "/%5Cevil.example",
    "/%5cevil", "%2F%2Fevil.example", "/\t/evil.example", "/\n/evil.example", "/\r/evil",
    "/%09/evil.example", "/%0a/evil.example", "/%0d%0aSet-Cookie:x=y", " /x", "/x ", "\x00/x",
    "/\x00", "/caf\u00e9", "/\u2028", "/%E2%80%A8", "", "/" + "a" * 2048,
]  # fmt: skip
_SAFE = ["/", "/sessions", "/a/b?c=d&e=f#g", "/search?q=a%20b", "/caf%C3%A9", "/a//b", "/@x"]


@pytest.mark.parametrize("target", _UNSAFE)
def test_unsafe_redirects_fall_back(target: str) -> None:
    assert not is_safe_redirect(target)
    assert safe_redirect(target) == "/"
    assert safe_redirect(target, default="/home") == "/home"


@pytest.mark.parametrize("target", _SAFE)
def test_same_origin_paths_are_kept(target: str) -> None:
    assert is_safe_redirect(target)
    assert safe_redirect(target) == target


@pytest.mark.parametrize("target", [None, 1, b"/x", ["/x"], object()])
def test_non_strings_are_unsafe(target: object) -> None:
    assert safe_redirect(target) == "/"


# -- form field reader (the CSRF middleware's) never raises ----------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"csrf_token=abc", "application/x-www-form-urlencoded", "abc"),
        (b"csrf_token=a%2Bb+c", "application/x-www-form-urlencoded; charset=utf-8", "a+b c"),
        (b"x=1&csrf%5Ftoken=abc", "application/x-www-form-urlencoded", "abc"),
        (b"csrf_token", "application/x-www-form-urlencoded", ""),
        (b"\xff\xfe=\x00&csrf_token=%FF", "application/x-www-form-urlencoded", "\ufffd"),
        (b"a=1&" * 2000 + b"csrf_token=late", "application/x-www-form-urlencoded", None),
        (b"csrf_token=abc", "text/plain", None),
        (b"--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nv\r\n--b--",
         'multipart/form-data; boundary="b"', "v"),
        (b"--b\r\n\r\n\r\n--b--", "multipart/form-data; boundary=b", None),
        (b"garbage", "multipart/form-data; boundary=" + "x" * 71, None),
        (b"", "", None),
    ],
)
def test_form_field(body: bytes, content_type: str, expected: str | None) -> None:
    assert form_field(body, content_type, "csrf_token") == expected


# -- cookie tossing: __Host- by default over HTTPS ------------------------------------------


def test_host_prefix_rules_are_enforced() -> None:
    assert dump_cookie("__Host-session", "v").startswith("__Host-session=v; Path=/; Secure")
    with pytest.raises(CookieError):
        dump_cookie("__Host-session", "v", CookiePolicy(domain="example.com"))
    with pytest.raises(CookieError):
        dump_cookie("__Host-session", "v", CookiePolicy(secure=False))
    with pytest.raises(CookieError):
        dump_cookie("__Host-session", "v", CookiePolicy(path="/app"))
    # The transport checks its clearing header at construction, so a bad pair fails early.
    with pytest.raises(CookieError):
        CookieTransport("__Host-session", CookiePolicy(domain="example.com"))


def test_csrf_cookies_default_to_host_prefix() -> None:
    from coatcheck.adapters.csrf import CsrfMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    secure = CsrfMiddleware(app, CsrfProtector("k" * 32))  # default policy: Secure
    assert secure.cookie_names == ("__Host-csrf_pre", "__Host-csrf")
    plain = CsrfMiddleware(app, CsrfProtector("k" * 32), cookie_policy=CookiePolicy(secure=False))
    assert plain.cookie_names == ("csrf_pre", "csrf")


def test_demo_https_proxy_flag_gives_host_prefixed_secure_cookies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import coatcheck.demo as demo
    from coatcheck.cli.main import main

    built: list[Any] = []
    real_create = demo.create_app

    def create(config: Any) -> Any:
        built.append(real_create(config))
        return built[-1]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "create_app", create)
    monkeypatch.setattr(demo, "serve", lambda app, **kw: None)
    for mode in ("session", "jwt", "hybrid"):
        assert main(["demo", "--https-proxy", "--store", "memory://", "--mode", mode]) == 0
        context = built[-1].state.demo
        assert context.config.https
        cookie = context.cookie
        assert cookie.policy.secure
        # Every credential cookie that can be __Host- is (issue 12); hybrid's refresh
        # cookie needs a narrow Path, which __Host- forbids, so it is __Secure- (and bound).
        assert cookie.cookie_name.startswith("__Host-")
        if mode == "hybrid":
            assert cookie.refresh_name.startswith("__Secure-")
    assert main(["demo", "--store", "memory://"]) == 0
    assert not built[-1].state.demo.cookie.cookie_name.startswith("__")


# -- reprs and error messages never show a secret -------------------------------------------

SECRET = "S3cr3t-" + "q" * 40
PASSWORD = "hunter2-hunter2"


@pytest.mark.anyio
async def test_reprs_hide_secrets() -> None:
    key = Key.from_secret(SECRET.encode())
    codec = JWTCodec(KeyRing([key]))
    manager = SessionManager(MemoryStore())
    authenticator = Authenticator(SessionStrategy(manager))
    login = await authenticator.login("u1", headers={})
    jwt = JWTStrategy(codec)
    issued = await jwt.issue("u1")
    private = Key.generate("ES256")
    objects: list[object] = [
        Secret(SECRET), SecretRing([SECRET]), key, KeyRing([key]), private, codec,
        Signer(SECRET, namespace="n"), CsrfProtector(SECRET), LoginLimiter(MemoryStore(),
        secret=SECRET), authenticator, login.issued, issued, issued.identity, jwt,
        open_store(f"redis://user:{PASSWORD}@127.0.0.1:6379/15"),
        open_store(f"postgresql://u:{PASSWORD}@127.0.0.1:5432/test"),
    ]  # fmt: skip
    private_d = str(private.to_jwk(private=True)["d"])
    for obj in objects:
        for text in (repr(obj), str(obj)):
            for secret in (SECRET, PASSWORD, login.token, issued.token, private_d):
                assert secret not in text, f"{type(obj).__name__} shows a secret"


@pytest.mark.anyio
async def test_login_and_auth_result_reprs_hide_the_cookie() -> None:
    authenticator = Authenticator(SessionStrategy(SessionManager(MemoryStore())))
    login = await authenticator.login("u1", headers={})
    result = await authenticator.authenticate({"cookie": f"session={login.token}"})
    assert login.token not in repr(login)
    assert login.token not in repr(result)


def test_error_messages_never_echo_the_token() -> None:
    protector = CsrfProtector(SECRET)
    token = protector.issue("b")
    for call in (
        lambda: protector.verify_token(token, "other"),
        lambda: protector.verify_double_submit(token, token[:-1] + "A", "b"),
        lambda: protector.check_origin("POST", {"origin": token}, own_origin=""),
    ):
        with pytest.raises(CsrfError) as caught:
            call()
        assert token not in str(caught.value)
        assert token not in repr(caught.value)


# -- logs: a full flow under uvicorn with access logging at DEBUG --------------------------


_CLIENT_LOGGERS = {"httpx", "httpcore"}


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in _CLIENT_LOGGERS:
            return  # the test's own HTTP client logs what it received, cookies included
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


@pytest.fixture
def capture() -> Iterator[_Capture]:
    handler = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


_TOKEN_RE = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]+)"')


@pytest.mark.parametrize("mode", ["session", "jwt", "hybrid"])
def test_no_secret_reaches_the_logs(tmp_path: Path, capture: _Capture, mode: str) -> None:
    import uvicorn
    from argon2 import PasswordHasher

    from coatcheck.demo import DemoConfig, create_app

    users = tmp_path / "users.db"
    config = DemoConfig(
        mode=mode, store_url=f"sqlite:///{tmp_path / 's.db'}", users_path=str(users),
        hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )  # fmt: skip
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config), host="127.0.0.1", port=port, log_level="debug",
            access_log=True, log_config=None, lifespan="on",
        )
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    seen: set[str] = {PASSWORD}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:

            def token() -> str:
                page = browser.get("/")
                match = _TOKEN_RE.search(page.text)
                assert match is not None
                seen.add(match.group(1))
                return match.group(1)

            account = {"username": "alice", "password": PASSWORD, "name": "Alice"}
            browser.post("/register", data={**account, "csrf_token": token()})
            browser.post("/login", data={"username": "alice", "password": "wrong-" + PASSWORD,
                                         "csrf_token": token()})  # fmt: skip
            login = browser.post(
                "/login", data={"username": "alice", "password": PASSWORD, "remember": "on",
                                "csrf_token": token()},
            )  # fmt: skip
            assert login.status_code == 303
            seen.update(v for v in browser.cookies.values())
            assert browser.get("/api/me").status_code == 200
            browser.post("/logout", data={"csrf_token": token()})
            api = browser.post("/api/login", json={"username": "alice", "password": PASSWORD})
            body = api.json()
            seen.update(v for k, v in body.items() if k in ("token", "refresh_token"))
            bearer = {"Authorization": f"Bearer {body['token']}"}
            assert browser.get("/api/me", headers=bearer).status_code == 200
            browser.get("/api/me", headers={"Authorization": "Bearer " + "x" * 40})
            browser.get("/", headers={"Cookie": "coatcheck_session=" + PASSWORD})
            browser.post("/api/logout", headers=bearer)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    conn = sqlite3.connect(users)
    seen.update(row[0] for row in conn.execute("SELECT value FROM demo_secrets"))
    conn.close()
    seen.discard("")
    assert any("POST /login" in line for line in capture.lines)  # access log was on
    assert any("uvicorn" in line for line in capture.lines)
    log = "\n".join(capture.lines)
    for secret in seen:
        assert secret not in log, "a secret, token or cookie value reached the logs"
