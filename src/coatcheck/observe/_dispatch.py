"""What every observer of :mod:`coatcheck.events` shares: a handler per event type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import events
from ..events import Event, Subscription

__all__ = ["Dispatching"]


class Dispatching:
    """Calls the handler of each event's type; subclasses fill ``_handlers``."""

    _handlers: dict[type[Event], Callable[[Any], None]]

    @property
    def kinds(self) -> tuple[type[Event], ...]:
        """The event types this observer records."""
        return tuple(self._handlers)

    def subscribe(self) -> Subscription:
        """Record every event of the process from now on (close the subscription to stop)."""
        return events.subscribe(self, *self.kinds)

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)
