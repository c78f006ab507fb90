"""A ticket's life as reports see it: its latest snapshot plus the changes of status, group and assignee.

The mirror forgets a ticket once it is solved, and a snapshot says only where
a ticket is now; counting what was solved or reopened in a week, or what the
backlog was four Mondays ago, needs the transitions. `TicketRecord` carries
both; `bot.reports.history` stores them, and `from_snapshot` reconstructs an
approximate life from a lone snapshot (created, then its current status).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import pairwise

from bot.model import Status, Ticket


@dataclass(frozen=True, slots=True)
class Change:
    """From `at` on, the ticket had this status, group and assignee."""

    at: datetime
    status: Status
    group: str | None = None
    assignee: str | None = None

    @property
    def open(self) -> bool:
        """True when the ticket is part of the backlog (not solved or closed)."""
        return not self.status.is_resolved

    def same_state(self, other: Change | None) -> bool:
        """True when nothing a report counts differs (the time aside)."""
        return other is not None and (self.status, self.group, self.assignee) == (
            other.status, other.group, other.assignee)


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """The latest snapshot of a ticket and its changes, oldest first."""

    ticket: Ticket
    changes: tuple[Change, ...] = ()

    @property
    def key(self) -> str:
        """The ticket's key, e.g. `zendesk:1042`."""
        return self.ticket.key

    def state_at(self, at: datetime) -> Change | None:
        """The ticket's state at an instant; None before it existed (or was first seen)."""
        found = None
        for change in self.changes:
            if change.at > at:
                break
            found = change
        return found

    def solved_between(self, start: datetime, end: datetime) -> datetime | None:
        """The last time in [start, end) the ticket went from unresolved to solved or closed."""
        return _last_transition(self.changes, start, end, into_resolved=True)

    def reopened_between(self, start: datetime, end: datetime) -> datetime | None:
        """The last time in [start, end) a solved or closed ticket became unresolved again."""
        return _last_transition(self.changes, start, end, into_resolved=False)


def _last_transition(changes: Sequence[Change], start: datetime, end: datetime, *,
                     into_resolved: bool) -> datetime | None:
    found = None
    for before, change in pairwise(changes):
        if start <= change.at < end and before.open == into_resolved and change.open != into_resolved:
            found = change.at
    return found


def assignee_label(ticket: Ticket) -> str | None:
    """How reports name an assignee: the name, else the email, else the id."""
    if ticket.assignee:
        return ticket.assignee
    if ticket.assignee_email:
        return ticket.assignee_email
    return None if ticket.assignee_id is None else f"agent {ticket.assignee_id}"


def requester_identity(ticket: Ticket) -> str | None:
    """Who asked, comparable across tickets: the helpdesk's requester id, else the email."""
    if ticket.requester_id is not None:
        return f"{ticket.platform}:{ticket.requester_id}"
    if ticket.requester_email:
        return ticket.requester_email.casefold()
    return None


def current(ticket: Ticket, at: datetime) -> Change:
    """The ticket's present state as a change starting at `at`."""
    return Change(at, ticket.status, ticket.group, assignee_label(ticket))


def from_snapshot(ticket: Ticket, now: datetime) -> TicketRecord:
    """An approximate record from one snapshot: created as new, then its current status.

    Group and assignee are taken as current since creation, which is the best
    a lone snapshot can say.
    """
    return TicketRecord(ticket, tuple(changes_since(None, ticket, now)))


def changes_since(last: Change | None, ticket: Ticket, now: datetime) -> list[Change]:
    """The changes that bring a ticket from its last recorded state to this snapshot (often none).

    Each change takes the ticket's own timestamp when it has one (status change,
    solve, update), never earlier than the last change nor later than `now`.
    """
    latest = current(ticket, now)
    if last is None:
        created = ticket.created_at or ticket.updated_at or now
        created = min(created, now)
        first = Change(created, Status.NEW, latest.group, latest.assignee)
        if latest.status is Status.NEW:
            return [first]
        at = _status_time(ticket) or created
        return [first, Change(_clamp(at, created, now), latest.status, latest.group, latest.assignee)]
    if latest.same_state(last):
        return []
    at = _status_time(ticket) if latest.status != last.status else None
    at = at or ticket.updated_at or now
    return [Change(_clamp(at, last.at, now), latest.status, latest.group, latest.assignee)]


def _status_time(ticket: Ticket) -> datetime | None:
    if ticket.status.is_resolved and ticket.solved_at is not None:
        return ticket.solved_at
    return ticket.status_changed_at or ticket.updated_at


def _clamp(at: datetime, low: datetime, high: datetime) -> datetime:
    return min(max(at, low), max(low, high))


def merge_snapshots(records: Iterable[TicketRecord], mirror: Iterable[Ticket], now: datetime) -> list[TicketRecord]:
    """Records brought up to date with the mirror, adding tickets never recorded.

    The mirror holds every open ticket of the helpdesks it covers, so a record
    still open in history but gone from the mirror (deleted, merged, or solved
    while history was not recorded) is closed at its last known update.
    """
    by_key = {record.key: record for record in records}
    mirrored: set[str] = set()
    platforms: set[str] = set()
    for ticket in mirror:
        mirrored.add(ticket.key)
        platforms.add(ticket.platform)
        record = by_key.get(ticket.key)
        if record is None:
            by_key[ticket.key] = from_snapshot(ticket, now)
            continue
        if _older(ticket, record.ticket):
            continue  # the record already holds a newer snapshot
        last = record.changes[-1] if record.changes else None
        by_key[ticket.key] = TicketRecord(ticket, (*record.changes, *changes_since(last, ticket, now)))
    for key, record in by_key.items():
        last = record.changes[-1] if record.changes else None
        if key in mirrored or record.ticket.platform not in platforms or last is None or not last.open:
            continue
        gone = min(max(last.at, record.ticket.updated_at or last.at), now)
        closed = replace(record.ticket, status=Status.CLOSED)
        by_key[key] = TicketRecord(closed, (*record.changes, Change(gone, Status.CLOSED, last.group, last.assignee)))
    return list(by_key.values())


def _older(ticket: Ticket, than: Ticket) -> bool:
    return ticket.updated_at is not None and than.updated_at is not None and ticket.updated_at < than.updated_at
