"""The runner feeds reports and repeat-contact rules: history recorded per poll, requester facts per pass."""

from __future__ import annotations

from datetime import timedelta

from bot.model import Status
from bot.reports.history import HistoryStore
from bot.state.memory import MemoryStore
from tests.fakes import FakeConnector, make_ticket
from tests.runtime.test_runner import Clock, make_runner

REPEAT = """
  - name: repeat contact
    when: {requester.open_tickets: {gte: 1}}
    then: [{add_tags: [repeat_contact]}]
"""


def test_a_requesters_second_open_ticket_is_seen_by_requester_rules(tmp_path):
    clock = Clock()
    first = make_ticket(1, requester_id=7, requester_email="pat@example.test", status=Status.OPEN)
    second = make_ticket(2, requester_id=7, requester_email="pat@example.test", status=Status.OPEN)
    alone = make_ticket(3, requester_id=8, requester_email="sam@example.test", status=Status.OPEN)
    connector = FakeConnector([first, second, alone])
    runner = make_runner(tmp_path, REPEAT, {"zendesk": connector}, clock)
    runner.poll("zendesk")
    tagged = {t.id for t in connector.store.values() if "repeat_contact" in t.tags}
    assert tagged == {1, 2}


def test_each_poll_records_history_for_reports_including_solved_tickets(tmp_path):
    clock = Clock()
    store = MemoryStore(clock=clock)
    connector = FakeConnector([make_ticket(1), make_ticket(2, status=Status.SOLVED)])
    runner = make_runner(tmp_path, REPEAT, {"zendesk": connector}, clock, store=store)
    runner.poll("zendesk")
    records = HistoryStore.for_store(store).records(since=clock() - timedelta(days=1))
    assert {r.ticket.id for r in records} == {1, 2}
