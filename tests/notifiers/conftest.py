"""Fixtures for notifier tests: a fake Slack on 127.0.0.1, a fake clock, and alert factories."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.model import PlannedAction, Target
from bot.notifiers.base import Alert, MemoryOutbox
from bot.notifiers.delivery import Pacer
from bot.notifiers.slack import SlackNotifier
from bot.sandbox.server import serve
from bot.sandbox.slack import DEFAULT_TOKEN, SlackSandbox

NOW = datetime(2024, 6, 4, 12, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock that only moves when slept on, so pacing is checked without waiting."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def notify_action(ticket_id: int = 1042, *, rule: str = "First reply overdue", occurrence: int = 1,
                  **overrides: Any) -> PlannedAction:
    """A notify PlannedAction shaped like the engine's (see the params contract)."""
    ticket = {"subject": f"Refund not received for order {ticket_id}",
              "url": f"https://acme.zendesk.com/agent/tickets/{ticket_id}", "status": "open",
              "priority": "urgent", "group": "Billing", "assignee": "Ben Okafor", "requester": "Zoe Park",
              "tags": ["vip", "refund"]}
    ticket.update(overrides.pop("ticket", {}))
    params: dict[str, Any] = {
        "channel": "#support-alerts", "user": None, "mention": [], "severity": "critical",
        "template": "*{{ requester }}* waits for a first reply on _{{ subject }}_",
        "values": {"requester": ticket["requester"], "subject": ticket["subject"]},
        "message": f"{ticket['requester']} waits for a first reply on {ticket['subject']}",
        "ticket": ticket, "rule": rule, "reason": "priority is urgent; first reply due 2h ago",
        "occurrence": occurrence,
        "sla": {"target": "first_reply", "deadline": (NOW - timedelta(minutes=125)).isoformat(),
                "remaining_seconds": -7500, "timezone": "Europe/Berlin"},
    }
    params.update(overrides)
    return PlannedAction(key=f"{rule}/zendesk:{ticket_id}/notify/{occurrence}", ticket_key=f"zendesk:{ticket_id}",
                         platform="zendesk", ticket_id=ticket_id, rule=rule, kind="notify",
                         target=Target.NOTIFIER, params=params, reason=params["reason"])


def make_alert(ticket_id: int = 1042, **overrides: Any) -> Alert:
    """An Alert built the way the executor builds it."""
    return Alert.from_action(notify_action(ticket_id, **overrides))


@pytest.fixture(scope="module")
def _slack_server() -> Iterator[SlackSandbox]:
    app = SlackSandbox()
    with serve(app):
        yield app


@pytest.fixture
def slack(_slack_server: SlackSandbox) -> SlackSandbox:
    """A freshly seeded fake Slack on a loopback port (one server per module, reset per test)."""
    _slack_server.reset()
    return _slack_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox() -> MemoryOutbox:
    return MemoryOutbox()


@pytest.fixture
def make_notifier(slack: SlackSandbox, clock: FakeClock, outbox: MemoryOutbox):
    """Build a SlackNotifier against the fake (bot token by default) with a fake pacer clock."""

    def build(*, environ: dict[str, str] | None = None, outbox: MemoryOutbox = outbox, **options: Any):
        env = environ if environ is not None else {"SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_API_URL": slack.api_url}
        options.setdefault("pacer", Pacer(clock=clock, sleep=clock.sleep))
        return SlackNotifier.from_env(outbox, environ=env, **options)

    return build


def walk_strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON-like payload (keys excluded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from walk_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from walk_strings(item)
