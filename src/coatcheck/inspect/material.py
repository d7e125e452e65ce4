"""The secrets and keys the inspector may try, loaded once from the command line."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from joserfc import jwk
from joserfc.errors import JoseError, SecurityWarning

from ..errors import ConfigurationError

__all__ = ["KeyMaterial", "LabelledKey"]

_KEY_TYPES: tuple[Literal["RSA", "EC", "OKP", "oct"], ...] = ("RSA", "EC", "OKP")
_MAX_FILE = 1 << 20


@dataclass(frozen=True, slots=True)
class LabelledKey:
    """A JOSE key and how to name it in a report (``--key file.pem``, ``jwks kid=...``)."""

    label: str
    key: Any
    kid: str | None


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """Secrets (HMAC and Auth.js/Flask/Django/Express secrets) and JOSE keys to try."""

    secrets: tuple[str, ...] = ()
    keys: tuple[LabelledKey, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.secrets and not self.keys

    def secret_label(self, index: int) -> str:
        return f"--secret #{index + 1}" if len(self.secrets) > 1 else "--secret"

    @classmethod
    def load(
        cls,
        *,
        secrets: Sequence[str] = (),
        key_files: Sequence[str | Path] = (),
        jwks_file: str | Path | None = None,
    ) -> KeyMaterial:
        """Read PEM or JWK files and a JWKS document.

        :raises ConfigurationError: a file cannot be read or holds no usable key.
        """
        keys: list[LabelledKey] = []
        for path in key_files:
            keys.extend(_load_key_file(Path(path)))
        if jwks_file is not None:
            document = _read_json(Path(jwks_file))
            entries = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(entries, list):
                raise ConfigurationError(f"{jwks_file}: not a JWKS document (no 'keys' list)")
            for entry in entries:
                keys.append(_from_jwk(entry, f"jwks {Path(jwks_file).name}"))
        return cls(secrets=tuple(s for s in secrets if s), keys=tuple(keys))


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > _MAX_FILE:
        raise ConfigurationError(f"{path} is too large to be a key file")
    return data


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read(path))
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not JSON") from exc


def _import_quietly(
    data: Any, key_type: Literal["RSA", "EC", "OKP", "oct"] | None = None
) -> Any:
    with warnings.catch_warnings():
        # joserfc warns on small keys; the inspector still reads tokens signed with them
        # (it reports, it does not refuse), so the user gets no dependency warning.
        warnings.filterwarnings("ignore", message="Key size should be", category=SecurityWarning)
        return jwk.import_key(data, key_type)


def _from_jwk(entry: object, label: str) -> LabelledKey:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{label}: a JWK must be a JSON object")
    try:
        key = _import_quietly(entry)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(f"{label}: not a usable JWK") from exc
    kid = entry.get("kid") if isinstance(entry.get("kid"), str) else None
    return LabelledKey(label=f"{label} kid={kid}" if kid else label, key=key, kid=kid)


def _load_key_file(path: Path) -> list[LabelledKey]:
    data = _read(path)
    label = f"--key {path.name}"
    if data.lstrip().startswith(b"{"):
        document = _read_json(path)
        if isinstance(document, dict) and isinstance(document.get("keys"), list):
            return [_from_jwk(entry, label) for entry in document["keys"]]
        return [_from_jwk(document, label)]
    for key_type in _KEY_TYPES:
        try:
            key = _import_quietly(data, key_type)
        except (JoseError, ValueError, TypeError):
            continue
        return [LabelledKey(label=label, key=key, kid=None)]
    raise ConfigurationError(f"{path}: not a PEM key or JWK")
