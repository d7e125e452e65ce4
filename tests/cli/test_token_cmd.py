"""coatcheck keygen / token decode / token verify, through a small argparse main()."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from coatcheck.cli import token_cmd
from coatcheck.tokens import JWTCodec, Key, KeyRing, encrypt_jwt


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="coatcheck")
    subparsers = parser.add_subparsers(dest="command", required=True)
    token_cmd.register(subparsers)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return int(args.func(args))


def test_keygen_hmac(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen"]) == 0
    out, err = capsys.readouterr()
    jwk = json.loads(out)
    assert jwk["kty"] == "oct"
    assert jwk["alg"] == "HS256"
    assert err == ""
    assert Key.from_jwk(jwk).kid == jwk["kid"]


def test_keygen_asymmetric(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--alg", "ES256", "--kid", "k1"]) == 0
    out, err = capsys.readouterr()
    private = json.loads(out)
    public = json.loads(err.split("\n", 1)[1])
    assert private["kid"] == public["kid"] == "k1"
    assert "d" in private
    assert "d" not in public
    assert main(["keygen", "--alg", "EdDSA", "--public"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert "d" in both["private"]
    assert "d" not in both["public"]


def test_keygen_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--alg", "none"]) == 2
    assert main(["token"]) == 2
    assert main(["token", "verify", "x"]) == 2  # no key source
    capsys.readouterr()


def test_decode(capsys: pytest.CaptureFixture[str]) -> None:
    token = JWTCodec(Key.generate("HS256")).encode({"sub": "alice"})
    assert main(["token", "decode", token]) == 0
    out = capsys.readouterr().out
    assert out.startswith("UNVERIFIED")
    assert '"sub": "alice"' in out
    assert "exp: " in out
    assert "(in 15 min)" in out
    assert main(["token", "decode", "garbage"]) == 1
    assert "malformed_token" in capsys.readouterr().err


def test_decode_jwe_header(capsys: pytest.CaptureFixture[str]) -> None:
    token = encrypt_jwt({"sub": "a"}, Key.generate("dir", kid="d"))
    assert main(["token", "decode", token]) == 0
    out = capsys.readouterr().out
    assert '"enc": "A256GCM"' in out
    assert '"sub"' not in out


def test_verify_with_secret(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "s" * 32
    token = JWTCodec(Key.from_secret(secret)).encode({"sub": "alice"})
    assert main(["token", "verify", token, "--secret", secret]) == 0
    assert '"sub": "alice"' in capsys.readouterr().out
    assert main(["token", "verify", token, "--secret", "t" * 32]) == 1
    assert "invalid_signature" in capsys.readouterr().err
    assert main(["token", "verify", token, "--secret", "short"]) == 2
    assert main(["token", "verify", token, "--secret", secret, "--aud", "api"]) == 1
    assert "missing_claim" in capsys.readouterr().err
    assert main(["token", "verify", token, "--secret", secret, "--alg", "HS512"]) == 2  # too short


def test_verify_with_key_file_and_jwks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = Key.generate("ES256")
    token = JWTCodec(key).encode({"sub": "bob"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(KeyRing([key]).jwks()))
    jwk = tmp_path / "key.json"
    jwk.write_text(json.dumps(key.public_jwk()))
    assert main(["token", "verify", token, "--jwks", str(jwks)]) == 0
    assert main(["token", "verify", token, "--key", str(jwk)]) == 0
    assert main(["token", "verify", token, "--key", json.dumps(key.public_jwk())]) == 0
    assert main(["token", "verify", token, "--key", str(tmp_path / "missing.json")]) == 2
    other = tmp_path / "other.json"
    other.write_text(json.dumps(KeyRing([Key.generate("ES256")]).jwks()))
    assert main(["token", "verify", token, "--jwks", str(other)]) == 1
    assert "unknown_key" in capsys.readouterr().err


def test_verify_jwe(capsys: pytest.CaptureFixture[str]) -> None:
    key = Key.generate("dir", kid="d")
    token = encrypt_jwt({"sub": "carol"}, key)
    assert main(["token", "verify", token, "--key", json.dumps(key.to_jwk(private=True))]) == 0
    assert '"carol"' in capsys.readouterr().out
