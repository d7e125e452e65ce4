"""``manage.py coatcheck_sessions list|revoke|revoke-user|prune``: ``coatcheck sessions``
on the store of ``settings.COATCHECK`` (revocations published on its feed, as the CLI
does). ``--user`` is the user's primary key."""

from __future__ import annotations

from collections.abc import Sequence

from .....cli import sessions_cmd
from ...conf import get_config
from ._cli import CliCommand

__all__ = ["Command"]


class Command(CliCommand):
    help = (
        "list, revoke, revoke-user, prune: coatcheck's sessions in COATCHECK['STORE'] "
        "(e.g. `list --user 42`, `revoke-user 42`, `prune`)"
    )
    cli_name = "sessions"
    cli_register = staticmethod(sessions_cmd.register)

    def extra_args(self, args: Sequence[str]) -> list[str]:
        if not args or "--store" in args or args[0] in ("-h", "--help"):
            return []
        return ["--store", get_config().store_url]
