"""`coatcheck sessions ...` through a minimal argparse main, on a real SQLite file."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from datetime import timedelta
from pathlib import Path

import pytest

from coatcheck.cli.sessions_cmd import register
from coatcheck.clock import SystemClock
from coatcheck.revocation import RevocationSet
from coatcheck.sessions import SessionManager, SessionRecord
from coatcheck.stores.feeds import open_feed
from coatcheck.stores.sqlite import SQLiteStore
from tests.stores.contract import make_record


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="coatcheck")
    register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    code = args.func(args)
    assert isinstance(code, int)
    return code


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def url(db: Path) -> str:
    return f"sqlite:///{db}"


def seed(
    db: Path, user: str, count: int, *, user_agent: str = "", ip: str = ""
) -> list[SessionRecord]:
    async def main() -> list[SessionRecord]:
        store = SQLiteStore(db)
        manager = SessionManager(store)
        records = [
            (await manager.create(user, user_agent=user_agent, ip=ip))[1] for _ in range(count)
        ]
        await store.close()
        return records

    return asyncio.run(main())


def stored(db: Path, session_id: str) -> SessionRecord | None:
    async def main() -> SessionRecord | None:
        store = SQLiteStore(db)
        try:
            return await store.get(session_id, SystemClock().now())
        finally:
            await store.close()

    return asyncio.run(main())


def test_list_table(db: Path, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    records = seed(db, "alice", 2, user_agent="Mozilla/5.0 " + "x" * 80, ip="203.0.113.9")
    seed(db, "bob", 1)
    assert run(["sessions", "list", "--user", "alice", "--store", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "CREATED", "LAST", "SEEN", "EXPIRES", "USER", "AGENT", "IP"]
    assert len(lines) == 3
    for line, record in zip(lines[1:], records, strict=True):
        assert line.startswith(record.id + "  ")
        assert "203.0.113.9" in line
        assert "Mozilla/5.0 xxx" in line
        assert "x" * 80 not in line  # clipped
        assert line.count("Z") == 3


def test_list_json(db: Path, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    (record,) = seed(db, "zoë", 1, user_agent="UA", ip="::1")
    assert run(["sessions", "list", "--user", "zoë", "--json", "--store", url]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["id"] == record.id
    assert item["user_id"] == "zoë"
    assert item["user_agent"] == "UA"
    assert item["ip"] == "::1"
    assert item["created_at"].endswith("Z")
    assert "data" not in item


def test_list_nobody(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sessions", "list", "--user", "nobody", "--store", url]) == 0
    out, err = capsys.readouterr()
    assert "no live sessions" in out
    assert "takes the user id" in err
    assert "not the username" in err
    assert run(["sessions", "list", "--user", "nobody", "--json", "--store", url]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []  # the hint stays out of the JSON
    assert "takes the user id" in err


def test_list_gives_no_hint_when_sessions_exist(
    db: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, "u_0123456789abcdef", 1)
    assert run(["sessions", "list", "--user", "u_0123456789abcdef", "--store", url]) == 0
    assert capsys.readouterr().err == ""


def test_revoke(db: Path, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = seed(db, "alice", 2)
    assert run(["sessions", "revoke", first.id, "--store", url]) == 0
    assert first.id in capsys.readouterr().out
    assert stored(db, first.id) is None
    assert stored(db, second.id) is not None
    assert run(["sessions", "revoke", first.id, "--store", url]) == 1
    assert "not_found" in capsys.readouterr().err


def test_revoke_malformed_id_is_usage(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sessions", "revoke", "not-an-id", "--store", url]) == 2
    assert "not a session id" in capsys.readouterr().err


def test_revoke_user(db: Path, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    mine = seed(db, "alice", 3)
    (bobs,) = seed(db, "bob", 1)
    assert run(["sessions", "revoke-user", "alice", "--store", url]) == 0
    out = capsys.readouterr().out
    assert "revoked 3 sessions" in out
    for record in mine:
        assert record.id in out
        assert stored(db, record.id) is None
    assert stored(db, bobs.id) is not None
    assert run(["sessions", "revoke-user", "alice", "--store", url]) == 0
    assert "revoked 0 sessions" in capsys.readouterr().out


def test_prune(db: Path, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    now = SystemClock().now()

    async def main() -> None:
        store = SQLiteStore(db)
        for i in range(3):
            await store.create(make_record(now - 1000, expires_at=now - 100 - i))
        await store.close()

    asyncio.run(main())
    (live,) = seed(db, "alice", 1)
    assert run(["sessions", "prune", "--limit", "2", "--store", url]) == 0
    assert "removed 2 expired sessions" in capsys.readouterr().out
    assert run(["sessions", "prune", "--store", url]) == 0
    assert "removed 1 expired session\n" in capsys.readouterr().out
    assert stored(db, live.id) is not None


@pytest.mark.parametrize("limit", ["0", "-3", "many"])
def test_prune_bad_limit_is_usage(url: str, limit: str) -> None:
    assert run(["sessions", "prune", "--limit", limit, "--store", url]) == 2


def test_memory_store_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sessions", "prune", "--store", "memory://"]) == 0
    assert "removed 0" in capsys.readouterr().out


def test_default_store_is_coatcheck_db_in_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COATCHECK_STORE", raising=False)
    seed(tmp_path / "coatcheck.db", "alice", 1)
    assert run(["sessions", "list", "--user", "alice"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_store_from_environment(
    db: Path, url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COATCHECK_STORE", url)
    seed(db, "alice", 2)
    assert run(["sessions", "list", "--user", "alice"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_bad_store_url_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sessions", "list", "--user", "a", "--store", "sqlite://relative.db"]) == 2
    err = capsys.readouterr().err
    assert "configuration_error" in err
    assert "three slashes" in err


def test_store_failure_prints_the_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 200)
    assert run(["sessions", "prune", "--store", f"sqlite:///{garbage}"]) == 1
    assert "store_error" in capsys.readouterr().err


def test_store_unavailable_prints_the_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "folder.db"
    folder.mkdir()
    assert run(["sessions", "list", "--user", "a", "--store", f"sqlite:///{folder}"]) == 1
    assert "store_unavailable" in capsys.readouterr().err


def test_missing_command_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sessions"]) == 2
    assert "choose a command" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["sessions", "list"], ["sessions", "revoke"], ["sessions", "revoke-user"], ["sessions", "x"]],
)
def test_missing_arguments_are_usage(argv: list[str]) -> None:
    assert run(argv) == 2


# -- revocations reach running servers (issue 12 item 6) ------------------------------------


def test_without_a_feed_the_command_says_so(
    db: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (record,) = seed(db, "alice", 1)
    assert run(["sessions", "revoke", record.id, "--store", url]) == 0
    assert "no revocation feed" in capsys.readouterr().err
    (other,) = seed(db, "alice", 1)
    assert run(["sessions", "revoke", other.id, "--store", url, "--feed", "none"]) == 0
    assert "no revocation feed" in capsys.readouterr().err


@pytest.mark.redis
def test_revoke_publishes_on_the_feed(
    db: Path, url: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    channel = f"cctcli_{secrets.token_hex(4)}"
    feed_url = f"{redis_url}?channel={channel}"
    (one,) = seed(db, "alice", 1)
    bobs = seed(db, "bob", 2)

    async def listen_while(argvs: list[list[str]]) -> tuple[RevocationSet, list[int]]:
        heard = RevocationSet(retention=timedelta(minutes=6))
        listener = open_feed(feed_url, heard)
        await listener.start(wait=5)
        try:
            codes = [await asyncio.to_thread(run, argv) for argv in argvs]
            for _ in range(200):
                if all(heard.is_revoked(r.id, SystemClock().now()) for r in [one, *bobs]):
                    break
                await asyncio.sleep(0.01)
            return heard, codes
        finally:
            await listener.stop()

    heard, codes = asyncio.run(listen_while([
        ["sessions", "revoke", one.id, "--store", url, "--feed", feed_url],
        ["sessions", "revoke-user", "bob", "--store", url, "--feed", feed_url],
    ]))  # fmt: skip
    assert codes == [0, 0]
    assert all(heard.is_revoked(r.id, SystemClock().now()) for r in [one, *bobs])
    out = capsys.readouterr().out
    assert f"published 1 session id on the revocation feed redis://127.0.0.1:6379 (channel " \
        f"{channel})" in out
    assert "published 2 session ids" in out


@pytest.mark.redis
def test_an_unreachable_feed_fails_the_command(
    db: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (record,) = seed(db, "alice", 1)
    code = run(["sessions", "revoke", record.id, "--store", url, "--feed", "redis://127.0.0.1:1/0"])
    assert code == 1
    err = capsys.readouterr().err
    assert "store_unavailable" in err
    assert "run the command again" in err
    assert stored(db, record.id) is None  # the store part is done


def test_a_bad_feed_url_is_usage(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sessions", "revoke-user", "bob", "--store", url, "--feed", "http://x"]) == 2
    assert "revocation feed URL" in capsys.readouterr().err
