"""``manage.py coatcheck_keygen [--alg ES256] [--kid ID] [--public | --jwks FILE]``:
``coatcheck keygen``, a private JWK for ``COATCHECK["SIGNING_KEY"]``."""

from __future__ import annotations

from typing import ClassVar

from .....cli import token_cmd
from ._cli import CliCommand

__all__ = ["Command"]


class Command(CliCommand):
    help = "print a new private JWK for COATCHECK['SIGNING_KEY'] (coatcheck keygen)"
    cli_name = "keygen"
    cli_register = staticmethod(token_cmd.register)
    # The key it prints is what the system checks ask for when it is missing
    # (coatcheck.E005): running them first would refuse the very fix they suggest.
    requires_system_checks: ClassVar[list[str]] = []
