"""Team assignments in the executor follow the rules file's shifts, capacity and guard (bot.assignment)."""

from __future__ import annotations

from datetime import timedelta

from bot.config import load_config_text
from bot.executor import Executor
from bot.state import IntentState, Mode
from bot.state.memory import MemoryStore
from tests.fakes import T0, FakeConnector, make_ticket
from tests.test_executor import act, run

RULES = """\
version: 1
shifts:
  early: {timezone: UTC, hours: {daily: "06:00-12:00"}}
  late: {timezone: UTC, hours: {daily: "14:00-22:00"}}
teams:
  support:
    group: Support
    members: [alice@example.test, bob@example.test]
    slack_channel: "#support"
agents:
  alice@example.test: {shift: early, capacity: 2}
  bob@example.test: {shift: late}
assignment:
  ping_pong: {max: 1, within: 24h}
rules: []
"""


def world(rules: str = RULES):
    tickets = [make_ticket(i) for i in range(1, 6)]
    connector = FakeConnector(tickets)
    store = MemoryStore(clock=lambda: T0)
    store.upsert_tickets(tickets)
    config = load_config_text(rules, "rules.yaml")
    return store, connector, Executor(store, {"zendesk": connector}, config=lambda: config)


def team_assign(ticket_id: int, fallback: str = "queue", occurrence: int = 1):
    return act(ticket_id, "assign", occurrence=occurrence, team="support", group="Support",
               strategy="round_robin", fallback=fallback, members=["alice@example.test", "bob@example.test"])


def test_only_agents_on_shift_get_tickets():
    store, connector, executor = world()  # T0 is 09:00 UTC: Alice's early shift, Bob is off
    run(executor, store, team_assign(1), team_assign(2))
    assert [connector.store[i].assignee for i in (1, 2)] == ["Alice", "Alice"]
    assert "off shift" in store.audit_log(ticket_key="zendesk:1")[-1].detail


def test_at_capacity_nobody_is_eligible_and_the_fallback_runs():
    store, connector, executor = world()
    store.upsert_tickets([make_ticket(90, assignee_id=101), make_ticket(91, assignee_id=101)])
    report = run(executor, store, team_assign(1, fallback="notify"))
    assert connector.store[1].assignee is None
    assert report.skipped == [team_assign(1).key]
    (entry,) = store.pending()
    assert entry.alert.channel == "#support"
    assert "at capacity" in entry.alert.reason


def test_queue_fallback_leaves_the_ticket_in_the_group():
    store, connector, executor = world()
    store.upsert_tickets([make_ticket(90, assignee_id=101), make_ticket(91, assignee_id=101)])
    run(executor, store, team_assign(1, fallback="queue"))
    assert (connector.store[1].group, connector.store[1].assignee) == ("Support", None)


def test_the_ping_pong_guard_holds_a_second_reassignment_within_the_window():
    store, connector, executor = world(RULES.replace("bob@example.test: {shift: late}", "bob@example.test: {}"))
    run(executor, store, team_assign(1))
    first = connector.store[1].assignee
    store.upsert_tickets([connector.store[1]])  # the next poll brings our own write back into the mirror
    again = team_assign(1, occurrence=2)
    report = run(executor, store, again, now=T0 + timedelta(minutes=5))
    assert connector.store[1].assignee == first
    assert report.skipped == [again.key]
    assert store.intent(again.key).state is IntentState.SKIPPED
    assert "ping-pong" in store.audit_log(ticket_key="zendesk:1")[-1].detail


def test_dry_run_decides_nothing_and_writes_nothing():
    store, connector, executor = world()
    run(executor, store, team_assign(1), mode=Mode.DRY_RUN)
    assert connector.applied == []
