"""Revocation feeds from a URL, as :func:`~coatcheck.stores.open_store` opens stores.

Every process that should hear a revocation (app servers, the ``coatcheck sessions``
command) opens the same feed: by default the session store's own Redis or PostgreSQL
server (:func:`default_feed_url`), on the feed's default channel.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError
from ..revocation import RevocationFeed, RevocationSet

__all__ = ["FEED_SCHEMES", "default_feed_url", "open_feed"]

#: URL schemes a revocation feed can use.
FEED_SCHEMES = ("redis", "rediss", "redis+cluster", "redis+sentinel", "postgresql", "postgres")
_SYSTEM_CLOCK = SystemClock()
# Query options of a PostgreSQL store or feed URL that are coatcheck's, not libpq's.
_PG_NOT_LIBPQ = frozenset({"table", "schema", "channel"})


def _scheme(url: str) -> str:
    return url.partition(":")[0].lower()


def default_feed_url(store_url: str) -> str | None:
    """The feed a session store implies: its own server for Redis and PostgreSQL, else
    ``None`` (memory and SQLite stores live in one process or one machine)."""
    return store_url if _scheme(store_url) in FEED_SCHEMES else None


def open_feed(
    url: str, revocations: RevocationSet, *, clock: Clock = _SYSTEM_CLOCK
) -> RevocationFeed:
    """The feed a URL names: ``redis://`` and ``redis+sentinel://`` (pub/sub),
    ``redis+cluster://`` (sharded pub/sub) or ``postgresql://`` (LISTEN/NOTIFY).

    ``?channel=NAME`` picks the channel (default: the feed's own); a store URL's own
    options (``prefix``; ``table``, ``schema``) are ignored, so a store URL works as a
    feed URL. A PostgreSQL URL keeps its libpq options (``sslmode``, ``sslrootcert``,
    ``target_session_attrs`` ...): the feed connects as the store does. The feed is
    not started (:meth:`RevocationFeed.start` listens; :meth:`RevocationFeed.publish`
    works without it).

    :raises ConfigurationError: for another scheme, a bad channel, or a missing driver.
    """
    scheme = _scheme(url)
    if scheme not in FEED_SCHEMES:
        raise ConfigurationError(
            "a revocation feed URL is redis://..., redis+cluster://..., redis+sentinel://... "
            "or postgresql://..."
        )
    options = dict(parse_qsl(urlsplit(url).query))
    base = url.partition("?")[0]
    channel = options.get("channel")
    if scheme.startswith("redis"):
        from .redis_revocation import RedisRevocationFeed

        if "sentinel_password" in options:  # the one option a feed needs to connect
            base += "?" + urlencode({"sentinel_password": options["sentinel_password"]})
        if channel is None:
            return RedisRevocationFeed(base, revocations, clock=clock)
        return RedisRevocationFeed(base, revocations, channel=channel, clock=clock)
    from .postgres_revocation import PostgresRevocationFeed

    # libpq's options stay (sslmode=require must not quietly become a clear-text feed);
    # the store's and the feed's own go.
    kept = [
        (k, v)
        for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)
        if k not in _PG_NOT_LIBPQ
    ]
    if kept:
        base += "?" + urlencode(kept)
    if channel is None:
        return PostgresRevocationFeed(base, revocations, clock=clock)
    return PostgresRevocationFeed(base, revocations, channel=channel, clock=clock)
