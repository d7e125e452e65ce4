"""bench/django_bench.py runs (``--quick``, a handful of users): every variant, every
ratio computed. A smoke test: no timing is asserted (speed is bench/'s business)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_the_django_bench_runs_quickly(tmp_path: Path, redis_url: str, postgres_url: str) -> None:
    out = tmp_path / "django.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "django_bench.py"), "--quick", "--users", "40",
         "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    rows = {r["variant"]: r for r in results["rows"]}
    assert {"simplejwt", "coatcheck-jwt", "coatcheck-hybrid", "django-cache-redis",
            "coatcheck-session-redis", "django-db-postgresql",
            "coatcheck-session-postgresql", "coatcheck-engine-redis",
            "coatcheck-engine-postgresql", "coatcheck-engine-only-redis"} <= set(rows)  # fmt: skip
    for name, row in rows.items():
        assert row["skipped"] is None, (name, row["skipped"])
        assert row["many"]["rps"] > 0
        assert row["one"]["rps"] > 0
    assert all(t["ratio"] is not None and t["met"] is not None for t in results["targets"])
    assert "| coatcheck-jwt |" in done.stdout
    assert "## Django and DRF (issue 14)" in done.stdout
