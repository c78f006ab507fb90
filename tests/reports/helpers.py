"""Builders for report tests: tickets, records with explicit lives, audit lines, a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.model import SlaDeadlines, Status, Ticket
from bot.reports.records import Change, TicketRecord
from bot.state import AuditEntry

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC
H = timedelta(hours=1)
D = timedelta(days=1)


def ticket(number: int, **fields: Any) -> Ticket:
    """A zendesk ticket with sensible defaults; `created` and friends may be given as offsets before NOW."""
    for name in ("created_at", "updated_at", "first_responded_at", "solved_at", "status_changed_at"):
        if isinstance(fields.get(name), timedelta):
            fields[name] = NOW - fields[name]
    if isinstance(fields.get("sla"), dict):
        fields["sla"] = SlaDeadlines(**fields["sla"])
    if isinstance(fields.get("tags"), list | tuple | set):
        fields["tags"] = frozenset(fields["tags"])
    fields.setdefault("subject", f"Ticket {number}")
    fields.setdefault("url", f"https://acme.zendesk.com/agent/tickets/{number}")
    return Ticket(platform="zendesk", id=number, **fields)


def record(t: Ticket, *states: tuple[datetime, Status, str | None]) -> TicketRecord:
    """A record whose changes are given as (at, status, group); assignee from the ticket."""
    return TicketRecord(t, tuple(Change(at, status, group, t.assignee) for at, status, group in states))


def audit(at: datetime, rule: str, result: str, *, kind: str = "add_tags", ticket_key: str = "zendesk:1") -> AuditEntry:
    """One audit line."""
    return AuditEntry(at=at, mode="live", rule=rule, ticket_key=ticket_key, kind=kind, key=f"{rule}/{ticket_key}",
                      result=result)
