"""``coatcheck sessions``: list, revoke and prune server-side sessions in any store.

Exit codes: 0 done, 1 not found, the store failed or the revocation feed could not
be reached (the error code is printed), 2 usage (including a bad ``--store`` URL).
The store URL comes from ``--store``, else ``$COATCHECK_STORE``, else
``sqlite:///coatcheck.db`` (the demo's default).

``revoke`` and ``revoke-user`` also publish the revoked ids on the revocation feed
(``--feed``, else ``$COATCHECK_FEED``, else the store's own Redis or PostgreSQL
server, as the demo and :func:`coatcheck.stores.feeds.default_feed_url` do), so
running hybrid-mode servers refuse those sessions' access tokens within about a
second instead of one access-token lifetime; the command says what it published.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from ..errors import CoatcheckError, ConfigurationError
from ..revocation import RevocationFeed, RevocationSet
from ..sessions import SessionManager, SessionRecord
from ..sessions.ids import is_session_id
from ..stores import open_store
from ..stores.feeds import default_feed_url, open_feed

__all__ = ["DEFAULT_STORE", "register"]

DEFAULT_STORE = "sqlite:///coatcheck.db"
_ENV_STORE = "COATCHECK_STORE"
_ENV_FEED = "COATCHECK_FEED"
# This command cannot know the servers' access-token lifetimes: it asks them to keep
# the ids a day, and each keeps them only as long as its own tokens live.
_FEED_RETENTION = timedelta(days=1)

_OK, _FAILED, _USAGE = 0, 1, 2
_UA_WIDTH = 40
_USER_ID_HINT = (
    "hint: --user takes the user id the application logged in, not the username "
    "(the demo's ids look like u_0123456789abcdef; its account page shows yours)"
)


def register(subparsers: Any) -> None:
    """Add ``sessions list|revoke|revoke-user|prune`` to a ``coatcheck`` argument parser."""
    sessions = subparsers.add_parser(
        "sessions",
        help="list, revoke and prune server-side sessions",
        description="List, revoke and prune server-side sessions in a session store.",
    )
    sessions.set_defaults(func=_usage(sessions))
    commands = sessions.add_subparsers(dest="sessions_command", metavar="COMMAND")

    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help=f"session store URL (default: ${_ENV_STORE} or {DEFAULT_STORE}); e.g. memory://, "
        "sqlite:////abs/path.db, redis://127.0.0.1:6379/0, postgresql://user@host:5432/db",
    )

    listing = commands.add_parser(
        "list", parents=[store], help="list a user's live sessions, oldest first"
    )
    listing.add_argument(
        "--user", required=True, metavar="USER", help="the user id (not the username)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=_list)

    feed = argparse.ArgumentParser(add_help=False)
    feed.add_argument(
        "--feed",
        metavar="URL",
        default=None,
        help=f"revocation feed to publish on (default: ${_ENV_FEED}, else the store's server "
        "when it is Redis or PostgreSQL); redis://... or postgresql://..., ?channel=NAME "
        "for another channel, 'none' to publish nothing",
    )

    revoke = commands.add_parser(
        "revoke", parents=[store, feed], help="end one session by its id (and publish it)"
    )
    revoke.add_argument("session_id", metavar="ID", help="a session id, as `list` shows it")
    revoke.set_defaults(func=_revoke)

    revoke_user = commands.add_parser(
        "revoke-user", parents=[store, feed], help="end every session of a user (and publish them)"
    )
    revoke_user.add_argument("user", metavar="USER", help="the user id")
    revoke_user.set_defaults(func=_revoke_user)

    prune = commands.add_parser("prune", parents=[store], help="remove expired sessions")
    prune.add_argument(
        "--limit", type=_positive, default=None, metavar="N", help="remove at most N (default: all)"
    )
    prune.set_defaults(func=_prune)


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: choose a command: list, revoke, revoke-user, prune",
              file=sys.stderr)
        return _USAGE

    return handler


def _run(
    args: argparse.Namespace,
    action: Callable[[SessionManager], Awaitable[int]],
    *,
    publish: Callable[[], int] | None = None,
) -> int:
    """Open the store (and with ``publish``, which counts the ids the action revoked,
    the feed), run ``action`` with a manager on them, map errors to exit codes."""
    url = args.store or os.environ.get(_ENV_STORE) or DEFAULT_STORE
    feed_url = None
    if publish is not None:
        feed_url = args.feed or os.environ.get(_ENV_FEED) or default_feed_url(url)
        if feed_url == "none":
            feed_url = None
    try:
        store = open_store(url)
        feed = None if feed_url is None else open_feed(
            feed_url, RevocationSet(retention=_FEED_RETENTION)
        )  # fmt: skip
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _USAGE

    async def main() -> int:
        try:
            code = await action(SessionManager(store, revocations=feed))
            if publish is None or not publish():
                return code
            return _report_feed(feed, feed_url, publish(), code)
        finally:
            if feed is not None:
                await feed.stop()
            await store.close()

    try:
        return asyncio.run(main())
    except CoatcheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _FAILED


def _report_feed(feed: RevocationFeed | None, url: str | None, count: int, code: int) -> int:
    """Say what was published; a feed that could not be reached fails the command."""
    if feed is None:
        print(
            "note: no revocation feed (the store is not Redis or PostgreSQL, or --feed none): "
            "hybrid-mode servers in other processes accept these sessions' access tokens "
            "until they expire",
            file=sys.stderr,
        )
        return code
    where = f"{_describe(url or '')} (channel {feed.channel})"
    if feed.pending:
        print(
            f"error: store_unavailable: the revocation feed {where} could not be reached; "
            "the sessions are gone from the store, but running hybrid-mode servers accept "
            "their access tokens until they expire: run the command again",
            file=sys.stderr,
        )
        return _FAILED
    noun = "session id" if count == 1 else "session ids"
    print(
        f"published {count} {noun} on the revocation feed {where}: running hybrid-mode "
        "servers refuse their access tokens within about a second"
    )
    return code


def _describe(url: str) -> str:
    # Network URLs may carry a password: show only the scheme and host part.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2].partition('/')[0]}"


def _list(args: argparse.Namespace) -> int:
    async def action(manager: SessionManager) -> int:
        records = await manager.list_user(args.user)
        if args.json:
            json.dump([_as_json(r) for r in records], sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        elif not records:
            print(f"no live sessions for user {args.user!r}")
        else:
            _table(records, sys.stdout)
        if not records:
            # The commonest slip: sessions are indexed by the user id, not the login name.
            print(_USER_ID_HINT, file=sys.stderr)
        return _OK

    return _run(args, action)


def _revoke(args: argparse.Namespace) -> int:
    sid = args.session_id.strip()
    if not is_session_id(sid):
        print(
            "error: that is not a session id (8 hex digits, a dot, 64 hex digits; "
            "see `coatcheck sessions list`)",
            file=sys.stderr,
        )
        return _USAGE

    async def action(manager: SessionManager) -> int:
        # Published even when the store no longer has it: a second run after a feed
        # outage must still reach the servers.
        record = await manager.revoke_id(sid)
        if record is None:
            print("error: not_found: no session with that id", file=sys.stderr)
            return _FAILED
        print(f"revoked session {record.id} of user {record.user_id!r}")
        return _OK

    return _run(args, action, publish=lambda: 1)


def _revoke_user(args: argparse.Namespace) -> int:
    revoked: list[str] = []

    async def action(manager: SessionManager) -> int:
        ids = await manager.revoke_user(args.user)
        revoked.extend(ids)
        noun = "session" if len(ids) == 1 else "sessions"
        print(f"revoked {len(ids)} {noun} of user {args.user!r}")
        for sid in ids:
            print(f"  {sid}")
        return _OK

    return _run(args, action, publish=lambda: len(revoked))


def _prune(args: argparse.Namespace) -> int:
    async def action(manager: SessionManager) -> int:
        removed = await manager.prune(args.limit)
        noun = "session" if removed == 1 else "sessions"
        print(f"removed {removed} expired {noun}")
        return _OK

    return _run(args, action)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _as_json(record: SessionRecord) -> dict[str, Any]:
    # The session data stays out: it may hold what the application keeps private.
    return {
        "id": record.id,
        "user_id": record.user_id,
        "created_at": _iso(record.created_at),
        "last_seen": _iso(record.last_seen),
        "expires_at": _iso(record.expires_at),
        "absolute_expires_at": _iso(record.absolute_expires_at),
        "auth_time": _iso(record.auth_time),
        "user_agent": record.user_agent,
        "ip": record.ip,
    }


def _clip(text: str, width: int) -> str:
    # User agents come from clients: keep them on one line and within the column.
    text = " ".join(text.split()) or "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(records: Sequence[SessionRecord], out: TextIO) -> None:
    header = ("ID", "CREATED", "LAST SEEN", "EXPIRES", "USER AGENT", "IP")
    rows = [
        (
            r.id,
            _when(r.created_at),
            _when(r.last_seen),
            _when(min(r.expires_at, r.absolute_expires_at)),
            _clip(r.user_agent, _UA_WIDTH),
            _clip(r.ip, 45),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
