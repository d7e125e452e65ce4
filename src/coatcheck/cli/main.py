"""The ``coatcheck`` command: argparse, one module per subcommand.

Each subcommand module exposes ``register(subparsers)`` and sets ``func`` on its
parser to a handler that returns the exit code: 0 ok, 1 refused or failed (the
error code is printed), 2 usage. When the reader of stdout goes away (``... | head``)
the command stops quietly with 141 (128 + SIGPIPE, as a shell reports it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from .. import __version__
from ..errors import CoatcheckError, ConfigurationError
from . import demo_cmd, sessions_cmd, theft_cmd, token_cmd

__all__ = ["build_parser", "main"]

_BROKEN_PIPE = 141  # 128 + SIGPIPE


def _optional(name: str) -> ModuleType | None:
    # inspect_cmd (issue 6) may not be in this tree yet; a missing module is fine, but
    # an ImportError from inside it (a broken dependency) must still surface.
    import importlib

    qualified = f"{__package__}.{name}"
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as exc:
        if exc.name == qualified:
            return None
        raise


def _subcommands() -> list[ModuleType]:
    found = [token_cmd, sessions_cmd, _optional("inspect_cmd"), demo_cmd, theft_cmd]
    return [module for module in found if module is not None]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every subcommand registered)."""
    parser = argparse.ArgumentParser(
        prog="coatcheck",
        description="Sessions, signed tokens and the hybrid of both: tools and a demo.",
    )
    parser.add_argument("--version", action="version", version=f"coatcheck {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _subcommands():
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit code (0 ok, 1 refused/failed, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code = func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit flush
        return code
    except BrokenPipeError:
        _silence_stdout()
        return _BROKEN_PIPE
    except ConfigurationError as exc:
        print(f"coatcheck: {exc}", file=sys.stderr)
        return 2
    except CoatcheckError as exc:
        print(f"coatcheck: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    # The reader is gone: point stdout at /dev/null so that the interpreter's final
    # flush of what is still buffered does not raise again (Python docs, "Note on SIGPIPE").
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no real file (captured, closed)
        pass


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
