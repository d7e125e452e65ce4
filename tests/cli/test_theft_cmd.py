from __future__ import annotations

import pytest

from coatcheck.cli import main as cli_main


@pytest.mark.parametrize("mode", ["session", "hybrid"])
def test_theft_walk_through(mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["theft", "dbsc", "--mode", mode, "--bound-ttl", "30"]) == 0
    out = capsys.readouterr().out
    assert "every step went as DBSC promises" in out
    assert "Alice's browser WITHOUT DBSC" in out
    assert "cannot sign without the key" in out


def test_theft_needs_a_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["theft"]) == 2
    assert cli_main.main(["theft", "dbsc", "--bound-ttl", "0"]) == 2
