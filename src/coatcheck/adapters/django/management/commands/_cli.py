"""Run a ``coatcheck`` CLI command from ``manage.py``: the CLI's own parser and code,
with the store from ``settings.COATCHECK`` and the output on the command's streams."""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Callable, Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError

__all__ = ["CliCommand"]


class CliCommand(BaseCommand):  # type: ignore[misc]  # Django is untyped
    """A management command that hands its arguments to a CLI sub-command."""

    #: The CLI sub-command's name (``sessions``, ``keygen``).
    cli_name = ""
    #: Adds the CLI's sub-commands to a parser (the CLI module's ``register``).
    cli_register: Callable[[Any], None]

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        # Everything Django's own options do not take goes, in order, to the CLI's
        # parser (an argparse REMAINDER would refuse a leading option like --alg).
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def parse_args(args: Sequence[str] | None = None, namespace: Any = None) -> Any:
            parsed, rest = parser.parse_known_args(args, namespace)
            parsed.cli_args = rest
            return parsed

        parser.parse_args = parse_args
        return parser

    def extra_args(self, args: Sequence[str]) -> list[str]:
        """Arguments the settings add (the store URL)."""
        return []

    def handle(self, *args: Any, **options: Any) -> None:
        argv = list(options.get("cli_args") or [])
        root = argparse.ArgumentParser(prog=f"manage.py {self._name()}", add_help=False)
        type(self).cli_register(root.add_subparsers())
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                parsed = root.parse_args([self.cli_name, *argv, *self.extra_args(argv)])
                code = parsed.func(parsed)
            except SystemExit as exc:  # argparse: --help, or a usage error
                code = exc.code if isinstance(exc.code, int) else 2
        self.stdout.write(out.getvalue(), ending="")
        self.stderr.write(err.getvalue(), ending="")
        if code:
            raise CommandError(f"{self._name()} failed (exit {code})", returncode=code)

    def _name(self) -> str:
        return type(self).__module__.rpartition(".")[2]
