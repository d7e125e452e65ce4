"""Failover under load: a Redis Cluster master, then a Sentinel master, killed mid-traffic.

Each test starts its own throwaway topology (short node timeout / down-after, so a
replica is promoted within a couple of seconds), logs users in through the demo app,
keeps a steady load of authenticated requests on it, and SIGKILLs the master. What
must hold: every answer is 200 for the right user or 503 ``store_unavailable`` (never
a 500, never a 401 that would log a user out, never a guest taken for a user), the
errors stop by themselves once a replica is promoted, and users on the other shards
never see one. A writer keeps creating sessions through the kill; with ``?wait=1``
(``WAIT 1`` on creation) none that was acknowledged is lost. The numbers (error
window, failed requests, sessions lost) are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.crc import key_slot

from coatcheck.demo import DemoConfig, create_app
from coatcheck.errors import StoreUnavailable
from coatcheck.sessions.manager import SessionManager
from coatcheck.stores import RedisStore

from .. import _topology

pytestmark = [pytest.mark.slow, pytest.mark.redis]

PASSWORD = "correct horse battery"
USERS = 24
RECOVERY_BOUND = 20.0  # seconds from the kill until every user is served again


@dataclass
class Outcome:
    answers: list[tuple[float, str, int, str]] = field(default_factory=list)
    acknowledged: list[tuple[float, str]] = field(default_factory=list)
    kill_at: float = 0.0

    def failures(self) -> list[tuple[float, str, int, str]]:
        return [a for a in self.answers if a[2] != 200]


async def _run(
    tmp_path: Path,
    store_url: str,
    kill: Callable[[], None],
    recovered: Callable[[Outcome], bool],
) -> tuple[Outcome, dict[str, str], RedisStore]:
    app = create_app(
        DemoConfig(mode="session", store_url=store_url, users_path=str(tmp_path / "users.db"))
    )
    transport = httpx.ASGITransport(app=app)
    outcome = Outcome()
    tokens: dict[str, str] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        for i in range(USERS):
            name = f"user{i}"
            await client.post(
                "/api/register", json={"username": name, "password": PASSWORD, "name": name}
            )
            login = await client.post(
                "/api/login", json={"username": name, "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
            tokens[name] = login.json()["token"]
        store: RedisStore = app.state.demo.store
        writer_store = RedisStore.from_url(store_url)
        manager = SessionManager(writer_store)
        stop = asyncio.Event()

        async def reader(names: list[str]) -> None:
            while not stop.is_set():
                for name in names:
                    answer = await client.get(
                        "/api/me", headers={"authorization": f"Bearer {tokens[name]}"}
                    )
                    body = answer.json()
                    who = body.get("username", "") if answer.status_code == 200 else body["error"]
                    outcome.answers.append((time.monotonic(), name, answer.status_code, who))
                await asyncio.sleep(0.002)

        async def writer() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    token, _ = await manager.create(f"writer-{n}")
                except StoreUnavailable:
                    await asyncio.sleep(0.01)
                    continue
                outcome.acknowledged.append((time.monotonic(), token))

        names = list(tokens)
        tasks = [asyncio.create_task(reader(names[i::4])) for i in range(4)]
        tasks.append(asyncio.create_task(writer()))
        await asyncio.sleep(1.0)
        outcome.kill_at = time.monotonic()
        kill()
        deadline = outcome.kill_at + RECOVERY_BOUND
        while time.monotonic() < deadline and not recovered(outcome):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # and it stays recovered
        stop.set()
        await asyncio.gather(*tasks)
        await writer_store.close()
    return outcome, tokens, store


def _recovered_after(outcome: Outcome, quiet: float = 1.0) -> bool:
    """No failure in the last ``quiet`` seconds, and at least one failure before."""
    failures = outcome.failures()
    return bool(failures) and time.monotonic() - failures[-1][0] > quiet


async def _lost(
    store_url: str, outcome: Outcome, on_victim: Callable[[str], bool] = lambda _: True
) -> tuple[int, int]:
    """Sessions acknowledged in the last second before the kill (on the killed master)
    that are gone now."""
    store = RedisStore.from_url(store_url)
    manager = SessionManager(store)
    recent = [
        t for at, t in outcome.acknowledged
        if outcome.kill_at - 1.0 <= at <= outcome.kill_at and on_victim(t)
    ]  # fmt: skip
    lost = 0
    for token in recent:
        if await manager.validate(token) is None:
            lost += 1
    await store.close()
    return lost, len(recent)


def _check_answers(outcome: Outcome, tokens: dict[str, str]) -> dict[str, Any]:
    for _, name, status, who in outcome.answers:
        assert status in (200, 503), (status, who)
        if status == 200:
            assert who == name  # the right user, never a guest or another user
        else:
            assert who == "store_unavailable"
    failures = outcome.failures()
    assert failures, "the kill caused no error at all: the test did not test anything"
    last = max(at for at, *_ in outcome.answers)
    assert last - failures[-1][0] >= 0.9, "still failing at the end"
    return {
        "window_ms": round((failures[-1][0] - outcome.kill_at) * 1000),
        "first_error_ms": round((failures[0][0] - outcome.kill_at) * 1000),
        "failed": len(failures),
        "requests": len(outcome.answers),
        "users_hit": len({name for _, name, *_ in failures}),
    }


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[_topology.Cluster]:
    started = _topology.start_cluster(tmp_path / "cluster", node_timeout_ms=500)
    yield started
    started.stop()


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[_topology.SentinelGroup]:
    started = _topology.start_sentinel_group(tmp_path / "sentinel", down_after_ms=500)
    yield started
    started.stop()


@pytest.mark.anyio
@pytest.mark.parametrize("wait", [0, 1])
async def test_killing_a_cluster_master(
    tmp_path: Path, cluster: _topology.Cluster, wait: int
) -> None:
    url = cluster.url + f"?wait={wait}&wait_timeout=200"
    victim = cluster.masters[0]  # serves slots 0-5460
    outcome, tokens, store = await _run(
        tmp_path, url, lambda: cluster.kill(victim), _recovered_after
    )
    stats = _check_answers(outcome, tokens)
    # Only users whose slot lived on the dead master saw errors; the others none.
    hit = {name for _, name, *_ in outcome.failures()}
    for name in hit:
        key = store._session_key(_sid(tokens[name]))
        assert key is not None
        assert key_slot(key[0]) < 5461, name
    assert len(hit) < USERS
    assert cluster.master_of_slot(0) == cluster.replicas[0]  # the replica took over

    def on_victim(token: str) -> bool:
        key = store._session_key(_sid(token))
        return key is not None and key_slot(key[0]) < 5461

    lost, recent = await _lost(url, outcome, on_victim)
    if wait:
        assert lost == 0  # acknowledged only once a replica had it
    print(f"\ncluster failover (wait={wait}): {stats}, sessions lost: {lost} of {recent} "
          "created on the killed master in the last second before the kill")  # fmt: skip
    await store.close()


def _sid(token: str) -> str:
    from coatcheck.sessions.ids import session_id

    sid = session_id(token)
    assert sid is not None
    return sid


@pytest.mark.anyio
@pytest.mark.parametrize("wait", [0, 1])
async def test_killing_the_sentinel_master(
    tmp_path: Path, sentinel_group: _topology.SentinelGroup, wait: int
) -> None:
    url = sentinel_group.url(0) + f"?wait={wait}&wait_timeout=200"
    old = sentinel_group.master
    outcome, tokens, store = await _run(
        tmp_path, url, lambda: sentinel_group.kill(old), _recovered_after
    )
    stats = _check_answers(outcome, tokens)
    assert sentinel_group.current_master() != old
    lost, recent = await _lost(url, outcome)
    if wait:
        assert lost == 0
    print(f"\nsentinel failover (wait={wait}): {stats}, sessions lost: {lost} of {recent} "
          "created in the last second before the kill")  # fmt: skip
    await store.close()
