"""The Outbox contract, run against MemoryOutbox; another store can subclass OutboxContract to prove itself."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.notifiers.base import MemoryOutbox, Outbox, Thread

from .conftest import NOW, make_alert


class OutboxContract:
    """Behaviour every Outbox must have; subclasses provide `make()`."""

    def make(self) -> Outbox:
        raise NotImplementedError

    @pytest.fixture
    def box(self) -> Outbox:
        return self.make()

    def test_is_an_outbox(self, box):
        assert isinstance(box, Outbox)

    def test_enqueue_is_idempotent_on_key_even_after_delivery(self, box):
        assert box.enqueue([make_alert(1), make_alert(2)]) == [make_alert(1).key, make_alert(2).key]
        assert box.enqueue([make_alert(1)]) == []
        box.mark_sent(make_alert(1).key, "C1", "1.000001")
        assert box.enqueue([make_alert(1)]) == []
        assert [e.key for e in box.pending()] == [make_alert(2).key]

    def test_pending_keeps_enqueue_order(self, box):
        box.enqueue([make_alert(i) for i in (5, 3, 9)])
        box.enqueue([make_alert(1)])
        assert [e.alert.ticket_key for e in box.pending()] == ["zendesk:5", "zendesk:3", "zendesk:9", "zendesk:1"]

    def test_an_interrupted_post_comes_back_ambiguous(self, box):
        box.enqueue([make_alert(1)])
        box.mark_sending([make_alert(1).key])
        [entry] = box.pending()
        assert entry.ambiguous and entry.state == "pending"

    def test_failures_count_attempts_keep_ambiguity_and_die_without_retry_time(self, box):
        key = make_alert(1).key
        box.enqueue([make_alert(1)])
        box.mark_failed(key, "Slack answered 500", NOW + timedelta(seconds=5), ambiguous=True)
        box.mark_failed(key, "could not reach Slack", NOW + timedelta(seconds=9))
        entry = box.get(key)
        assert (entry.attempts, entry.ambiguous, entry.retry_at) == (2, True, NOW + timedelta(seconds=9))
        assert entry.error == "could not reach Slack"
        box.mark_failed(key, "channel_not_found", None)
        assert box.get(key).state == "dead"
        assert box.pending() == []

    def test_mark_sent_records_where_the_message_lives(self, box):
        box.enqueue([make_alert(1)])
        box.mark_sent(make_alert(1).key, "C0SUPPORT", "1700000001.000001")
        entry = box.get(make_alert(1).key)
        assert (entry.state, entry.channel, entry.ts) == ("sent", "C0SUPPORT", "1700000001.000001")
        assert box.get("nope") is None

    def test_threads_map_tickets_to_their_open_message(self, box):
        box.set_thread(Thread("zendesk:1", "C1", "9.000001", ("a",)))
        box.set_thread(Thread("zendesk:1", "C1", "10.000002", ("b",)))
        box.set_thread(Thread("zendesk:1", "C2", "11.000003", ("c",)))
        assert box.thread_for("zendesk:1", "C1").ts == "10.000002"  # the latest, compared as numbers
        assert box.thread_for("zendesk:1", "C3") is None
        assert {t.channel for t in box.open_threads("zendesk:1")} == {"C1", "C2"}
        box.set_thread(Thread("zendesk:1", "C1", "10.000002", ("b",), resolved="solved", resolved_at=NOW))
        assert box.thread_for("zendesk:1", "C1").ts == "9.000001"
        assert len(box.open_threads("zendesk:1")) == 2

    def test_message_threads_lists_every_ticket_of_a_digest(self, box):
        for ticket in ("zendesk:1", "zendesk:2"):
            box.set_thread(Thread(ticket, "C1", "5.000001", ("k1", "k2")))
        box.set_thread(Thread("zendesk:2", "C1", "5.000001", ("k1", "k2"), resolved="solved"))
        found = sorted(box.message_threads("C1", "5.000001"), key=lambda t: t.ticket_key)
        assert [(t.ticket_key, t.resolved) for t in found] == [("zendesk:1", None), ("zendesk:2", "solved")]


class TestMemoryOutbox(OutboxContract):
    def make(self) -> Outbox:
        return MemoryOutbox()
