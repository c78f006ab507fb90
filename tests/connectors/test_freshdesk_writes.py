"""Freshdesk writes over real HTTP: fields, tag read-modify-write, notes, stale plans, refusals."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.connectors.base import TicketChange
from bot.errors import AuthError
from bot.model import Priority, Status
from bot.sandbox.server import json_response
from tests.connectors.freshdesk_fixtures import NOW, drain, make_connector


@pytest.fixture
def connector(host, app, time):
    return make_connector(host.url, time)


def fetched(connector, ticket_id):
    """The ticket as the bot's last read saw it (the plan's basis)."""
    tickets, _ = drain(connector.fetch_changes(None, backfill_all=True))
    return next(t for t in tickets if t.id == ticket_id)


def bodies(app, method="PUT"):
    return [json.loads(r.body) for r in app.requests if r.method == method]


def test_assignment_group_priority_and_status_are_one_flat_put(app, connector):
    ticket = app.add_ticket(tags=["billing"])["id"]
    [result] = connector.apply([TicketChange(ticket, key="k1", assignee_id=21, group_id=11,
                                             priority=Priority.URGENT, status=Status.PENDING)])
    assert result.ok and not result.skipped
    assert bodies(app) == [{"responder_id": 21, "group_id": 11, "priority": 4, "status": 3}]
    stored = app.tickets[ticket]
    assert (stored["responder_id"], stored["group_id"], stored["priority"], stored["status"]) == (21, 11, 4, 3)
    assert stored["tags"] == ["billing"], "a write without tags must not send or touch them"


def test_unassign_sends_a_null_responder(app, connector):
    ticket = app.add_ticket(responder_id=21)["id"]
    connector.apply([TicketChange(ticket, unassign=True)])
    assert bodies(app) == [{"responder_id": None}] and app.tickets[ticket]["responder_id"] is None


def test_on_hold_is_written_as_the_accounts_waiting_status(app, connector):
    ticket = app.add_ticket()["id"]
    [result] = connector.apply([TicketChange(ticket, status=Status.ON_HOLD)])
    assert result.ok and app.tickets[ticket]["status"] == 6  # "Waiting on Customer"


def test_on_hold_without_such_a_status_says_how_to_add_one(host, time):
    app = host.use(time, custom_statuses={})
    ticket = app.add_ticket()["id"]
    [result] = make_connector(host.url, time).apply([TicketChange(ticket, status=Status.ON_HOLD)])
    assert not result.ok and "add a custom status whose name contains 'hold' or 'waiting'" in result.error
    assert bodies(app) == []


def test_a_tag_a_human_added_after_the_bots_read_survives_the_tag_write(app, connector):
    ticket = app.add_ticket(tags=["billing", "refund"], updated_at=NOW - timedelta(hours=1))["id"]
    seen = fetched(connector, ticket)
    app.human_update(ticket, tags=["billing", "refund", "vip"])  # between the plan's read and our write
    [result] = connector.apply([TicketChange(ticket, add_tags=frozenset({"escalated"}),
                                             remove_tags=frozenset({"refund"}),
                                             expected_updated_at=seen.updated_at)])
    assert result.ok
    assert app.tickets[ticket]["tags"] == ["billing", "vip", "escalated"]
    assert result.ticket is not None and result.ticket.tags == {"billing", "vip", "escalated"}


def test_a_tag_a_human_adds_while_our_read_is_in_flight_survives(app, connector):
    ticket = app.add_ticket(tags=["billing"])["id"]

    def human_tags_it_as_our_read_arrives(request):
        if request.method == "GET" and request.path == f"/api/v2/tickets/{ticket}":
            app.human_update(ticket, tags=["billing", "vip"])

    app.before.append(human_tags_it_as_our_read_arrives)
    connector.apply([TicketChange(ticket, add_tags=frozenset({"escalated"}))])
    assert app.tickets[ticket]["tags"] == ["billing", "vip", "escalated"]


def test_tags_already_in_place_cost_one_read_and_no_write(app, connector):
    ticket = app.add_ticket(tags=["vip"])["id"]
    [result] = connector.apply([TicketChange(ticket, add_tags=frozenset({"vip"}))])
    assert result.ok and bodies(app) == []
    assert connector.calls.snapshot() == {"ticket_fields": 1, "agents_list": 1, "groups_list": 1,
                                          "group_agents": 2, "ticket_show": 1}


def test_a_private_note_is_html_escaped_and_private(app, connector):
    ticket = app.add_ticket()["id"]
    text = 'Customer wrote: <script>alert("x")</script> & <!channel>\nsecond line'
    [result] = connector.apply([TicketChange(ticket, note=text)])
    assert result.ok
    [sent] = bodies(app, "POST")
    assert sent == {"body": "<p>Customer wrote: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
                            "&lt;!channel&gt;</p><p>second line</p>", "private": True}
    note = app.conversations[ticket][-1]
    assert note["private"] and note["source"] == 2
    assert [r.status for r in app.requests if r.method == "POST"] == [201]


def test_a_note_that_got_through_before_a_502_is_not_posted_twice(app, connector):
    ticket = app.add_ticket()["id"]
    failures = []

    def gateway_fails_after_the_first_note_is_stored(request, response):
        if request.method == "POST" and not failures:
            failures.append(response.status_code)
            return json_response({"message": "Bad Gateway"}, 502)
        return None

    app.after.append(gateway_fails_after_the_first_note_is_stored)
    key = f"Escalate/freshdesk:{ticket}/add_note/1"
    [result] = connector.apply([TicketChange(ticket, key=key, note="Escalated: no reply for 4h")])
    assert result.ok and failures == [201]
    assert [c["body_text"] for c in app.conversations[ticket]] == [f"Escalated: no reply for 4h\n(deskbot: {key})"]
    assert connector.calls.snapshot()["note_create"] == 1
    assert connector.calls.snapshot()["conversations_list"] == 1


def test_a_note_carries_its_action_key_so_a_crashed_run_can_tell_it_was_written(app, connector):
    ticket = app.add_ticket()["id"]
    key = f"Pending follow-up/freshdesk:{ticket}/add_note/2"
    connector.apply([TicketChange(ticket, key=key, note="Reminder")])
    assert bodies(app, "POST")[0]["body"] == f"<p>Reminder</p><p>(deskbot: {key})</p>"
    assert connector.has_note(ticket, key)
    assert not connector.has_note(ticket, key.replace("/2", "/3"))


def test_a_note_refused_with_a_503_is_posted_again(app, connector):
    ticket = app.add_ticket()["id"]
    app.faults.add(status=503, path=f"/api/v2/tickets/{ticket}/notes", retry_after=0)
    [result] = connector.apply([TicketChange(ticket, note="hello")])
    assert result.ok and len(app.conversations[ticket]) == 1
    assert connector.calls.snapshot()["note_create"] == 2


def test_a_plan_made_before_a_customer_reply_still_applies(app, connector, time):
    ticket = app.add_ticket(updated_at=NOW - timedelta(hours=1))["id"]
    seen = fetched(connector, ticket)
    time.advance(minutes=5)
    app.customer_reply(ticket)
    [result] = connector.apply([TicketChange(ticket, assignee_id=21, expected_updated_at=seen.updated_at)])
    assert result.ok and app.tickets[ticket]["responder_id"] == 21


@pytest.mark.parametrize(("human", "reason"), [
    (lambda app, t: app.human_update(t, responder_id=23), "responder_id None -> 23"),
    (lambda app, t: app.human_update(t, status=4), "status 2 -> 4"),
    (lambda app, t: app.agent_reply(t, agent_id=23), "agent_responded_at None -> '2024-06-10T12:05:00Z'"),
])
def test_a_plan_made_before_a_human_took_the_ticket_is_skipped(app, connector, time, human, reason):
    ticket = app.add_ticket(updated_at=NOW - timedelta(hours=1))["id"]
    seen = fetched(connector, ticket)
    time.advance(minutes=5)
    human(app, ticket)
    [result] = connector.apply([TicketChange(ticket, key="k", assignee_id=21, note="routed",
                                             expected_updated_at=seen.updated_at)])
    assert result.skipped and not result.ok and reason in result.error
    assert bodies(app) == [] and bodies(app, "POST") == []
    assert result.ticket is not None and result.ticket.updated_at == NOW + timedelta(minutes=5)


@pytest.mark.parametrize("first_checked", [True, False])
def test_the_bots_own_earlier_write_does_not_make_its_next_change_stale(app, connector, time, first_checked):
    ticket = app.add_ticket(updated_at=NOW - timedelta(hours=1))["id"]
    seen = fetched(connector, ticket)
    time.advance(seconds=30)
    results = connector.apply([
        TicketChange(ticket, key="a", group_id=12, expected_updated_at=seen.updated_at if first_checked else None),
        TicketChange(ticket, key="b", add_tags=frozenset({"routed"}), note="moved to Technical",
                     expected_updated_at=seen.updated_at),
    ])
    assert [(r.ok, r.skipped) for r in results] == [(True, False), (True, False)]
    assert app.tickets[ticket]["group_id"] == 12 and app.tickets[ticket]["tags"] == ["routed"]


def test_a_write_whose_answer_was_lost_is_not_mistaken_for_a_humans_change(app, connector):
    ticket = app.add_ticket(updated_at=NOW - timedelta(hours=1))["id"]
    seen = fetched(connector, ticket)
    lost = []

    def gateway_times_out_after_the_first_put(request, response):
        if request.method == "PUT" and not lost:
            lost.append(response.status_code)
            return json_response({"message": "Gateway Timeout"}, 504)
        return None

    app.after.append(gateway_times_out_after_the_first_put)
    [result] = connector.apply([TicketChange(ticket, assignee_id=21, add_tags=frozenset({"routed"}),
                                             expected_updated_at=seen.updated_at)])
    assert lost == [200] and result.ok and not result.skipped
    assert app.tickets[ticket]["responder_id"] == 21 and app.tickets[ticket]["tags"] == ["routed"]
    assert bodies(app) == [{"responder_id": 21, "tags": ["routed"]}, {"responder_id": 21}]


def test_an_unknown_ticket_changed_since_the_plan_is_skipped_without_a_snapshot(app, connector, time):
    ticket = app.add_ticket(updated_at=NOW - timedelta(hours=1))["id"]
    [result] = connector.apply([TicketChange(ticket, priority=Priority.HIGH,
                                             expected_updated_at=NOW - timedelta(hours=2))])
    assert result.skipped and "no snapshot to compare" in result.error


def test_a_refused_change_names_the_field_and_the_others_still_apply(host, time):
    app = host.use(time, required_for_closure=("cf_root_cause",))
    first, second = app.add_ticket()["id"], app.add_ticket()["id"]
    results = make_connector(host.url, time).apply([
        TicketChange(first, key="solve", status=Status.SOLVED),
        TicketChange(second, key="raise", priority=Priority.HIGH),
    ])
    assert not results[0].ok and results[1].ok
    assert results[0].error == (f"Freshdesk refused PUT /api/v2/tickets/{first} (400): Validation failed; "
                                "cf_root_cause: It should be a/an String (missing_field)")


def test_a_missing_ticket_is_a_failed_result(app, connector):
    [result] = connector.apply([TicketChange(404404, key="k", priority=Priority.LOW)])
    assert not result.ok and result.error == "Freshdesk has no such record: PUT /api/v2/tickets/404404 (404)"


def test_a_rejected_key_stops_the_whole_batch(host, time, app):
    connector = make_connector(host.url, time, api_key="wrong-key")
    with pytest.raises(AuthError, match=r"^FRESHDESK_API_KEY was rejected \(401\)"):
        connector.apply([TicketChange(1, priority=Priority.LOW), TicketChange(2, priority=Priority.LOW)])
