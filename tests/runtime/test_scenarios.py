"""Failure scenarios over real HTTP: the runner against the sandbox Zendesk and Slack served on 127.0.0.1."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bot.retry import RetryPolicy
from bot.runner import RunOptions
from bot.runtime.assemble import build_runner
from bot.sandbox import seed as seeding
from bot.sandbox.server import serve
from bot.sandbox.slack import DEFAULT_TOKEN, SlackSandbox
from bot.sandbox.zendesk import ZendeskSandbox
from tests.fakes import FakeConnector, make_ticket

RULES = """\
version: 1
mode: live
settings: {blast_radius: 1.0, digest_threshold: %d}
rules:
  - name: escalate urgent
    when:
      all: [{priority: urgent}, {tags: {lacks: bot_escalated}}, {status: {not_in: [solved, closed]}}]
    then:
      - add_tags: [bot_escalated]
      - add_note: "Escalated by deskbot"
      - notify: {channel: "#escalations", message: "Urgent #{{ id }}: {{ subject }}"}
"""


class Clock:
    def __init__(self):
        self.at = datetime.now(UTC)

    def __call__(self):
        return self.at


@pytest.fixture
def world(tmp_path):
    """Sandbox Zendesk + Slack on loopback and a runner wired to them exactly as `deskbot run` is."""
    zendesk = ZendeskSandbox(seeding.generate(3, tickets=40, now=datetime.now(UTC).replace(second=0)),
                             clock=lambda: datetime.now(UTC), job_polls=0)
    slack = SlackSandbox()
    sleeps: list[float] = []
    with serve(zendesk) as zd, serve(slack):
        def make(threshold: int = 100):
            rules = tmp_path / "rules.yaml"
            rules.write_text(RULES % threshold)
            env = {"ZENDESK_URL": zd.url, "ZENDESK_EMAIL": zendesk.email, "ZENDESK_API_TOKEN": zendesk.api_token,
                   "SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_API_URL": slack.api_url}
            clock = Clock()
            options = RunOptions(config_path=str(rules), state_path=str(tmp_path / "state.sqlite3"))
            runner, _ = build_runner(options, environ=env, clock=clock, platforms=["zendesk"],
                                     connector_options={"retry": RetryPolicy(sleep=sleeps.append)})
            return runner, clock
        yield zendesk, slack, make, sleeps


def urgent_ids(zendesk):
    return sorted(i for i in zendesk.tickets if zendesk.ticket(i).get("priority") == "urgent"
                  and zendesk.ticket(i).get("status") not in ("solved", "closed"))


def settle(runner, clock, rounds=8):
    for _ in range(rounds):
        runner.poll("zendesk")
        runner.deliver()
        clock.at += timedelta(minutes=10)


def test_a_429_and_5xx_storm_delays_but_never_duplicates_or_loses_a_write(world):
    zendesk, _slack, make, sleeps = world
    runner, clock = make()
    zendesk.faults.add(status=429, retry_after=0, times=6)
    zendesk.faults.add(status=503, times=4, path="/api/v2/tickets", method="PUT")
    settle(runner, clock)
    ids = urgent_ids(zendesk)
    assert ids, "the seeded queue has urgent tickets"
    for ticket_id in ids:
        assert "bot_escalated" in zendesk.ticket(ticket_id)["tags"]
        assert len([n for n in zendesk.private_notes(ticket_id) if n.startswith("Escalated by deskbot")]) == 1
    assert len(sleeps) >= 4, "429s were waited out by the retry policy, not hammered"
    assert zendesk.count("/api/v2/incremental") <= 8 + 6, "one export call per poll, plus the retried ones"
    assert runner.store.open_intents() == []


def test_a_long_slack_outage_delivers_every_alert_once_afterwards_without_hammering_slack(world):
    zendesk, slack, make, _ = world
    runner, clock = make(threshold=3)
    slack.outage(times=10_000)
    for _ in range(6):  # an hour of cycles with Slack down
        runner.poll("zendesk")
        runner.deliver()
        clock.at += timedelta(minutes=10)
    escalated = [i for i in urgent_ids(zendesk) if "bot_escalated" in zendesk.ticket(i)["tags"]]
    assert escalated and escalated == urgent_ids(zendesk), "Slack being down never held up ticket work"
    assert len(slack.requests) <= 12, "backoff: a handful of attempts in an hour, not one per alert per cycle"
    slack.faults.clear()
    for _ in range(4):
        clock.at += timedelta(minutes=10)
        runner.deliver()
    text = " ".join(m.text + str(m.blocks) for m in slack.messages)
    mentioned = Counter(int(n) for n in re.findall(r"#(\d+)\b", " ".join(m.text for m in slack.messages)))
    for ticket_id in urgent_ids(zendesk) + [i for i in zendesk.tickets if "bot_escalated" in zendesk.ticket(i)["tags"]]:
        assert f"{ticket_id}" in text
    assert all(n == 1 for n in mentioned.values()), mentioned
    assert runner.store.pending() == []


def test_a_rule_that_keeps_matching_after_its_own_action_acts_once_per_occurrence(tmp_path):
    from tests.runtime.test_runner import Clock as FakeClock
    from tests.runtime.test_runner import make_runner

    body = """
  - name: note open tickets
    when: {status: open}
    then: [{add_note: "seen"}]
"""
    fake = FakeConnector([make_ticket(i) for i in range(1, 4)])
    clock = FakeClock()
    runner = make_runner(tmp_path, body, {"zendesk": fake}, clock)
    for _ in range(5):  # each note changes the ticket, which comes back in the feed and is evaluated again
        runner.poll("zendesk")
        clock.advance(minutes=1)
    assert {i: len(notes) for i, notes in fake.notes.items()} == {1: 1, 2: 1, 3: 1}


def test_duplicate_and_out_of_order_feed_items_never_roll_the_mirror_back(tmp_path):
    from tests.runtime.test_runner import TAG_URGENT, make_runner
    from tests.runtime.test_runner import Clock as FakeClock

    new = make_ticket(1, subject="newest", updated_at=datetime(2024, 6, 10, 10, tzinfo=UTC))
    old = make_ticket(1, subject="older", updated_at=datetime(2024, 6, 10, 9, tzinfo=UTC))
    fake = FakeConnector([new])
    fake.feed = [new, new, old]  # repeated, then a stale copy in a later position
    runner = make_runner(tmp_path, TAG_URGENT, {"zendesk": fake}, FakeClock())
    runner.poll("zendesk")
    assert runner.store.mirror()["zendesk:1"].subject == "newest"
