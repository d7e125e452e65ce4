"""coatcheck keygen / token decode / token verify, through a small argparse main()."""

from __future__ import annotations

import argparse
import json
import re
import warnings
from pathlib import Path

import pytest

from coatcheck.cli import token_cmd
from coatcheck.tokens import (
    ENCRYPTION_ALGORITHMS,
    SIGNING_ALGORITHMS,
    JWTCodec,
    Key,
    KeyRing,
    encrypt_jwt,
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="coatcheck")
    subparsers = parser.add_subparsers(dest="command", required=True)
    token_cmd.register(subparsers)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return int(args.func(args))


def test_keygen_default_is_ed25519(capsys: pytest.CaptureFixture[str]) -> None:
    # RFC 9864: new keys carry the fully-specified algorithm name.
    assert main(["keygen"]) == 0
    out, err = capsys.readouterr()
    jwk = json.loads(out)
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "Ed25519")
    assert "d" in jwk
    assert '"d"' not in err
    assert Key.from_jwk(jwk).kid == jwk["kid"]


def test_keygen_hmac(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--alg", "HS256"]) == 0
    out, err = capsys.readouterr()
    jwk = json.loads(out)
    assert jwk["kty"] == "oct"
    assert jwk["alg"] == "HS256"
    assert err == ""
    assert Key.from_jwk(jwk).kid == jwk["kid"]


@pytest.mark.parametrize(
    ("alg", "curve", "kty"),
    [("EdDSA", "Ed448", "OKP"), ("ECDH-ES", "X25519", "OKP"), ("ECDH-ES+A256KW", "P-521", "EC")],
)
def test_keygen_curve(alg: str, curve: str, kty: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--alg", alg, "--curve", curve]) == 0
    jwk = json.loads(capsys.readouterr().out)
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == (kty, curve, alg)
    assert main(["keygen", "--alg", "ES256", "--curve", "P-384"]) == 2
    assert "ES256 takes the curves" in capsys.readouterr().err


def test_keygen_jwks_file_then_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """README's walkthrough: keygen --jwks, token sign, token verify --jwks (issue 17)."""
    jwks = tmp_path / "keys.json"
    assert main(["keygen", "--kid", "k1", "--jwks", str(jwks)]) == 0
    out, err = capsys.readouterr()
    private = tmp_path / "key.json"
    private.write_text(out)
    assert f"public JWK added to {jwks} (1 keys)" in err
    document = json.loads(jwks.read_text())
    assert [k["kid"] for k in document["keys"]] == ["k1"]
    assert "d" not in document["keys"][0]
    assert main(["token", "sign", "--key", str(private), "--claims", '{"sub": "u1"}']) == 0
    token = capsys.readouterr().out.strip()
    assert main(["token", "verify", token, "--jwks", str(jwks)]) == 0
    assert "kid=k1 (alg Ed25519)" in capsys.readouterr().out
    # Rotation: a second key joins the set; tokens of the first still verify.
    assert main(["keygen", "--alg", "ES256", "--kid", "k2", "--jwks", str(jwks)]) == 0
    assert "(2 keys)" in capsys.readouterr().err
    assert [k["kid"] for k in json.loads(jwks.read_text())["keys"]] == ["k1", "k2"]
    assert main(["token", "verify", token, "--jwks", str(jwks)]) == 0
    capsys.readouterr()
    # Refusals leave the file as it was.
    before = jwks.read_text()
    assert main(["keygen", "--kid", "k2", "--jwks", str(jwks)]) == 2
    assert "already has a key with the kid 'k2'" in capsys.readouterr().err
    assert main(["keygen", "--alg", "HS256", "--jwks", str(jwks)]) == 2
    assert "no public form" in capsys.readouterr().err
    assert jwks.read_text() == before
    not_a_set = tmp_path / "notes.json"
    not_a_set.write_text('{"hello": 1}')
    assert main(["keygen", "--jwks", str(not_a_set)]) == 2
    assert "is not a public JWK Set" in capsys.readouterr().err
    assert not_a_set.read_text() == '{"hello": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.json", "keys.json", "notes.json"]


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
    assert main(["keygen", "--alg", "RSA1_5"]) == 2
    assert "Bleichenbacher" in capsys.readouterr().err  # refused by design, and why
    assert main(["keygen", "--public", "--jwks", "x.json"]) == 2
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
    # One time format with `coatcheck inspect` and the demo: UTC, then in words.
    assert re.search(r"exp: \d+ = \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in 15 minutes\)", out)
    assert main(["token", "decode", "garbage"]) == 1
    out, err = capsys.readouterr()
    assert "malformed_token" in err
    assert out == ""  # the error only, no UNVERIFIED banner over nothing


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
    out = capsys.readouterr().out
    assert out.startswith("valid: signature verified with key kid=")
    assert "(alg HS256)" in out.splitlines()[0]
    assert '"sub": "alice"' in out
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


@pytest.mark.parametrize("alg", ["dir", "A128KW", "ECDH-ES+A256KW", "RSA-OAEP-256"])
def test_verify_jwe(alg: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = Key.generate(alg, kid="d")
    token = encrypt_jwt({"sub": "carol"}, key)
    private = json.dumps(key.to_jwk(private=True))
    assert main(["token", "verify", token, "--key", private]) == 0
    out = capsys.readouterr().out
    assert '"carol"' in out
    assert f"decrypted with key kid=d (alg {alg}, enc A256GCM)" in out
    # Pinned to another key-management algorithm: refused.
    other = "A256KW" if alg != "A256KW" else "dir"
    assert main(["token", "verify", token, "--key", private, "--alg", other]) == 2
    capsys.readouterr()
    if not key.is_symmetric:
        # The public half cannot decrypt.
        public = json.dumps(key.public_jwk())
        assert main(["token", "verify", token, "--key", public]) == 2
        assert "can decrypt" in capsys.readouterr().err


def test_key_may_be_a_private_jwks_but_jwks_is_public_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = Key.generate("ECDH-ES+A128KW", kid="mine")
    token = encrypt_jwt({"sub": "kim"}, key)
    private_set = tmp_path / "private.json"
    private_set.write_text(json.dumps({"keys": [key.to_jwk(private=True)]}))
    assert main(["token", "verify", token, "--key", str(private_set)]) == 0
    assert '"kim"' in capsys.readouterr().out
    assert main(["token", "verify", token, "--jwks", str(private_set)]) == 2
    err = capsys.readouterr().err
    assert "not_a_public_key" in err
    assert "key 'mine' in the JWKS (keys[0]) holds private key material" in err


def test_verify_jwe_with_secret(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "k" * 32
    token = encrypt_jwt({"sub": "carl"}, Key.from_secret(secret, alg="dir", kid="d"))
    assert main(["token", "verify", token, "--secret", secret]) == 0  # dir, from the token
    assert '"carl"' in capsys.readouterr().out
    assert main(["token", "verify", token, "--secret", "j" * 32]) == 1
    assert "decryption_failed" in capsys.readouterr().err


def test_verify_names_the_matching_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = Key.generate("ES256", kid="old"), Key.generate("EdDSA", kid="new")
    token = JWTCodec(old).encode({"sub": "dan"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(KeyRing([old, new]).jwks()))
    assert main(["token", "verify", token, "--jwks", str(jwks)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "valid: signature verified with key kid=old (alg ES256)"


def test_verify_key_of_another_algorithm(capsys: pytest.CaptureFixture[str]) -> None:
    token = JWTCodec(Key.generate("ES256")).encode({"sub": "erin"})
    eddsa = json.dumps(Key.generate("EdDSA").public_jwk())
    assert main(["token", "verify", token, "--key", eddsa]) == 1
    err = capsys.readouterr().err
    assert err.startswith("refused: unsupported_algorithm: ")
    assert "signed with ES256" in err
    assert "for EdDSA" in err
    assert "does not fit" in err
    hs = JWTCodec(Key.from_secret("s" * 64, alg="HS512")).encode({"sub": "erin"})
    assert main(["token", "verify", hs, "--secret", "s" * 64, "--alg", "HS256"]) == 1
    assert "not an allowed algorithm (HS256)" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--jwks", "--key"])
@pytest.mark.parametrize("url", ["https://example.com/.well-known/jwks.json", "http://x/jwks"])
def test_key_urls_are_never_fetched(
    option: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    token = JWTCodec(Key.generate("ES256")).encode({"sub": "f"})
    assert main(["token", "verify", token, option, url]) == 2
    err = capsys.readouterr().err
    assert "never fetches keys from the network" in err
    assert "save the JWKS to a file" in err


@pytest.mark.parametrize(
    "alg", ["HS256", "HS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519", "Ed448", "RS256",
            "PS384"]
)
def test_keygen_sign_verify_round_trip(
    alg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keygen", "--alg", alg, "--kid", "k1"]) == 0
    private = tmp_path / "key.json"
    private.write_text(capsys.readouterr().out)
    claims = json.dumps({"sub": "grace", "role": "admin"})
    assert main(["token", "sign", "--key", str(private), "--claims", claims, "--ttl", "7200"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert out == token + "\n"
    assert err == ""
    assert main(["token", "verify", token, "--key", str(private)]) == 0
    verified = capsys.readouterr().out
    assert verified.startswith(f"valid: signature verified with key kid=k1 (alg {alg})")
    assert '"role": "admin"' in verified
    assert "(in 2 hours)" in verified


def test_sign_with_keygen_public_pair(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--alg", "EdDSA", "--public"]) == 0
    pair = json.loads(capsys.readouterr().out)
    assert main(["token", "sign", "--key", json.dumps(pair), "--claims", '{"sub": "h"}']) == 0
    token = capsys.readouterr().out.strip()
    assert main(["token", "verify", token, "--key", json.dumps(pair["public"])]) == 0
    assert "(in 15 minutes)" in capsys.readouterr().out  # the default lifetime


@pytest.mark.parametrize(
    ("claims", "ttl", "message"),
    [
        ("not json", None, "not valid JSON"),
        ("[1, 2]", None, "a JSON object"),
        ('{"sub": "i"}', "0", "--ttl must be positive"),
    ],
)
def test_sign_usage(
    claims: str, ttl: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key = json.dumps(Key.generate("HS256").to_jwk(private=True))
    argv = ["token", "sign", "--key", key, "--claims", claims]
    assert main(argv + (["--ttl", ttl] if ttl else [])) == 2
    assert message in capsys.readouterr().err


def test_sign_refuses_public_keys_and_key_sets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = Key.generate("ES256")
    public = json.dumps(key.public_jwk())
    assert main(["token", "sign", "--key", public, "--claims", "{}"]) == 2
    assert "private JWK" in capsys.readouterr().err
    jwks = json.dumps(KeyRing([key]).jwks())
    assert main(["token", "sign", "--key", jwks, "--claims", "{}"]) == 2
    assert "not a JWKS" in capsys.readouterr().err
    assert main(["token", "sign", "--key", str(tmp_path / "none.json"), "--claims", "{}"]) == 2
    assert "cannot read the key file" in capsys.readouterr().err


def test_no_dependency_warning_reaches_the_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """RFC 9864 made joserfc warn on EdDSA, and it warns on small keys: every command path,
    for every algorithm, runs here with warnings turned into errors (issue 11)."""
    from coatcheck.cli.main import main as coatcheck

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for alg in sorted(SIGNING_ALGORITHMS | ENCRYPTION_ALGORITHMS):
            assert coatcheck(["keygen", "--alg", alg, "--kid", alg]) == 0, alg
            key_file = tmp_path / f"{alg}.json"
            key_file.write_text(capsys.readouterr().out)
            key = Key.from_jwk(key_file.read_text())
            if key.is_encryption:
                token = encrypt_jwt({"sub": alg}, key)
            else:
                claims = json.dumps({"sub": alg})
                assert coatcheck(["token", "sign", "--key", str(key_file), "--claims", claims]) == 0
                token = capsys.readouterr().out.strip()
            assert coatcheck(["token", "verify", token, "--key", str(key_file)]) == 0, alg
            assert coatcheck(["token", "decode", token]) == 0
            assert coatcheck(["inspect", token, "--key", str(key_file)]) == 0, alg
            public = key.public_jwk()
            if public is not None and not key.is_encryption:
                public_file = tmp_path / f"{alg}.pub.json"
                public_file.write_text(json.dumps(public))
                assert coatcheck(["inspect", token, "--key", str(public_file)]) == 0, alg
                assert coatcheck(["token", "verify", token, "--key", str(public_file)]) == 0
            assert "verification: verified" in capsys.readouterr().out, alg
        # A token made elsewhere with the polymorphic name, read by every path.
        eddsa = Key.generate("EdDSA", kid="old")
        token = JWTCodec(eddsa).encode({"sub": "legacy"})
        jwks = tmp_path / "jwks.json"
        assert coatcheck(["keygen", "--alg", "EdDSA", "--jwks", str(jwks)]) == 0
        jwks.write_text(json.dumps(KeyRing([eddsa]).jwks()))
        assert coatcheck(["token", "verify", token, "--jwks", str(jwks)]) == 0
        assert coatcheck(["inspect", token, "--jwks", str(jwks)]) == 0
    assert "verification: verified" in capsys.readouterr().out


def test_keygen_jwks_keeps_keys_coatcheck_ignores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A published set with a key coatcheck does not understand (RFC 7517 §5: ignored):
    appending a new key keeps it, and verify says which key it ignored and why."""
    jwks = tmp_path / "keys.json"
    foreign = {"kty": "EC", "crv": "secp256k1", "alg": "ES256K", "kid": "k1", "x": "AQ",
               "y": "AQ"}
    jwks.write_text(json.dumps({"keys": [foreign]}))
    # Only foreign keys: not a usable set, and the file is left as it was.
    assert main(["keygen", "--kid", "k2", "--jwks", str(jwks)]) == 2
    assert "no key in the JWKS is one coatcheck can use" in capsys.readouterr().err
    signing = KeyRing([Key.generate("ES256", kid="k0")])
    jwks.write_text(json.dumps({"keys": [foreign, *signing.jwks()["keys"]]}))
    assert main(["keygen", "--kid", "k2", "--jwks", str(jwks)]) == 0
    out, err = capsys.readouterr()
    assert "(3 keys)" in err
    assert [k["kid"] for k in json.loads(jwks.read_text())["keys"]] == ["k1", "k0", "k2"]
    assert json.loads(jwks.read_text())["keys"][0] == foreign
    # A kid taken by an ignored key is still taken.
    assert main(["keygen", "--kid", "k1", "--jwks", str(jwks)]) == 2
    assert "already has a key with the kid 'k1'" in capsys.readouterr().err
    private = tmp_path / "k2.json"
    private.write_text(out)
    assert main(["token", "sign", "--key", str(private), "--claims", '{"sub": "u1"}']) == 0
    token = capsys.readouterr().out.strip()
    assert main(["token", "verify", token, "--jwks", str(jwks)]) == 0
    out, err = capsys.readouterr()
    assert "kid=k2" in out
    assert "note: ignored key 'k1' at keys[0]: 'ES256K' is not a supported algorithm" in err
