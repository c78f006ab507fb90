"""Writing to Zendesk: batching identical changes, safe updates and conflicts, tags, notes, refusals."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.connectors.base import TicketChange
from bot.errors import AuthError
from bot.model import Priority, Status
from bot.sandbox import seed
from bot.sandbox.zendesk import ZendeskSandbox


def open_tickets(sandbox: ZendeskSandbox) -> list[int]:
    return [t.id for t in sandbox.queue.tickets if t.status not in ("solved", "closed")]


def staff(sandbox: ZendeskSandbox, group: str = "Billing") -> tuple[int, int]:
    group_id = sandbox.queue.group_named(group).id
    return group_id, sandbox.queue.members(group_id)[0].id


def test_250_identical_reassignments_take_3_bulk_calls_and_6_polls(zendesk, zd_host, zd_time):
    sandbox = ZendeskSandbox(seed.generate(3, tickets=400), clock=zd_time.now, email="deskbot@support.example",
                             api_token="zd-T0KEN-must-never-be-logged-7f3a")
    zd_host.mount(sandbox)
    group_id, agent_id = staff(sandbox)
    targets = open_tickets(sandbox)[:250]
    changes = [TicketChange(t, key=f"route/{t}", group_id=group_id, assignee_id=agent_id) for t in targets]
    connector = zendesk()
    results = connector.apply(changes)
    assert all(r.ok for r in results) and [r.key for r in results] == [c.key for c in changes]
    assert connector.calls.snapshot() == {"update_many": 3, "job_status": 6}  # queued -> working -> completed
    assert {sandbox.ticket(t)["assignee_id"] for t in targets} == {agent_id}
    bodies = [r.body for r in sandbox.requests if r.path.endswith("update_many.json")]
    assert [len(json.loads(b)["tickets"]) for b in bodies] == [100, 100, 50]


def test_a_bulk_job_waits_between_polls_on_the_injected_clock(zendesk, zd_sandbox, zd_time):
    group_id, agent_id = staff(zd_sandbox)
    targets = open_tickets(zd_sandbox)[:3]
    zendesk(job_poll_interval=2.5).apply([TicketChange(t, group_id=group_id, assignee_id=agent_id) for t in targets])
    assert zd_time.sleeps == [2.5, 2.5]


def test_bulk_tags_are_added_and_removed_without_touching_the_others(zendesk, zd_sandbox):
    targets = open_tickets(zd_sandbox)[:4]
    zd_sandbox.human_update(targets[0], tags=["vip", "stale", "human-added"])
    change = dict(add_tags=frozenset({"triaged"}), remove_tags=frozenset({"stale"}))
    results = zendesk().apply([TicketChange(t, **change) for t in targets])
    assert all(r.ok for r in results)
    assert zd_sandbox.ticket(targets[0])["tags"] == ["human-added", "triaged", "vip"]


def test_one_failed_ticket_in_a_bulk_job_is_reported_alone(zendesk, zd_sandbox):
    closed = next(t.id for t in zd_sandbox.queue.tickets if t.status == "closed")
    targets = [*open_tickets(zd_sandbox)[:2], closed]
    results = zendesk().apply([TicketChange(t, key=str(t), priority=Priority.HIGH) for t in targets])
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].error == f"Zendesk refused ticket {closed} in job " + results[2].error.split("in job ")[1]
    assert results[2].error.endswith("Status: closed prevents ticket update")


def test_a_failed_job_fails_all_its_tickets_with_zendesks_message(zendesk, zd_sandbox):
    zd_sandbox.fail_next_job("Job failed: account is over its queued job limit")
    targets = open_tickets(zd_sandbox)[:2]
    results = zendesk().apply([TicketChange(t, priority=Priority.LOW) for t in targets])
    assert not any(r.ok for r in results)
    assert all("over its queued job limit" in r.error for r in results)


def test_a_single_change_writes_fields_note_and_tags_in_place(zendesk, zd_sandbox):
    ticket_id = open_tickets(zd_sandbox)[0]
    group_id, agent_id = staff(zd_sandbox, "Escalations")
    zd_sandbox.human_update(ticket_id, tags=["keep-me", "urgent-ish"])
    change = TicketChange(ticket_id, key="rule/zendesk:1/assign/0", group_id=group_id, assignee_id=agent_id,
                          priority=Priority.URGENT, status=Status.ON_HOLD, add_tags=frozenset({"escalated"}),
                          remove_tags=frozenset({"urgent-ish"}), note="Escalated by deskbot (rule: sla-breach)")
    connector = zendesk()
    [result] = connector.apply([change])
    assert result.ok and not result.skipped
    ticket = zd_sandbox.ticket(ticket_id)
    assert (ticket["group_id"], ticket["assignee_id"], ticket["priority"], ticket["status"]) == (
        group_id, agent_id, "urgent", "hold")
    assert ticket["tags"] == ["escalated", "keep-me"]
    assert zd_sandbox.private_notes(ticket_id)[-1] == "Escalated by deskbot (rule: sla-breach)"
    assert zd_sandbox.audits(ticket_id)[-3]["metadata"]["custom"] == {"deskbot_key": "rule/zendesk:1/assign/0"}
    assert connector.calls.snapshot() == {"update": 1, "tags": 2}


def test_unassign_sends_an_explicit_null(zendesk, zd_sandbox):
    ticket_id = next(t.id for t in zd_sandbox.queue.tickets if t.assignee_id and t.status == "open")
    [result] = zendesk().apply([TicketChange(ticket_id, unassign=True)])
    assert result.ok and zd_sandbox.ticket(ticket_id)["assignee_id"] is None


def test_a_safe_update_on_fresh_data_goes_through(zendesk, zd_sandbox):
    ticket_id = open_tickets(zd_sandbox)[0]
    connector = zendesk()
    [ticket] = connector.get_tickets([ticket_id])
    [result] = connector.apply([TicketChange(ticket_id, priority=Priority.LOW, expected_updated_at=ticket.updated_at)])
    assert result.ok and connector.calls.snapshot() == {"show_many": 1, "update": 1}
    put = next(r for r in zd_sandbox.requests if r.method == "PUT")
    assert b'"safe_update": true' in put.body


def test_a_conflict_rereads_the_ticket_and_retries_once(zendesk, zd_sandbox, zd_time):
    ticket_id = open_tickets(zd_sandbox)[0]
    connector = zendesk()
    [ticket] = connector.get_tickets([ticket_id])
    zd_time.advance(30)
    zd_sandbox.human_update(ticket_id, subject="Edited by a human meanwhile")
    [result] = connector.apply([TicketChange(ticket_id, priority=Priority.LOW, expected_updated_at=ticket.updated_at)])
    assert result.ok
    assert zd_sandbox.ticket(ticket_id)["priority"] == "low"
    assert zd_sandbox.ticket(ticket_id)["subject"] == "Edited by a human meanwhile"
    assert connector.calls.snapshot() == {"show_many": 1, "update": 2, "show": 1}


def test_a_conflict_where_the_human_already_did_it_is_skipped(zendesk, zd_sandbox, zd_time):
    ticket_id = open_tickets(zd_sandbox)[0]
    connector = zendesk()
    [ticket] = connector.get_tickets([ticket_id])
    zd_time.advance(30)
    zd_sandbox.human_update(ticket_id, priority="urgent")
    [result] = connector.apply([TicketChange(ticket_id, priority=Priority.URGENT,
                                             expected_updated_at=ticket.updated_at)])
    assert result.ok and result.skipped
    assert connector.calls.snapshot() == {"show_many": 1, "update": 1, "show": 1}


def test_a_conflict_on_a_field_the_human_set_leaves_their_value(zendesk, zd_sandbox, zd_time):
    ticket_id = open_tickets(zd_sandbox)[0]
    connector = zendesk()
    [ticket] = connector.get_tickets([ticket_id])
    zd_time.advance(30)
    human = "low" if ticket.priority is not Priority.LOW else "normal"
    zd_sandbox.human_update(ticket_id, priority=human)
    [result] = connector.apply([TicketChange(ticket_id, priority=Priority.HIGH, expected_updated_at=ticket.updated_at,
                                             expected={"priority": ticket.priority.value})])
    assert (result.ok, result.skipped) == (False, True)
    assert result.error == (f"ticket {ticket_id}: priority changed by someone else since deskbot read it; "
                            "left as they set it, the next cycle re-evaluates it")
    assert zd_sandbox.ticket(ticket_id)["priority"] == human
    assert connector.calls.snapshot() == {"show_many": 1, "update": 1, "show": 1}


def test_a_second_conflict_is_reported_not_forced(zendesk, zd_sandbox):
    ticket_id = open_tickets(zd_sandbox)[0]
    zd_sandbox.faults.add(status=409, path=f"/api/v2/tickets/{ticket_id}", method="PUT", times=2)
    [result] = zendesk().apply([TicketChange(ticket_id, key="k", priority=Priority.LOW,
                                             expected_updated_at="2024-06-10T11:00:00Z")])
    assert not result.ok
    assert result.error == (f"ticket {ticket_id}: ticket {ticket_id} changed again while deskbot retried (409); "
                            "left as the human set it, the next cycle re-evaluates it")
    assert zd_sandbox.ticket(ticket_id)["priority"] != "low"


def test_a_closed_ticket_reports_zendesks_reason(zendesk, zd_sandbox):
    closed = next(t.id for t in zd_sandbox.queue.tickets if t.status == "closed")
    [result] = zendesk().apply([TicketChange(closed, note="Following up")])
    assert result.error == (f"ticket {closed}: Zendesk refused the update call (422): "
                            "Status: closed prevents ticket update")


def test_an_assignee_outside_the_group_reports_zendesks_reason(zendesk, zd_sandbox):
    billing, _ = staff(zd_sandbox, "Billing")
    _, technician = staff(zd_sandbox, "Technical")
    ticket_id = open_tickets(zd_sandbox)[0]
    [result] = zendesk().apply([TicketChange(ticket_id, group_id=billing, assignee_id=technician)])
    assert not result.ok and "is not a member of the group Billing" in result.error


def test_a_missing_ticket_is_one_failed_result_among_good_ones(zendesk, zd_sandbox):
    good = open_tickets(zd_sandbox)[0]
    results = zendesk().apply([TicketChange(999_999, status=Status.OPEN), TicketChange(good, status=Status.PENDING)])
    assert [r.ok for r in results] == [False, True]
    assert "(404)" in results[0].error


def test_rejected_credentials_stop_the_whole_apply(zendesk, zd_sandbox):
    with pytest.raises(AuthError, match=r"ZENDESK_API_TOKEN was rejected \(401\)"):
        zendesk(token="wrong").apply([TicketChange(open_tickets(zd_sandbox)[0], priority=Priority.LOW)])


def test_a_note_is_not_repeated_after_an_ambiguous_failure(zendesk, zd_sandbox):
    ticket_id = open_tickets(zd_sandbox)[0]
    notes = len(zd_sandbox.private_notes(ticket_id))
    zd_sandbox.faults.add(status=503, path=f"/api/v2/tickets/{ticket_id}", method="PUT")
    [result] = zendesk().apply([TicketChange(ticket_id, note="Heads up")])
    assert not result.ok and "(503)" in result.error
    assert zd_sandbox.count(f"/api/v2/tickets/{ticket_id}", "PUT") == 1
    assert len(zd_sandbox.private_notes(ticket_id)) == notes


def test_a_note_refused_with_429_is_retried_after_the_wait(zendesk, zd_sandbox, zd_time):
    ticket_id = open_tickets(zd_sandbox)[0]
    zd_sandbox.faults.add(status=429, retry_after=7, path=f"/api/v2/tickets/{ticket_id}", method="PUT")
    [result] = zendesk().apply([TicketChange(ticket_id, note="Heads up")])
    assert result.ok and zd_sandbox.private_notes(ticket_id)[-1] == "Heads up"
    assert 7 <= zd_time.sleeps[0] < 7.5


def test_changes_to_the_same_ticket_are_never_merged_into_one_bulk_call(zendesk, zd_sandbox):
    ticket_id = open_tickets(zd_sandbox)[0]
    change = TicketChange(ticket_id, add_tags=frozenset({"a"}))
    connector = zendesk()
    assert all(r.ok for r in connector.apply([change, change]))
    assert connector.calls.snapshot() == {"tags": 2}


def test_a_job_that_never_finishes_is_reported_after_the_poll_limit(zendesk, zd_sandbox):
    zd_sandbox.job_polls = 10_000
    targets = open_tickets(zd_sandbox)[:2]
    connector = zendesk(job_poll_limit=3)
    results = connector.apply([TicketChange(t, priority=Priority.LOW) for t in targets])
    assert not any(r.ok for r in results) and "still working after 3 polls" in results[0].error
    assert connector.calls.snapshot() == {"update_many": 1, "job_status": 3}


def test_the_next_fetch_sees_the_bots_own_writes(zendesk, zd_sandbox, zd_time):
    connector = zendesk()
    cursor = list(connector.fetch_changes(None, backfill_all=True))[-1].cursor
    zd_time.advance(timedelta(minutes=2).total_seconds())
    ticket_id = open_tickets(zd_sandbox)[0]
    connector.apply([TicketChange(ticket_id, priority=Priority.URGENT)])
    [page] = list(connector.fetch_changes(cursor))
    assert [(t.id, t.priority) for t in page.tickets] == [(ticket_id, Priority.URGENT)]
