from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from coatcheck import __version__
from coatcheck.cli import main as cli_main
from coatcheck.sessions import SessionManager
from coatcheck.stores.sqlite import SQLiteStore


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


def test_closed_stdout_pipe_ends_quietly(tmp_path: Path) -> None:
    # More JSON than a pipe buffers (64 KiB), so the writer meets the closed pipe.
    db = tmp_path / "sessions.db"

    async def seed() -> None:
        store = SQLiteStore(db)
        manager = SessionManager(store)
        for _ in range(600):
            await manager.create("alice", user_agent="Mozilla/5.0 " + "x" * 100)
        await store.close()

    asyncio.run(seed())
    command = [sys.executable, "-m", "coatcheck", "sessions", "list", "--user", "alice",
               "--json", "--store", f"sqlite:///{db}"]  # fmt: skip
    writer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert writer.stdout is not None
    head = subprocess.run(["head", "-c1"], stdin=writer.stdout, capture_output=True, timeout=60)
    writer.stdout.close()  # only head holds the read end now
    _, err = writer.communicate(timeout=60)
    assert head.stdout == b"["
    assert writer.returncode == 141
    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err
