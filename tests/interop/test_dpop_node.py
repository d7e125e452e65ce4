"""Real DPoP clients from npm (panva's ``dpop`` and ``oauth4webapi``) against the demo.

The demo runs as a real server (``coatcheck demo`` under uvicorn on a free port); the
Node script logs in with a DPoP proof, calls the API, refreshes (hybrid mode) and then
plays the thief: the token sent as a bearer token, with another key's proof, and a
captured request sent again. Nonces on and off: both clients must follow them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..e2e.test_demo_server import DemoServer
from .conftest import NodeRunner, ok

pytestmark = pytest.mark.slow

SERVERS = [("session", ()), ("jwt", ()), ("hybrid", ()), ("hybrid", ("--dpop-nonce",))]


@pytest.fixture(scope="module", params=SERVERS, ids=["session", "jwt", "hybrid", "hybrid-nonce"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoServer]:
    mode, args = request.param
    demo = DemoServer(mode, Path(tmp_path_factory.mktemp(f"interop-dpop-{mode}")), args)
    demo.start()
    try:
        yield demo
    finally:
        demo.stop()


def _refused_theft(result: dict[str, Any]) -> None:
    bearer = result["bearer"]
    assert bearer["status"] == 401
    assert bearer["body"]["error"] == "dpop_binding_mismatch"
    assert bearer["challenge"].startswith('DPoP error="invalid_token"')


@pytest.mark.parametrize("alg", ["ES256", "Ed25519", "PS256", "RS256"])
def test_dpop_package_client(server: DemoServer, node_dpop: NodeRunner, alg: str) -> None:
    (raw,) = node_dpop(
        {"op": "dpop.flow", "base": server.url, "alg": alg, "username": f"dpop-{alg}"}
    )
    result = ok(raw)
    assert result["login"] == {"status": 200, "token_type": "DPoP"}
    assert result["me"] == {"status": 200, "via": "dpop", "dpop_jkt": result["jkt"]}
    _refused_theft(result)
    assert result["thief"]["status"] == 401
    assert result["thief"]["body"]["error"] == "dpop_binding_mismatch"
    assert result["replay"]["status"] == 401
    assert result["replay"]["body"]["error"] == "dpop_proof_replayed"
    if server.mode == "hybrid":
        assert result["refresh"] == {
            "thief": {"status": 400, "error": "dpop_binding_mismatch"},
            "owner": {"status": 200, "token_type": "DPoP"},
            "me": {"status": 200, "dpop_jkt": result["jkt"]},
        }
    else:
        assert "refresh" not in result


@pytest.mark.parametrize("alg", ["ES256", "Ed25519"])
def test_oauth4webapi_client(server: DemoServer, node_dpop: NodeRunner, alg: str) -> None:
    (raw,) = node_dpop(
        {"op": "oauth4webapi.flow", "base": server.url, "alg": alg, "username": f"o4w-{alg}"}
    )
    result = ok(raw)
    assert result["login"] == {"status": 200, "token_type": "DPoP"}
    assert result["me"] == {"status": 200, "via": "dpop", "dpop_jkt": result["jkt"]}
    thief = result["thief"]
    assert thief["status"] == 401
    [challenge] = thief["challenges"]
    assert (challenge["scheme"], challenge["error"]) == ("dpop", "invalid_token")
    assert "ES256" in challenge["algs"].split()
    if server.mode == "hybrid":
        refresh = result["refresh"]
        assert refresh["thief"]["status"] == 400
        assert refresh["owner"] == {"token_type": "dpop", "has_refresh": "string"}
        assert refresh["me"] == {"status": 200, "dpop_jkt": result["jkt"]}
