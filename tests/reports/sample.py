"""One small, fixed queue with two teams and six weeks of history, used by the rendering, chart and Slack tests."""

from __future__ import annotations

from datetime import timedelta

from bot.model import Status
from bot.reports.metrics import Scope, build_report
from bot.reports.records import Change, TicketRecord
from bot.reports.report import Period, Report

from .helpers import NOW, H, audit, ticket

D = timedelta(days=1)
TEAMS = [Scope("billing", frozenset({"billing"}), ("ana@example.com", "ben@example.com", "cara@example.com")),
         Scope("tech", frozenset({"tech"}), ("dan@example.com",))]
AGENTS = {"Billing": [("Ana", "ana@example.com"), ("Ben", "ben@example.com")], "Tech": [("Dan", "dan@example.com")]}


def sample_records() -> list[TicketRecord]:
    records: list[TicketRecord] = []
    number = 0
    # background: every day for six weeks, two tickets per team open for ~30 hours then solved
    for day in range(42, 0, -1):
        for group in ("Billing", "Tech"):
            for slot in range(2 + (day % 3 == 0)):
                number += 1
                created = NOW - day * D + slot * 3 * H
                solved = created + (20 + number % 3 * 5) * H
                if solved >= NOW:
                    continue
                name, email = AGENTS[group][number % len(AGENTS[group])]
                t = ticket(number, subject=f"{group} question {number}", created_at=created, group=group,
                           status=Status.SOLVED, solved_at=solved, assignee=name, assignee_email=email,
                           assignee_id=number % 7, first_responded_at=created + (number % 5) * H,
                           requester_id=number % 45, tags=["web", group.lower()],
                           sla={"first_reply_due_at": created + 3 * H, "resolution_due_at": created + 48 * H})
                records.append(TicketRecord(t, (Change(created, Status.NEW, group),
                                                Change(created + H, Status.OPEN, group, name),
                                                Change(solved, Status.SOLVED, group, name))))
    # today's open queue: a busy Billing morning with one hostile subject, an unassigned and a groupless ticket
    opened = [
        ("Billing", "Ana", "Refund | <!channel> *now*\nsecond line [bold]x[/bold]", 20, ["refund", "vip"]),
        ("Billing", "Ana", "Refund not received", 9, ["refund"]),
        ("Billing", "Ana", "Card declined", 5, ["payments"]),
        ("Billing", "Ben", "Invoice copy", 3, ["invoice"]),
        ("Billing", None, "Change billing address", 2, []),
        ("Tech", "Dan", "Export fails", 50, ["export"]),
        (None, None, "Where do I write?", 1, []),
    ]
    for index, (group, name, subject, hours, tags) in enumerate(opened):
        number += 1
        created = NOW - hours * H
        email = f"{name.lower()}@example.com" if name else None
        t = ticket(number, subject=subject, created_at=created, group=group, status=Status.OPEN, assignee=name,
                   assignee_email=email, assignee_id=1 if name else None, requester_id=900 + index % 6, tags=tags,
                   sla={"first_reply_due_at": created + 4 * H})
        records.append(TicketRecord(t, (Change(created, Status.OPEN, group, name),)))
    return records


def sample_report(kind: str = "daily", team: str | None = None) -> Report:
    lines = [audit(NOW - 2 * H, "route new tickets", "done"), audit(NOW - 2 * H, "route new tickets", "done"),
             audit(NOW - H, "sla warning", "sent", kind="alert"), audit(NOW - H, "vip escalation", "dry_run"),
             audit(NOW - H, "sla warning", "dead", kind="alert")]
    scopes = [s for s in TEAMS if s.name == team] if team else [Scope("all teams", None, ()), *TEAMS]
    return build_report(sample_records(), lines, Period.ending(kind, NOW), scopes,  # type: ignore[arg-type]
                        history_since=NOW - 42 * D, team=team,
                        notes=["sample data for tests"])
