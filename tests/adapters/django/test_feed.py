"""Hybrid mode across processes: revocations go out on the revocation feed (Redis
pub/sub here) and come in from it, on the feed's own thread, for WSGI and ASGI alike.
The "other process" is a second feed on the same channel with a set of its own."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from coatcheck.adapters.django.conf import FeedThread, get_runtime
from coatcheck.adapters.django.devices import devices
from coatcheck.revocation import RevocationSet
from coatcheck.sync import run_sync

from .test_middleware import PASSWORD, coatcheck_settings, log_in, who


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    # Waits on a real network round trip (pub/sub), not on a timing assumption.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture
def feed_url(redis_url: str) -> str:
    return f"{redis_url}?channel=ccdj-feed-{secrets.token_hex(4)}"


@pytest.fixture
def other_process(feed_url: str) -> Iterator[tuple[FeedThread, RevocationSet]]:
    from datetime import timedelta

    revoked = RevocationSet(retention=timedelta(minutes=10))
    thread = FeedThread(feed_url, revoked)
    yield thread, revoked
    thread.close()


@pytest.fixture
def ada(redis_url: str, feed_url: str) -> Iterator[User]:
    store = f"{redis_url}?prefix=ccdj-feed:{secrets.token_hex(4)}:"
    User.objects.all().delete()
    with override_settings(COATCHECK=coatcheck_settings("hybrid", STORE=store, FEED=feed_url)):
        yield User.objects.create_user("ada", password=PASSWORD)
    User.objects.all().delete()


def test_a_password_change_reaches_the_other_processes(
    ada: User, other_process: tuple[FeedThread, RevocationSet]
) -> None:
    _, elsewhere = other_process
    here, laptop = Client(), Client()
    log_in(here)
    log_in(laptop)
    laptop_sid = next(r.id for r in devices(ada) if r.id != _sid(here))
    assert get_runtime().feed_thread is not None
    here.post("/change-password", {"password": "another long passphrase"})
    assert eventually(lambda: elsewhere.is_revoked(laptop_sid, time.time()))
    assert not elsewhere.is_revoked(_sid(here), time.time())


def test_a_revocation_from_elsewhere_is_refused_here_at_once(
    ada: User, other_process: tuple[FeedThread, RevocationSet]
) -> None:
    sender, _ = other_process
    client = Client()
    log_in(client)
    assert who(client) == "ada"
    sid = _sid(client)
    runtime = get_runtime()
    assert eventually(lambda: runtime.feed_thread is not None and runtime.feed_thread.feed.healthy)
    run_sync(sender.feed.publish([sid]))
    assert eventually(lambda: runtime.revocations.is_revoked(sid, time.time()))
    # The access token has minutes to live, and the store still has the session: only the
    # feed can have told this process.
    assert who(client) is None


def _sid(client: Client) -> str:
    from django.test import RequestFactory

    from coatcheck.adapters.django.auth import authenticate

    request = RequestFactory().get(
        "/", HTTP_COOKIE=f"coatcheck_access={client.cookies['coatcheck_access'].value}"
    )
    identity = authenticate(request)
    assert identity is not None
    assert identity.session_id is not None
    return identity.session_id
