"""express-session cookies and connect-redis sessions against the real Node packages."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest
import redis

from coatcheck.clock import SystemClock
from coatcheck.errors import SignatureError
from coatcheck.interop.connect_redis import AsyncConnectRedisStore, ConnectRedisStore
from coatcheck.interop.express import (
    ExpressSessionCookie,
    new_express_session,
    new_session_id,
    sign_value,
    unsign_value,
)
from coatcheck.policies import CookiePolicy

from .conftest import NodeRunner, ok

SECRETS = ["keyboard cat", "an older secret"]


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"coatcheck-test:{secrets.token_hex(6)}:"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _config(redis_url: str, prefix: str) -> dict[str, Any]:
    return {"redisUrl": redis_url, "prefix": prefix, "secrets": SECRETS}


def test_cookie_signature_both_ways(node_express: NodeRunner) -> None:
    values = ["abc", "Zx9-_Qp0wEr1tY2uI3oP4aS5dF6gH7jK", "with.dots.inside", "ünïcode"]
    ops = [{"op": "signature.sign", "value": v, "secret": s} for v in values for s in SECRETS]
    node_signed = [ok(r) for r in node_express(*ops)]
    assert node_signed == [sign_value(v, s) for v in values for s in SECRETS]
    for signed, value in zip(node_signed, [v for v in values for _ in SECRETS], strict=True):
        assert unsign_value(signed, SECRETS) == value
    # coatcheck-signed values unsign in cookie-signature; a tampered one does not
    mine = sign_value("session-id-1", SECRETS[0])
    back, tampered = node_express(
        {"op": "signature.unsign", "value": mine, "secrets": SECRETS},
        {"op": "signature.unsign", "value": mine[:-1] + "A", "secrets": SECRETS},
    )
    assert ok(back) == "session-id-1"
    assert ok(tampered) is False
    with pytest.raises(SignatureError):
        unsign_value(mine[:-1] + "A", SECRETS)


def test_cookie_parser_reads_coatcheck_cookie(node_express: NodeRunner) -> None:
    cookie = ExpressSessionCookie(SECRETS)
    sid = new_session_id()
    set_cookie = cookie.set_cookie(sid)
    pair = set_cookie.split(";", 1)[0]
    assert pair.startswith("connect.sid=s%3A")
    parsed, = node_express({"op": "cookieParser.signed", "header": pair, "secrets": SECRETS})
    assert ok(parsed)["signed"] == {"connect.sid": sid}


def test_session_written_by_express_is_read_by_coatcheck(
    node_express: NodeRunner, redis_url: str, prefix: str
) -> None:
    login, = node_express(
        {"op": "express.login", "data": {"userId": "u-7", "cart": [1, 2]},
         **_config(redis_url, prefix)}
    )
    result = ok(login)
    set_cookie = result["setCookie"][0]
    value = set_cookie.split(";", 1)[0].split("=", 1)[1]
    cookie = ExpressSessionCookie(SECRETS)
    sid = cookie.unsign(value)
    assert sid == result["body"]["sid"]
    assert cookie.read({"cookie": f"other=1; connect.sid={value}"}) == sid
    store = ConnectRedisStore(redis.Redis.from_url(redis_url, decode_responses=True), prefix=prefix)
    session = store.get(sid)
    assert session is not None
    assert session["userId"] == "u-7"
    assert session["cart"] == [1, 2]
    assert session["cookie"]["originalMaxAge"] == 86400000
    assert session["cookie"]["httpOnly"] is True
    ttl = redis.Redis.from_url(redis_url).ttl(prefix + sid)
    assert 86300 < ttl <= 86400


def test_session_written_by_coatcheck_is_read_by_express(
    node_express: NodeRunner, redis_url: str, prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    store = ConnectRedisStore(client, prefix=prefix)
    cookie = ExpressSessionCookie(SECRETS, policy=CookiePolicy(secure=False))
    sid = new_session_id()
    policy = CookiePolicy(secure=False)
    session = new_express_session(
        {"userId": "py-1", "roles": ["admin"]}, now=SystemClock().now(),
        max_age=timedelta(hours=2), policy=policy,
    )
    store.set(sid, session)
    assert 7100 < client.ttl(prefix + sid) <= 7200
    pair = cookie.set_cookie(sid).split(";", 1)[0]
    me, forged = node_express(
        {"op": "express.me", "cookie": pair, **_config(redis_url, prefix)},
        {"op": "express.me", "cookie": pair[:-3] + "abc", **_config(redis_url, prefix)},
    )
    body = ok(me)["body"]
    assert ok(me)["status"] == 200
    assert body["sid"] == sid
    assert body["session"]["userId"] == "py-1"
    assert body["session"]["roles"] == ["admin"]
    assert body["session"]["cookie"]["originalMaxAge"] == 7_200_000
    assert ok(forged)["status"] == 401
    assert ok(forged)["body"]["sid"] != sid
    # a session signed with the older secret still opens in Express (rotation)
    older = ExpressSessionCookie(list(reversed(SECRETS)))
    old_pair = older.set_cookie(sid).split(";", 1)[0]
    rotated, = node_express({"op": "express.me", "cookie": old_pair, **_config(redis_url, prefix)})
    assert ok(rotated)["body"]["sid"] == sid
    store.destroy(sid)
    gone, = node_express({"op": "express.me", "cookie": pair, **_config(redis_url, prefix)})
    assert ok(gone)["status"] == 401
    client.close()


@pytest.mark.anyio
async def test_async_store_shares_sessions_with_express(
    node_express: NodeRunner, redis_url: str, prefix: str
) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    store = AsyncConnectRedisStore(client, prefix=prefix)
    login, = node_express(
        {"op": "express.login", "data": {"userId": "a-1"}, **_config(redis_url, prefix)}
    )
    pair = ok(login)["setCookie"][0].split(";", 1)[0]
    sid = ExpressSessionCookie(SECRETS).unsign(unquote(pair.split("=", 1)[1]))
    session = await store.get(sid)
    assert session is not None
    session["userId"] = "a-2"
    await store.set(sid, session)
    me, = node_express({"op": "express.me", "cookie": pair, **_config(redis_url, prefix)})
    assert ok(me)["body"]["session"]["userId"] == "a-2"
    await client.aclose()
