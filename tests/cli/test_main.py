from __future__ import annotations

import subprocess
import sys

import pytest

from coatcheck import __version__
from coatcheck.cli import main as cli_main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_unknown_command_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_every_subcommand_is_registered() -> None:
    parser = cli_main.build_parser()
    help_text = parser.format_help()
    for command in ("keygen", "token", "sessions", "demo"):
        assert command in help_text


def test_optional_subcommand_module_may_be_absent() -> None:
    assert cli_main._optional("no_such_cmd") is None


def test_demo_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--mode", "--store", "--https-proxy"):
        assert option in out


def test_demo_bad_store_is_a_configuration_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["demo", "--store", "bogus://nowhere", "--mode", "jwt"]) == 2
    assert "configuration_error" in capsys.readouterr().err


def test_demo_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["demo", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_demo_bad_mode_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["demo", "--mode", "magic"]) == 2


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coatcheck", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert __version__ in result.stdout
