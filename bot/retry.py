"""The one place that owns backoff and API budgets for every connector.

`RetryPolicy.call()` retries `Unavailable` (5xx, timeouts) with full-jitter
exponential backoff and honours `RateLimited.retry_after`; `RateBudget` spaces
calls so the bot uses at most its share of the account's per-minute limit,
leaving the rest to the humans working in the helpdesk.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from bot.errors import RateLimited, Unavailable

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter; `sleep` and `rng` are injectable for tests."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, error: Exception) -> float:
        """Seconds to wait before attempt number `attempt + 1`."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(float(error.retry_after), self.max_retry_after) + self.rng.uniform(0, 0.25)
        return self.rng.uniform(0, min(self.cap, self.base * 2**attempt))

    def call(self, fn: Callable[[], T], on_retry: Callable[[int, Exception, float], None] | None = None) -> T:
        """Run `fn`, retrying transient failures; the last failure propagates."""
        for attempt in range(self.attempts):
            try:
                return fn()
            except Unavailable as error:  # RateLimited is a subclass
                if attempt == self.attempts - 1:
                    raise
                wait = self.delay(attempt, error)
                if on_retry:
                    on_retry(attempt + 1, error, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")


_LIMIT_HEADERS = ("x-ratelimit-total", "ratelimit-limit", "x-rate-limit", "rate-limit")
_REMAINING_HEADERS = (
    "x-ratelimit-remaining",
    "ratelimit-remaining",
    "x-rate-limit-remaining",
    "rate-limit-remaining",
)


def read_rate_headers(headers: Mapping[str, str]) -> tuple[int | None, int | None]:
    """(limit per minute, remaining) from any of the spellings Zendesk and Freshdesk use."""
    lower = {k.lower(): v for k, v in headers.items()}

    def first(names: tuple[str, ...]) -> int | None:
        for name in names:
            value = lower.get(name)
            if value is not None:
                try:
                    return int(str(value).split(",")[0].strip())
                except ValueError:
                    continue
        return None

    return first(_LIMIT_HEADERS), first(_REMAINING_HEADERS)


class RateBudget:
    """Sliding one-minute window capped at `share` of the account's limit.

    The limit starts at `limit_per_minute` and follows the rate-limit headers the
    helpdesk returns (`observe`). When the account as a whole runs low (remaining
    under the humans' reserve), calls are spaced out until the window resets.
    """

    def __init__(
        self,
        limit_per_minute: int,
        share: float = 0.5,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.limit = limit_per_minute
        self.share = share
        self.clock = clock
        self.sleep = sleep
        self.remaining: int | None = None
        self.calls = 0
        self.waited = 0.0
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def allowed_per_minute(self) -> int:
        """The bot's own cap: its share of the account's limit, at least one call."""
        return max(1, int(self.limit * self.share))

    def acquire(self) -> None:
        """Block until one more call fits in the budget, then count it."""
        with self._lock:
            while True:
                now = self.clock()
                while self._times and now - self._times[0] >= 60.0:
                    self._times.popleft()
                reserve = self.limit * (1 - self.share)
                starved = self.remaining is not None and self.remaining <= reserve
                if len(self._times) < self.allowed_per_minute and not (starved and self._times):
                    self._times.append(now)
                    self.calls += 1
                    return
                if starved and self._times:
                    # Humans are using the account: wait for our oldest call to age out.
                    self.remaining = None
                wait = 60.0 - (now - self._times[0]) if self._times else 1.0
                wait = max(wait, 0.01)
                self.waited += wait
                self.sleep(wait)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the account's real limit and remaining calls from a response."""
        limit, remaining = read_rate_headers(headers)
        with self._lock:
            if limit:
                self.limit = limit
            if remaining is not None:
                self.remaining = remaining
