"""Each metric on a small hand-built queue whose answers are worked out in the comments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy
import pytest

from bot.calendar import Calendar, always
from bot.model import Status
from bot.reports.metrics import ReportSettings, Scope, aging, build_report
from bot.reports.records import from_snapshot
from bot.reports.report import Period

from .helpers import NOW, H, audit, ticket

OFFICE = Calendar("office", "UTC", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")})
DAILY = Period.ending("daily", NOW)
OVERALL = Scope("all teams")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def report(tickets, *, scopes=(OVERALL,), audit_lines=(), period=DAILY, **kwargs):
    records = [from_snapshot(t, NOW) for t in tickets]
    return build_report(records, audit_lines, period, list(scopes), **kwargs)


# NOW is Monday 2026-03-02 10:00 UTC; the office works 09:00-17:00 on weekdays (8h a day).
AGING_CASES = [
    ("2026-03-02T08:00", "1h of work today"),  # 0.125 days
    ("2026-02-28T12:00", "created on Saturday: 1h of work"),  # 0.125 days (46h of calendar time)
    ("2026-02-27T09:00", "Fri 8h + Mon 1h"),  # 1.125 days
    ("2026-02-26T10:00", "Thu 7h + Fri 8h + Mon 1h"),  # 2.0 days
    ("2026-02-25T10:00", "exactly 3 working days"),  # 3.0 days: the edge belongs to the older bucket
    ("2026-02-23T10:00", "a working week"),  # 5.0 days
    ("2026-02-16T10:00", "two working weeks"),  # 10.0 days
]


def test_aging_counts_working_days_of_the_ticket_calendar() -> None:
    tickets = [ticket(i, created_at=at(created), status=Status.OPEN) for i, (created, _) in enumerate(AGING_CASES)]
    assert aging(tickets, NOW, lambda t: OFFICE) == (2, 2, 2, 1)


def test_aging_in_calendar_time_when_the_team_works_around_the_clock() -> None:
    tickets = [ticket(i, created_at=at(created), status=Status.OPEN) for i, (created, _) in enumerate(AGING_CASES)]
    # 2h, 46h | 3.04d, 4d, 5d | 7d (edge), 14d
    assert aging(tickets, NOW, lambda t: always()) == (1, 1, 3, 2)


def test_solved_tickets_are_not_aged() -> None:
    tickets = [ticket(1, created_at=NOW - 30 * H, status=Status.SOLVED), ticket(2, created_at=NOW - 2 * H)]
    assert report(tickets).main.aging == (1, 0, 0, 0)


def sla_queue():
    created = NOW - 20 * H
    due = {"first_reply_due_at": created + 4 * H}
    replies = [1, 2, 3, 4, 5, 10]  # hours to first reply; the goal is 4h
    tickets = [ticket(i, created_at=created, first_responded_at=created + hours * H, sla=due, status=Status.OPEN)
               for i, hours in enumerate(replies, start=1)]
    earlier = NOW - 3 * 24 * H  # replied before the period: not part of this report's adherence
    tickets.append(ticket(7, created_at=earlier, first_responded_at=earlier + 9 * H,
                          sla={"first_reply_due_at": earlier + H}, status=Status.OPEN))
    tickets.append(ticket(8, subject="still waiting", created_at=NOW - 6 * H,
                          sla={"first_reply_due_at": NOW - 2 * H}, status=Status.OPEN))  # overdue now
    tickets.append(ticket(9, created_at=NOW - 30 * H, solved_at=NOW - 2 * H, status=Status.SOLVED,
                          first_responded_at=NOW - 29 * H,
                          sla={"resolution_due_at": NOW - 6 * H}))  # solved 4h late
    tickets.append(ticket(10, created_at=NOW - 30 * H, solved_at=NOW - 10 * H, status=Status.SOLVED,
                          first_responded_at=NOW - 29 * H, sla={"resolution_due_at": NOW}))  # solved in time
    return tickets, replies


def test_sla_adherence_share_median_and_90th_percentile_per_target() -> None:
    tickets, replies = sla_queue()
    first, resolution = report(tickets).main.sla
    assert first.target == "first_reply"
    # tickets 1-6 replied in the period, plus 9 and 10 (replied 29h ago? no: before the 24h period)
    assert first.completed == 6 and first.with_deadline == 6
    assert first.met == 4 and first.share_met == pytest.approx(4 / 6)  # 4h exactly is on time
    assert first.median == timedelta(hours=numpy.percentile(replies, 50))
    assert first.p90 == timedelta(hours=numpy.percentile(replies, 90))
    assert first.breached == 3  # 5h and 10h late in the period, and ticket 8 overdue right now
    assert first.near_misses == 1  # 4h of a 4h goal: less than 10% (24m) to spare
    assert resolution.target == "resolution"
    assert (resolution.completed, resolution.met, resolution.breached) == (2, 1, 1)
    assert resolution.median == timedelta(hours=(28 + 20) / 2)


def test_breaches_are_listed_worst_first_and_say_what_was_late() -> None:
    tickets, _ = sla_queue()
    built = report(tickets).main
    details = [(ref.key, ref.detail) for ref in built.breaches]
    assert details == [
        ("zendesk:6", "first reply late by 6h"),
        ("zendesk:9", "resolution late by 4h"),
        ("zendesk:8", "first reply overdue by 2h (still open)"),
        ("zendesk:5", "first reply late by 1h"),
    ]
    assert [(ref.key, ref.detail) for ref in built.near_misses] == [("zendesk:4", "first reply met with 0s to spare")]


def test_agent_load_flags_the_overloaded_and_the_idle_agent_only() -> None:
    loads = {"ana": 5, "ben": 6, "cara": 5, "dan": 6, "eve": 20}
    tickets, number = [], 0
    for name, count in loads.items():
        for _ in range(count):
            number += 1
            tickets.append(ticket(number, created_at=NOW - H, assignee_id=hash(name) % 1000, assignee=name.title(),
                                  assignee_email=f"{name}@example.com", group="Billing"))
    members = [f"{name}@example.com" for name in loads] + ["idle@example.com"]
    team = Scope("billing", frozenset({"billing"}), tuple(members))
    agents = {a.agent: a for a in report(tickets, scopes=[team]).main.agents}
    # loads 0,5,5,6,6,20: median 5.5, MAD 0.5 -> z = 0.6745 * (x - 5.5) / 0.5
    assert agents["Eve"].flag == "high" and agents["Eve"].z == pytest.approx(0.6745 * 14.5 / 0.5)
    assert agents["idle@example.com"].flag == "low" and agents["idle@example.com"].open == 0
    assert [a.flag for name, a in agents.items() if name not in ("Eve", "idle@example.com")] == ["", "", "", ""]
    assert next(iter(agents)) == "Eve", "agents are listed by load, highest first"


def test_no_outliers_are_flagged_in_a_team_of_two() -> None:
    tickets = [ticket(i, created_at=NOW - H, assignee="Ana" if i < 9 else "Ben", assignee_id=1 if i < 9 else 2)
               for i in range(10)]
    assert all(a.flag == "" for a in report(tickets, settings=ReportSettings()).main.agents)


def test_unassigned_and_groupless_open_tickets_are_counted_oldest_first() -> None:
    tickets = [
        ticket(1, created_at=NOW - 3 * H, group="Billing"),
        ticket(2, created_at=NOW - 9 * H, group="Billing"),
        ticket(3, created_at=NOW - 5 * H, assignee="Ana", assignee_id=7),
        ticket(4, created_at=NOW - 50 * H, group=None, assignee=None, status=Status.SOLVED),
    ]
    built = report(tickets).main
    assert built.unassigned == 2 and [r.key for r in built.unassigned_oldest] == ["zendesk:2", "zendesk:1"]
    assert built.unassigned_oldest[0].detail == "waiting 9h"
    assert built.no_group == 1 and built.no_group_oldest[0].key == "zendesk:3"
    billing = report(tickets, scopes=[Scope("billing", frozenset({"billing"}))]).main
    assert (billing.unassigned, billing.no_group) == (2, 0)


def test_repeat_contact_rate_counts_requesters_who_wrote_in_the_week_before() -> None:
    tickets = [
        ticket(1, created_at=NOW - 30 * H, requester_id=11),  # before the period
        ticket(2, created_at=NOW - 5 * H, requester_id=11),  # repeat: 25h after ticket 1
        ticket(3, created_at=NOW - 10 * 24 * H, requester_email="Bo@Example.com"),
        ticket(4, created_at=NOW - 3 * H, requester_email="bo@example.com"),  # 10 days later: not a repeat
        ticket(5, created_at=NOW - 2 * H, requester_id=33),  # first contact
        ticket(6, created_at=NOW - 1 * H),  # no requester known: not counted either way
    ]
    repeats = report(tickets).main.repeats
    assert (repeats.repeats, repeats.with_requester) == (1, 3)
    assert repeats.rate == pytest.approx(1 / 3)


def test_top_tags_of_tickets_created_in_the_period() -> None:
    tickets = [
        ticket(1, created_at=NOW - H, tags=["vip", "refund"]),
        ticket(2, created_at=NOW - H, tags=["refund"]),
        ticket(3, created_at=NOW - H, tags=["refund", "login"]),
        ticket(4, created_at=NOW - H, tags=["login"]),
        ticket(5, created_at=NOW - 48 * H, tags=["old"]),
    ]
    assert report(tickets).main.top_tags == (("refund", 3), ("login", 2), ("vip", 1))


def test_what_deskbot_did_counts_outcomes_per_rule_and_ignores_intermediate_lines() -> None:
    lines = [
        audit(NOW - H, "route", "done"), audit(NOW - H, "route", "done"),
        audit(NOW - H, "route", "sent", kind="alert"), audit(NOW - H, "route", "dry_run"),
        audit(NOW - H, "escalate", "failed"), audit(NOW - H, "escalate", "dead", kind="alert"),
        audit(NOW - H, "escalate", "planned"), audit(NOW - H, "escalate", "queued"),
        audit(NOW - 30 * H, "route", "done"),  # before the period
        audit(NOW - H, "other_team", "done", ticket_key="zendesk:99"),
    ]
    tickets = [ticket(1, created_at=NOW - H, group="Billing")]
    overall = report(tickets, audit_lines=lines).main.activity
    assert [(a.rule, a.actions, a.alerts, a.dry_run, a.failed) for a in overall] == [
        ("route", 2, 1, 1, 0), ("escalate", 0, 0, 0, 2), ("other_team", 1, 0, 0, 0)]
    billing = report(tickets, audit_lines=lines, scopes=[Scope("billing", frozenset({"billing"}))]).main.activity
    assert [a.rule for a in billing] == ["route", "escalate"], "a team sees only its own tickets' lines"
