"""The runner's sense of time: the wall clock, except that it never runs backwards.

Rules fire on the rising edge of their condition. If the machine's clock stepped
back (NTP correction, a VM restored, a restart on a host whose clock is behind),
an age condition that already fired would turn false and then true again, and
fire twice. So the runner evaluates at `max(wall clock, latest instant seen)`;
the latest instant is kept in the state store, so a restart on a slow clock is
covered too. Forward jumps need nothing: time-based rules due meanwhile fire
once, and feed cursors come from the helpdesk's own data, never from this clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta

from bot.errors import StateError
from bot.logging_setup import event, get_logger
from bot.state import StateStore
from bot.state.codec import from_text, to_text

META_KEY = "clock_high_water"
_PERSIST_EVERY = timedelta(minutes=1)


class SteadyClock:
    """A clock callable that holds at the latest instant seen when the wall clock steps back."""

    def __init__(self, wall: Callable[[], datetime], store: StateStore | None = None,
                 logger: logging.Logger | None = None):
        self.wall = wall
        self.store = store
        self.log = logger or get_logger("runner")
        stored = store.get_meta(META_KEY) if store is not None else None
        self.latest: datetime | None = from_text(stored) if stored else None
        self._persisted = self.latest
        self._behind = False

    def __call__(self) -> datetime:
        now = self.wall()
        if self.latest is not None and now < self.latest:
            if not self._behind:
                event(self.log, "clock stepped back; holding at the latest time seen", level=logging.WARNING,
                      wall=now.isoformat(), holding=self.latest.isoformat())
                self._behind = True
            return self.latest
        if self._behind:
            event(self.log, "clock caught up", wall=now.isoformat())
            self._behind = False
        self.latest = now
        if self.store is not None and (self._persisted is None or now - self._persisted >= _PERSIST_EVERY):
            with suppress(StateError):  # reading the time must not fail (/healthz); the jobs report the store
                self.store.set_meta(META_KEY, to_text(now))
                self._persisted = now
        return now
