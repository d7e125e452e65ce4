"""open_feed and default_feed_url: the feed every process agrees on, from a URL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coatcheck.errors import ConfigurationError
from coatcheck.revocation import RevocationSet
from coatcheck.stores.feeds import default_feed_url, open_feed
from coatcheck.stores.postgres_revocation import PostgresRevocationFeed
from coatcheck.stores.redis_revocation import RedisRevocationFeed

SET = RevocationSet(retention=timedelta(minutes=6))


def test_the_default_feed_is_the_stores_own_server() -> None:
    assert default_feed_url("redis://h:6379/2?prefix=x:") == "redis://h:6379/2?prefix=x:"
    assert default_feed_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert default_feed_url("sqlite:///x.db") is None
    assert default_feed_url("memory://") is None


def test_open_feed_by_scheme_and_channel() -> None:
    redis = open_feed("redis://127.0.0.1:6379/15?prefix=p:", SET)
    assert isinstance(redis, RedisRevocationFeed)
    assert redis.channel == "coatcheck:revoked"
    assert open_feed("rediss://h/0?channel=mine", SET).channel == "mine"
    pg = open_feed("postgresql://u@h/db?table=t&channel=other_one", SET)
    assert isinstance(pg, PostgresRevocationFeed)
    assert pg.channel == "other_one"
    assert open_feed("postgres://u@h/db", SET).channel == "coatcheck_revoked"


@pytest.mark.parametrize(
    "url", ["sqlite:///x.db", "http://h", "", "redis://h/0?channel=bad channel"]
)
def test_bad_feed_urls_fail_at_start_up(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_feed(url, SET)


def test_a_postgres_feed_keeps_the_urls_libpq_options() -> None:
    # Regression: the feed derived from a store URL dropped its whole query, so
    # sslmode=require (and sslrootcert ...) quietly became a feed without TLS.
    url = "postgresql://u@h/db?table=t&sslmode=verify-full&sslrootcert=%2Fca.pem&schema=s"
    feed = open_feed(url, SET)
    assert isinstance(feed, PostgresRevocationFeed)
    assert feed._url == "postgresql://u@h/db?sslmode=verify-full&sslrootcert=%2Fca.pem"
    bare = open_feed("postgresql://u@h/db?table=t", SET)
    assert isinstance(bare, PostgresRevocationFeed)
    assert bare._url == "postgresql://u@h/db"


@pytest.mark.postgres
@pytest.mark.anyio
async def test_the_feeds_sslmode_reaches_the_server(postgres_store_url: str) -> None:
    # The shared test server speaks no TLS: sslmode=require must make the feed fail to
    # connect, as it makes the store fail; sslmode=disable connects.
    plain = open_feed(postgres_store_url + "&sslmode=disable", SET)
    assert isinstance(plain, PostgresRevocationFeed)
    conn = await plain._connect("test")  # what publishing and listening connect with
    await conn.close()
    tls = open_feed(postgres_store_url + "&sslmode=require", SET)
    assert isinstance(tls, PostgresRevocationFeed)
    with pytest.raises(Exception, match="does not support SSL"):
        await tls._connect("test")
