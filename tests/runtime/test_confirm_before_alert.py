"""A time-triggered alert is confirmed on a fresh read: no false alarm for a reply the mirror has not seen yet."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.fakes import FakeConnector, make_ticket
from tests.runtime.test_runner import Clock, make_runner

WAITING = """
  - name: waiting
    when: {unanswered_for: {over: 30m}}
    then: [{notify: {channel: "#triage", message: "waiting {{ id }}"}}]
"""


def setup(tmp_path):
    clock = Clock()
    ticket = make_ticket(1, last_customer_update_at=clock(), last_agent_update_at=None, created_at=clock())
    connector = FakeConnector([ticket])
    runner = make_runner(tmp_path, WAITING, {"zendesk": connector}, clock)
    runner.poll("zendesk")
    assert runner.store.pending() == []
    return clock, connector, runner


def test_a_reply_the_mirror_missed_cancels_the_alert(tmp_path):
    clock, connector, runner = setup(tmp_path)
    clock.advance(minutes=31)
    connector.store[1] = replace(connector.store[1], last_agent_update_at=clock() - timedelta(minutes=1))
    runner.tick()
    assert runner.store.pending() == []
    assert runner.store.mirror("zendesk")["zendesk:1"].last_agent_update_at is not None


def test_a_ticket_still_waiting_after_the_re_read_is_alerted_once(tmp_path):
    clock, connector, runner = setup(tmp_path)
    clock.advance(minutes=31)
    before = connector.calls.total
    runner.tick()
    assert [e.alert.rule for e in runner.store.pending()] == ["waiting"]
    assert connector.calls.total - before == 1, "one batched re-read, nothing else"
    clock.advance(minutes=5)
    runner.tick()
    assert len(runner.store.pending()) == 1
