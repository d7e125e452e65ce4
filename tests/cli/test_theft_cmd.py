"""``coatcheck theft`` against a real demo server: the walk-through's output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coatcheck.cli.main import main

from ..e2e.test_demo_server import DemoServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["session", "hybrid"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoServer]:
    demo = DemoServer(request.param, Path(tmp_path_factory.mktemp(f"theft-{request.param}")))
    demo.start()
    try:
        yield demo
    finally:
        demo.stop()


def test_the_walk_through(server: DemoServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["theft", "--url", server.url]) == 0
    out = capsys.readouterr().out
    assert f"({server.mode} mode)" in out
    worked = 2 if server.mode == "hybrid" else 1
    refused = 5 if server.mode == "hybrid" else 3
    assert f"{worked} theft(s) worked, all without binding; {refused} refused." in out
    assert out.count("<- the theft works") == worked
    assert "401 dpop_binding_mismatch  <- refused" in out
    assert "401 dpop_proof_replayed  <- refused" in out


def test_usage_and_an_absent_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["theft", "--username", "only-one"]) == 2
    assert main(["theft", "--url", "http://127.0.0.1:9"]) == 1
    assert "is `coatcheck demo` running" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["session", "hybrid"])
def test_the_dbsc_walk_through(mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["theft", "--dbsc", "--mode", mode, "--bound-ttl", "30"]) == 0
    out = capsys.readouterr().out
    assert "every step went as DBSC promises" in out
    assert "Alice's browser WITHOUT DBSC" in out
    assert "cannot sign without the key" in out


def test_dbsc_usage() -> None:
    assert main(["theft", "--dbsc", "--bound-ttl", "0"]) == 2
