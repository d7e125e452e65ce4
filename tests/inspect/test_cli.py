"""``coatcheck inspect``: exit codes and output."""

from __future__ import annotations

import io
import json

import pytest

from coatcheck.cli.main import main
from coatcheck.interop.authjs import encode_authjs
from coatcheck.tokens import JWTCodec, Key

SECRET = "cli-test-secret-0123456789abcdef0123"


def test_read_verify_and_fail(capsys: pytest.CaptureFixture[str]) -> None:
    token = encode_authjs({"sub": "u"}, SECRET)
    assert main(["inspect", token]) == 0
    assert "Auth.js v5" in capsys.readouterr().out
    assert main(["inspect", token, "--secret", SECRET, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verification"]["status"] == "verified"
    assert data["payload"]["sub"] == "u"
    assert main(["inspect", token, "--secret", "wrong"]) == 1
    assert "failed" in capsys.readouterr().out


def test_stdin_and_unreadable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\x00garbage{"))
    assert main(["inspect", "-"]) == 0
    out = capsys.readouterr()
    assert "Unrecognised value" in out.out
    assert "Traceback" not in out.err


def test_usage_errors(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(["inspect"]) == 2
    assert main(["inspect", "x", "--key", str(tmp_path / "missing.pem")]) == 2
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    assert main(["inspect", "x", "--key", str(bad)]) == 2
    assert "not a PEM key" in capsys.readouterr().err


def test_jwt_without_a_key_says_it_is_not_verified(capsys: pytest.CaptureFixture[str]) -> None:
    token = JWTCodec(Key.generate("ES256")).encode({"sub": "u"})
    assert main(["inspect", token]) == 0
    assert "verification: not checked: signature not verified (no key given)" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("Set-Cookie: sid=1; HttpOnly; SameSite=None", 1),  # error: browsers refuse it
        ("Set-Cookie: __Host-sid=1; Secure; HttpOnly; Path=/app", 1),
        ("Set-Cookie: sid=1; HttpOnly; SameSite=Lax", 0),  # only warnings
        ("Set-Cookie: __Host-sid=1; Secure; HttpOnly; Path=/; SameSite=Lax; Max-Age=60", 0),
    ],
)
def test_set_cookie_lint_errors_exit_1(
    line: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", line]) == code
    assert main(["inspect", line, "--json"]) == code
    capsys.readouterr()
