"""Run the real Node packages (tests/interop/node/*.mjs) with JSON over stdin/stdout.

``npm ci --prefix tests/interop`` installs them (.ci does this). A missing Node or
node_modules FAILS these tests with the command to run: they are the proof that the
formats interoperate, so they must never be skipped silently.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
NODE_MODULES = HERE / "node_modules"
REQUIRED = ("@auth/core", "connect-redis", "cookie", "cookie-parser", "cookie-signature",
            "dpop", "express", "express-session", "jose", "jsonwebtoken", "oauth4webapi",
            "redis")

NodeRunner = Callable[..., list[Any]]


@pytest.fixture(scope="session")
def node_bin() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js 20+ to run the interop tests")
    missing = [name for name in REQUIRED if not (NODE_MODULES / name / "package.json").exists()]
    if missing:
        pytest.fail(
            f"the interop Node packages are not installed (missing: {', '.join(missing)}); "
            "run `npm ci --prefix tests/interop`"
        )
    return node


def _run(node: str, script: str, ops: list[dict[str, Any]]) -> list[Any]:
    completed = subprocess.run(
        [node, str(HERE / "node" / script)],
        input=json.dumps({"ops": ops}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"node {script} failed ({completed.returncode}):\n{completed.stderr}")
    return json.loads(completed.stdout)


@pytest.fixture(scope="session")
def node_tokens(node_bin: str) -> NodeRunner:
    """Run ops in tokens.mjs (jsonwebtoken, jose, @auth/core); one result per op."""
    return lambda *ops: _run(node_bin, "tokens.mjs", list(ops))


@pytest.fixture(scope="session")
def node_dpop(node_bin: str) -> NodeRunner:
    """Run ops in dpop.mjs (the dpop and oauth4webapi clients, over HTTP)."""
    return lambda *ops: _run(node_bin, "dpop.mjs", list(ops))


@pytest.fixture(scope="session")
def node_express(node_bin: str) -> NodeRunner:
    """Run ops in express.mjs (express-session, connect-redis, cookie, ...)."""
    return lambda *ops: _run(node_bin, "express.mjs", list(ops))


def ok(result: dict[str, Any]) -> Any:
    """The value of a successful op (fails the test with Node's error otherwise)."""
    if "error" in result:
        pytest.fail(f"the Node side failed: {result['error']}")
    return result["ok"]
