"""``coatcheck inspect``: exit codes and output."""

from __future__ import annotations

import io
import json

import pytest

from coatcheck.cli.main import main
from coatcheck.interop.authjs import encode_authjs

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
