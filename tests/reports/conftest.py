"""A fake Slack for the report tests: one server per module, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.sandbox.server import serve
from bot.sandbox.slack import DEFAULT_TOKEN, SlackSandbox


@pytest.fixture(scope="module")
def _slack_server() -> Iterator[SlackSandbox]:
    app = SlackSandbox()
    with serve(app):
        yield app


@pytest.fixture
def slack(_slack_server: SlackSandbox) -> SlackSandbox:
    """A freshly seeded fake Slack on a loopback port."""
    _slack_server.reset()
    return _slack_server


@pytest.fixture
def slack_env(slack: SlackSandbox) -> dict[str, str]:
    """The environment that points deskbot at the fake Slack."""
    return {"SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_API_URL": slack.api_url}
