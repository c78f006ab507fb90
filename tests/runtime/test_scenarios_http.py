"""The runner's failure scenarios, each proven over real HTTP on virtual time.

The real Zendesk connector talks to the sandbox Zendesk and the real Slack
notifier to the fake Slack, both on 127.0.0.1; the state is a SQLite file;
the runner is the one `deskbot run` drives. Counts come from the sandboxes
themselves: their request logs (with the simulated time of every request),
the audits Zendesk keeps per ticket, and the messages Slack received.
"""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest

from bot.sandbox import seed as seeding
from bot.state import IntentState
from tests.runtime.http_world import T0, busiest_minute, open_world

ESCALATE = """
  - name: escalate urgent
    when:
      all: [{priority: urgent}, {tags: {lacks: bot_escalated}}, {status: {not_in: [solved, closed]}}]
    then:
      - add_tags: [bot_escalated]
      - add_note: "Escalated by deskbot"
"""
RAISE_NORMAL = """
  - name: raise normal
    when: {all: [{priority: normal}, {status: {not_in: [solved, closed]}}]}
    then: [{set_priority: high}]
"""


@pytest.fixture
def make_world(tmp_path):
    """Open a world with a chosen queue and sandbox options (rate limit, ...); closed after the test."""
    with ExitStack() as stack:
        yield lambda queue=None, **options: stack.enter_context(open_world(tmp_path, queue, **options))


@pytest.fixture
def world(make_world):
    return make_world()


def open_ids(zendesk, **wanted):
    """Ids of the sandbox's unsolved tickets whose fields have these values."""
    out = []
    for ticket_id in sorted(zendesk.tickets):
        data = zendesk.ticket(ticket_id)
        if data["status"] not in ("solved", "closed") and all(
                (v(data[k]) if callable(v) else data[k] == v) for k, v in wanted.items()):
            out.append(ticket_id)
    return out


# -- 2. a 429/5xx storm on the helpdesk ------------------------------------------------------------------


def test_a_429_and_5xx_storm_keeps_to_the_budget_and_applies_every_decision_exactly_once(make_world):
    world = make_world(seeding.generate(5, tickets=60, now=T0), rate_limit=40)  # the bot's share: 20 a minute
    world.write_rules(ESCALATE + RAISE_NORMAL)
    urgent = open_ids(world.zendesk, priority="urgent")
    normal = open_ids(world.zendesk, priority=lambda p: p in (None, "normal"))  # no priority reads as normal
    assert len(urgent) >= 5 and len(normal) >= 5
    storm: dict[str, Any] = {"start": None, "n": 0, "waits": []}

    def weather(at, method, path):
        """From deskbot's first write on, five minutes of 429s, 503s and writes whose answer is lost."""
        if storm["start"] is None and method == "PUT":
            storm["start"] = at
        if storm["start"] is None or at >= storm["start"] + timedelta(minutes=5):
            return None
        storm["n"] += 1
        kind = storm["n"] % 4
        if kind == 1:
            return {"status": 503}
        if kind == 2 and method == "PUT":
            return {"lost": 502}
        if kind in (0, 2):
            wait = 20 if kind == 0 else 7
            storm["waits"].append((len(world.zendesk.timeline), wait))  # this request's place in the log
            return {"status": 429, "retry_after": wait}
        return None

    world.zendesk.storm = weather
    runner = world.runner()
    for rounds in range(1, 40):  # an incident: urgent tickets pour in while Zendesk struggles
        if storm["start"] is not None and len(urgent) < 40:
            urgent += [world.zendesk.add_ticket(f"Checkout down #{n}", priority="urgent") for n in range(4)]
        world.cycle(runner)
        if len(urgent) >= 40 and not runner.store.open_intents():
            break

    start = storm["start"]
    assert start is not None, "the storm began with deskbot's first write"
    times = [at for at, _ in world.zendesk.timeline]
    budget = runner.connectors["zendesk"].budget
    assert budget.limit == 40 and budget.allowed_per_minute == 20
    assert busiest_minute(times) <= 20, "no sliding minute, storm or catch-up, went over the bot's share"
    during = world.zendesk.calls_between(start, start + timedelta(minutes=5))
    assert during <= 5 * 20, "the storm costs no more calls than the budget allows"
    log = world.zendesk.timeline
    for index, wait in storm["waits"]:
        assert log[index + 1][0] - log[index][0] >= timedelta(seconds=wait), "every Retry-After honoured"
    assert rounds <= 25
    lost = [r.path for _, r in log if r.method == "PUT" and r.status == 502]
    recovered = [e for e in runner.store.audit_log(limit=10_000) if e.detail.startswith("recovered")]
    assert lost and recovered, "some writes went through with their answer lost, and were settled by a read"

    assert all("bot_escalated" in world.zendesk.ticket(i)["tags"] for i in urgent)
    assert all(world.zendesk.ticket(i)["priority"] == "high" for i in normal)
    notes = {i: [n for n in world.zendesk.bot_notes(i) if n.startswith("Escalated by deskbot")]
             for i in urgent}
    assert {i: len(n) for i, n in notes.items()} == {i: 1 for i in urgent}, "one note each, none twice"
    changes = {i: len(world.zendesk.bot_changes(i)) for i in urgent + normal}
    assert changes == {**{i: 2 for i in urgent}, **{i: 1 for i in normal}}, "note+tag, or priority; once"
    touched = {i for i in world.zendesk.tickets if world.zendesk.bot_changes(i)}
    assert touched == set(urgent) | set(normal), "no other ticket was written"
    states = Counter(i.state for i in runner.store.intents())
    assert states == {IntentState.DONE: 2 * len(urgent) + len(normal)}, states
