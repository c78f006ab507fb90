"""Writing to Zendesk: per-ticket update_many bodies, jobs polled together, safe-update conflicts, refusals."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs

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


def bulk_bodies(sandbox: ZendeskSandbox) -> list[list[dict]]:
    """The `tickets` list of every update_many request the sandbox received, in order."""
    return [json.loads(r.body)["tickets"] for r in sandbox.requests if r.path.startswith("/api/v2/tickets/update_many")]


def test_250_different_changes_take_3_bulk_calls_and_2_polls_of_all_jobs_together(zendesk, zd_host, zd_time):
    sandbox = ZendeskSandbox(seed.generate(3, tickets=400), clock=zd_time.now, email="deskbot@support.example",
                             api_token="zd-T0KEN-must-never-be-logged-7f3a")
    zd_host.mount(sandbox)
    targets = open_tickets(sandbox)[:250]
    priorities = [Priority.LOW, Priority.HIGH, Priority.URGENT]
    changes = [TicketChange(t, key=f"route/{t}", priority=priorities[n % 3], add_tags=frozenset({f"t{n % 7}"}))
               for n, t in enumerate(targets)]
    connector = zendesk()
    results = connector.apply(changes)
    assert all(r.ok for r in results) and [r.key for r in results] == [c.key for c in changes]
    assert connector.calls.snapshot() == {"update_many": 3, "job_status": 2}  # queued -> working -> completed
    assert [len(b) for b in bulk_bodies(sandbox)] == [100, 100, 50]
    polls = [r for r in sandbox.requests if r.path.startswith("/api/v2/job_statuses")]
    assert {r.path for r in polls} == {"/api/v2/job_statuses/show_many.json"}
    assert [len(parse_qs(r.query)["ids"][0].split(",")) for r in polls] == [3, 3]
    assert [sandbox.ticket(t)["priority"] for t in targets[:3]] == ["low", "high", "urgent"]
    assert "t2" in sandbox.ticket(targets[2])["tags"]


def test_each_ticket_gets_its_own_body_with_fields_tags_note_and_safe_update(zendesk, zd_sandbox):
    first, second = open_tickets(zd_sandbox)[:2]
    group_id, agent_id = staff(zd_sandbox, "Escalations")
    zd_sandbox.human_update(first, tags=["keep-me", "urgent-ish"])
    stamp = zd_sandbox.ticket(first)["updated_at"]
    changes = [TicketChange(first, key="rule/zendesk:1/assign/0", group_id=group_id, assignee_id=agent_id,
                            priority=Priority.URGENT, status=Status.ON_HOLD, add_tags=frozenset({"escalated"}),
                            remove_tags=frozenset({"urgent-ish"}), note="Escalated by deskbot (rule: sla-breach)",
                            expected_updated_at=stamp),
               TicketChange(second, key="other", status=Status.PENDING)]
    connector = zendesk()
    assert all(r.ok and not r.skipped for r in connector.apply(changes))
    assert bulk_bodies(zd_sandbox) == [[
        {"id": first, "group_id": group_id, "assignee_id": agent_id, "priority": "urgent", "status": "hold",
         "comment": {"body": "Escalated by deskbot (rule: sla-breach)", "public": False},
         "additional_tags": ["escalated"], "remove_tags": ["urgent-ish"], "safe_update": True,
         "updated_stamp": stamp, "metadata": {"deskbot_key": "rule/zendesk:1/assign/0"}},
        {"id": second, "status": "pending", "metadata": {"deskbot_key": "other"}},
    ]]
    ticket = zd_sandbox.ticket(first)
    assert (ticket["group_id"], ticket["assignee_id"], ticket["priority"], ticket["status"]) == (
        group_id, agent_id, "urgent", "hold")
    assert ticket["tags"] == ["escalated", "keep-me"]
    assert zd_sandbox.private_notes(first)[-1] == "Escalated by deskbot (rule: sla-breach)"
    assert zd_sandbox.audits(first)[-1]["metadata"]["custom"] == {"deskbot_key": "rule/zendesk:1/assign/0"}
    assert zd_sandbox.ticket(second)["status"] == "pending"
    assert connector.calls.snapshot() == {"update_many": 1, "job_status": 2}


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


def test_unassign_sends_an_explicit_null(zendesk, zd_sandbox):
    ticket_id = next(t.id for t in zd_sandbox.queue.tickets if t.assignee_id and t.status == "open")
    [result] = zendesk().apply([TicketChange(ticket_id, unassign=True)])
    assert result.ok and zd_sandbox.ticket(ticket_id)["assignee_id"] is None
    assert bulk_bodies(zd_sandbox) == [[{"id": ticket_id, "assignee_id": None}]]


def test_a_safe_update_on_the_copy_just_read_goes_through(zendesk, zd_sandbox):
    ticket_id = open_tickets(zd_sandbox)[0]
    connector = zendesk()
    [ticket] = connector.get_tickets([ticket_id])
    [result] = connector.apply([TicketChange(ticket_id, priority=Priority.LOW, expected_updated_at=ticket.updated_at)])
    assert result.ok and zd_sandbox.ticket(ticket_id)["priority"] == "low"
    assert connector.calls.snapshot() == {"show_many": 1, "update_many": 1, "job_status": 2}


def test_a_ticket_changed_after_the_read_is_a_conflict_and_nothing_is_written(zendesk, zd_sandbox, zd_time):
    stale, fresh = open_tickets(zd_sandbox)[:2]
    connector = zendesk()
    copies = {t.id: t for t in connector.get_tickets([stale, fresh])}
    notes = len(zd_sandbox.private_notes(stale))
    zd_time.advance(30)
    zd_sandbox.human_update(stale, subject="Edited by a human meanwhile")
    results = connector.apply([TicketChange(t, key=f"k{t}", priority=Priority.LOW, note="Checked by deskbot",
                                            expected_updated_at=copies[t].updated_at) for t in (stale, fresh)])
    assert [(r.ok, r.conflict) for r in results] == [(False, True), (True, False)]
    assert results[0].error == (f"ticket {stale} changed since deskbot read it (safe update refused in job "
                                f"{results[0].error.split('in job ')[1].split(')')[0]}); nothing written, the next "
                                "cycle re-reads it and decides again")
    assert zd_sandbox.ticket(stale)["priority"] != "low" and len(zd_sandbox.private_notes(stale)) == notes
    assert zd_sandbox.ticket(fresh)["priority"] == "low"
    assert connector.calls.snapshot() == {"show_many": 1, "update_many": 1, "job_status": 2}, "no re-read, no retry"


def test_an_assignee_outside_the_group_reports_zendesks_reason(zendesk, zd_sandbox):
    billing, _ = staff(zd_sandbox, "Billing")
    _, technician = staff(zd_sandbox, "Technical")
    ticket_id = open_tickets(zd_sandbox)[0]
    [result] = zendesk().apply([TicketChange(ticket_id, group_id=billing, assignee_id=technician)])
    assert not result.ok and not result.conflict and "is not a member of the group Billing" in result.error


def test_a_ticket_deleted_since_the_read_is_skipped_among_good_ones(zendesk, zd_sandbox):
    gone, good = open_tickets(zd_sandbox)[:2]
    zd_sandbox.delete_ticket(gone)
    results = zendesk().apply([TicketChange(gone, status=Status.OPEN), TicketChange(good, status=Status.PENDING)])
    assert [(r.ok, r.skipped, r.error) for r in results] == [(False, True, "ticket no longer exists"),
                                                             (True, False, None)]


def test_rejected_credentials_stop_the_whole_apply(zendesk, zd_sandbox):
    with pytest.raises(AuthError, match=r"ZENDESK_API_TOKEN was rejected \(401\)"):
        zendesk(token="wrong").apply([TicketChange(open_tickets(zd_sandbox)[0], priority=Priority.LOW)])


def test_a_job_with_a_note_is_not_repeated_after_an_ambiguous_failure(zendesk, zd_sandbox):
    ticket_id = open_tickets(zd_sandbox)[0]
    notes = len(zd_sandbox.private_notes(ticket_id))
    zd_sandbox.faults.add(status=503, path="/api/v2/tickets/update_many", method="PUT")
    [result] = zendesk().apply([TicketChange(ticket_id, note="Heads up")])
    assert not result.ok and "(503)" in result.error
    assert zd_sandbox.count("/api/v2/tickets/update_many", "PUT") == 1
    assert len(zd_sandbox.private_notes(ticket_id)) == notes


def test_a_job_without_notes_is_retried_after_a_server_error(zendesk, zd_sandbox):
    ticket_id = open_tickets(zd_sandbox)[0]
    zd_sandbox.faults.add(status=503, path="/api/v2/tickets/update_many", method="PUT")
    [result] = zendesk().apply([TicketChange(ticket_id, priority=Priority.LOW)])
    assert result.ok and zd_sandbox.count("/api/v2/tickets/update_many", "PUT") == 2


def test_a_job_with_a_note_refused_with_429_is_retried_after_the_wait(zendesk, zd_sandbox, zd_time):
    ticket_id = open_tickets(zd_sandbox)[0]
    zd_sandbox.faults.add(status=429, retry_after=7, path="/api/v2/tickets/update_many", method="PUT")
    [result] = zendesk().apply([TicketChange(ticket_id, note="Heads up")])
    assert result.ok and zd_sandbox.private_notes(ticket_id)[-1] == "Heads up"
    assert 7 <= zd_time.sleeps[0] < 7.5


def test_two_changes_to_one_ticket_go_in_two_jobs_in_turn(zendesk, zd_sandbox):
    ticket_id, other = open_tickets(zd_sandbox)[:2]
    connector = zendesk()
    results = connector.apply([TicketChange(ticket_id, add_tags=frozenset({"a"})),
                               TicketChange(other, add_tags=frozenset({"a"})),
                               TicketChange(ticket_id, add_tags=frozenset({"b"}))])
    assert all(r.ok for r in results)
    assert [[t["id"] for t in body] for body in bulk_bodies(zd_sandbox)] == [[ticket_id, other], [ticket_id]]
    assert {"a", "b"} <= set(zd_sandbox.ticket(ticket_id)["tags"])
    assert connector.calls.snapshot() == {"update_many": 2, "job_status": 4}


def test_a_job_that_never_finishes_is_reported_after_the_poll_limit(zendesk, zd_sandbox):
    zd_sandbox.job_polls = 10_000
    targets = open_tickets(zd_sandbox)[:2]
    connector = zendesk(job_poll_limit=3)
    results = connector.apply([TicketChange(t, priority=Priority.LOW) for t in targets])
    assert not any(r.ok for r in results) and "still working after 3 polls" in results[0].error
    assert connector.calls.snapshot() == {"update_many": 1, "job_status": 3}


def test_a_job_status_that_cannot_be_read_leaves_the_outcome_unknown(zendesk, zd_sandbox):
    targets = open_tickets(zd_sandbox)[:2]
    zd_sandbox.faults.add(status=404, path="/api/v2/job_statuses", times=1)
    results = zendesk().apply([TicketChange(t, priority=Priority.LOW) for t in targets])
    assert not any(r.ok for r in results)
    assert all("may or may not be applied" in r.error for r in results)


def test_the_next_fetch_sees_the_bots_own_writes(zendesk, zd_sandbox, zd_time):
    connector = zendesk()
    cursor = list(connector.fetch_changes(None, backfill_all=True))[-1].cursor
    zd_time.advance(timedelta(minutes=2).total_seconds())
    ticket_id = open_tickets(zd_sandbox)[0]
    connector.apply([TicketChange(ticket_id, priority=Priority.URGENT)])
    [page] = list(connector.fetch_changes(cursor))
    assert [(t.id, t.priority) for t in page.tickets] == [(ticket_id, Priority.URGENT)]
