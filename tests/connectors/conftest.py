"""Fixtures for the Zendesk connector tests: a sandbox on 127.0.0.1 and connectors on virtual time.

Names start with `zd_` (or are `zendesk`) because this directory is shared with
the Freshdesk tests. Time is virtual: the sandbox's clock, the connector's
budgets and every sleep share one `VirtualTime`, so rate limits, Retry-After and
job polling run instantly and deterministically.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.connectors.zendesk import ZendeskConnector
from bot.connectors.zendesk_http import ZendeskConfig
from bot.retry import RetryPolicy
from bot.sandbox import seed
from bot.sandbox.server import serve
from bot.sandbox.zendesk import ZendeskSandbox

ZD_EMAIL = "deskbot@support.example"
ZD_TOKEN = "zd-T0KEN-must-never-be-logged-7f3a"


class VirtualTime:
    """One clock for server and client: `sleep` advances it and is recorded."""

    def __init__(self, start: datetime = seed.DEFAULT_NOW):
        self.start = start
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        """The current virtual UTC time."""
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        """Seconds since the start, for the rate budgets."""
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        """Record the wait and move time on, instantly."""
        self.sleeps.append(seconds)
        self.elapsed += seconds

    def advance(self, seconds: float) -> None:
        """Let time pass without anyone sleeping (humans working, the world moving on)."""
        self.elapsed += seconds


@pytest.fixture
def zd_time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def zd_queue() -> seed.Queue:
    return seed.generate(7, tickets=40)


@pytest.fixture
def zd_sandbox(zd_queue: seed.Queue, zd_time: VirtualTime) -> ZendeskSandbox:
    return ZendeskSandbox(zd_queue, clock=zd_time.now, email=ZD_EMAIL, api_token=ZD_TOKEN)


class SandboxHost:
    """One loopback server for the whole session; each test mounts its own sandbox on it.

    Stopping a werkzeug server waits out its half-second poll, so one server per test would
    make this directory slow for nothing.
    """

    def __init__(self) -> None:
        self.app: ZendeskSandbox | None = None
        self.base_url = ""
        self._server = serve(self)  # type: ignore[arg-type]  # any WSGI callable with base_url works
        self.url = self._server.url

    def mount(self, app: ZendeskSandbox) -> SandboxHost:
        """Serve `app` from now on (its next/after URLs point here)."""
        app.base_url = self.url
        self.app = app
        return self

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        assert self.app is not None, "no sandbox mounted"
        return self.app(environ, start_response)

    def stop(self) -> None:
        """Shut the server down."""
        self._server.stop()


@pytest.fixture(scope="session")
def zd_host() -> Iterator[SandboxHost]:
    host = SandboxHost()
    yield host
    host.stop()


@pytest.fixture
def zd_server(zd_host: SandboxHost, zd_sandbox: ZendeskSandbox) -> SandboxHost:
    """The running sandbox: `.url` and `.app`."""
    return zd_host.mount(zd_sandbox)


@pytest.fixture
def zendesk(zd_server: SandboxHost, zd_time: VirtualTime) -> Callable[..., ZendeskConnector]:
    """Build a connector on the sandbox: `zendesk(per_page=10, token=...)`."""

    def make(token: str = ZD_TOKEN, attempts: int = 5, **config: Any) -> ZendeskConnector:
        config.setdefault("url", zd_server.url)
        settings = ZendeskConfig(subdomain="acme", email=ZD_EMAIL, api_token=token, **config)
        retry = RetryPolicy(attempts=attempts, sleep=zd_time.sleep, rng=random.Random(3))
        return ZendeskConnector(settings, retry=retry, clock=zd_time.now, sleep=zd_time.sleep,
                                monotonic=zd_time.monotonic)

    return make
