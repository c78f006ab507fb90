"""Shared pieces for the Freshdesk tests: one movable clock, a served sandbox, a connector wired to both.

Imported by the Freshdesk test modules (fixtures live in those modules; this
file only builds things), so nothing here is a pytest plugin.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.connectors.base import ChangePage
from bot.connectors.freshdesk import FreshdeskConnector
from bot.model import Ticket
from bot.retry import RateBudget, RetryPolicy
from bot.sandbox.freshdesk import FreshdeskSandbox
from bot.sandbox.server import RunningServer, SandboxApp, serve

API_KEY = "fd-test-key-5f3a9c1e7b"
NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)


class FakeTime:
    """The one clock of a test: the sandbox's `now`, the budget's monotonic seconds, and every sleep."""

    def __init__(self, start: datetime = NOW):
        self.at = start
        self.slept: list[float] = []

    def now(self) -> datetime:
        """Wall time for the sandbox."""
        return self.at

    def monotonic(self) -> float:
        """Seconds for the connector's budget and directory refresh."""
        return (self.at - NOW).total_seconds()

    def sleep(self, seconds: float) -> None:
        """Record the wait and move time forward instead of blocking."""
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)

    def advance(self, **delta: float) -> None:
        """Move time forward, e.g. `advance(minutes=5)`."""
        self.at += timedelta(**delta)


class SandboxHost(SandboxApp):
    """One served port per test module whose requests go to the current test's sandbox.

    Stopping a werkzeug server waits out its 0.5 s poll, so tests share the
    server and swap the app (`use`) instead of serving one each.
    """

    def __init__(self) -> None:
        super().__init__()
        self.target: FreshdeskSandbox | None = None
        self.server: RunningServer = serve(self)
        self.url = self.server.url

    def use(self, time: FakeTime, **options: Any) -> FreshdeskSandbox:
        """A fresh sandbox on `time`, now answering on this host's port."""
        self.target = FreshdeskSandbox(api_key=API_KEY, clock=time.now, **options)
        self.target.base_url = self.url
        return self.target

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        assert self.target is not None, "call use() first"
        return self.target(environ, start_response)

    def stop(self) -> None:
        """Shut the shared server down."""
        self.server.stop()


@contextmanager
def running_sandbox(time: FakeTime, **options: Any) -> Iterator[tuple[FreshdeskSandbox, RunningServer]]:
    """A Freshdesk sandbox on its own free 127.0.0.1 port, driven by `time`."""
    app = FreshdeskSandbox(api_key=API_KEY, clock=time.now, **options)
    server = serve(app)
    try:
        yield app, server
    finally:
        server.stop()


def make_connector(url: str, time: FakeTime, *, api_key: str = API_KEY, limit: int = 700,
                   **options: Any) -> FreshdeskConnector:
    """A connector whose sleeps, budget and clock all run on `time` (seeded jitter: repeatable waits)."""
    retry = RetryPolicy(sleep=time.sleep, rng=random.Random(7))
    budget = RateBudget(limit, share=0.5, clock=time.monotonic, sleep=time.sleep)
    return FreshdeskConnector(url, api_key, retry=retry, budget=budget, clock=time.monotonic, **options)


def staff(app: FreshdeskSandbox) -> None:
    """Two groups and three agents, enough for routing tests."""
    app.add_group(11, "Billing")
    app.add_group(12, "Technical")
    app.add_agent(21, "Ana Almeida", "ana@support.example", group_ids=[11])
    app.add_agent(22, "Ben Brooks", "ben@support.example", group_ids=[11, 12], available=False)
    app.add_agent(23, "Chen Ito", "chen@support.example", group_ids=[12])


def drain(pages: Iterator[ChangePage]) -> tuple[list[Ticket], list[ChangePage]]:
    """Every ticket of a feed, and the pages themselves."""
    seen = list(pages)
    return [ticket for page in seen for ticket in page.tickets], seen


def stamp(moment: datetime) -> str:
    """Freshdesk's timestamp form."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# Fixtures shared by the Freshdesk test modules (registered in tests/conftest.py).
@pytest.fixture(scope="module")
def host():
    """One loopback server per test module; each test mounts a fresh sandbox on it."""
    host = SandboxHost()
    yield host
    host.stop()


@pytest.fixture
def time() -> FakeTime:
    """Virtual time shared by the sandbox and the connector."""
    return FakeTime()


@pytest.fixture
def app(host, time):
    """A fresh Freshdesk sandbox with agents and groups, mounted on the module's server."""
    app = host.use(time)
    staff(app)
    return app
