"""SLA adherence for reports: per target, the share met, median and 90th percentile times, breaches, near misses.

A `Measurer` turns one ticket record into a `Measurement` per target (when it
started, when it stopped, the deadline, the elapsed and allowed time in the
policy's time base). `platform_measurer` reads the helpdesk's own deadlines
and measures in a calendar's business time; the adapter swaps in deskbot's SLA
policies when the rules file defines them. Either way the statistics below are
the same pure arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from bot.calendar import Calendar
from bot.model import Ticket
from bot.reports.records import TicketRecord
from bot.reports.report import SLA_TARGETS, Period, TargetStats, TicketRef
from bot.reports.stats import quantile_duration
from bot.rules.durations import format_duration

_WORDS = {"first_reply": "first reply", "next_reply": "next reply", "resolution": "resolution"}


@dataclass(frozen=True, slots=True)
class Measurement:
    """One SLA target of one ticket: running (stopped_at None) or stopped, against its deadline."""

    target: str
    started_at: datetime
    stopped_at: datetime | None
    deadline: datetime | None
    elapsed: timedelta
    goal: timedelta | None
    breached: bool


Measurer = Callable[[TicketRecord, datetime], Mapping[str, Measurement]]


def resolved_at(record: TicketRecord) -> datetime | None:
    """When the ticket was last solved or closed, if it is now."""
    ticket = record.ticket
    if not ticket.status.is_resolved:
        return None
    if ticket.solved_at is not None:
        return ticket.solved_at
    moments = [c.at for before, c in pairwise(record.changes)
               if before.open and not c.open]
    return moments[-1] if moments else ticket.status_changed_at or ticket.updated_at


def platform_measurer(calendar_for: Callable[[Ticket], Calendar]) -> Measurer:
    """Measure first reply and resolution against the helpdesk's deadlines, in the ticket's calendar."""

    def measure(record: TicketRecord, now: datetime) -> dict[str, Measurement]:
        ticket = record.ticket
        created = ticket.created_at
        if created is None:
            return {}
        calendar = calendar_for(ticket)
        solved = resolved_at(record)
        found: dict[str, Measurement] = {}
        for target, stop, due in (("first_reply", ticket.first_responded_at or solved, ticket.sla.first_reply_due_at),
                                  ("resolution", solved, ticket.sla.resolution_due_at)):
            stop = None if stop is None else max(stop, created)
            elapsed = calendar.between(created, stop or max(now, created))
            goal = None if due is None else calendar.between(created, max(due, created))
            breached = due is not None and (stop > due if stop is not None else now >= due)
            found[target] = Measurement(target, created, stop, due, elapsed, goal, breached)
        return found

    return measure


@dataclass(frozen=True)
class SlaSummary:
    """Per-target statistics plus the tickets worth naming."""

    targets: tuple[TargetStats, ...]
    breaches: tuple[TicketRef, ...]
    near_misses: tuple[TicketRef, ...]


def sla_summary(records: Iterable[TicketRecord], measurer: Measurer, period: Period, *,
                near_miss_share: float = 0.1, limit: int = 10) -> SlaSummary:
    """Adherence over targets that stopped in the period; breaches also count tickets overdue now."""
    now = period.end
    elapsed: dict[str, list[timedelta]] = {t: [] for t in SLA_TARGETS}
    counts = {t: {"with_deadline": 0, "met": 0, "breached": 0, "near": 0} for t in SLA_TARGETS}
    breaches: list[tuple[timedelta, TicketRef]] = []
    near: list[tuple[timedelta, TicketRef]] = []
    for record in records:
        found = measurer(record, now)
        for target in SLA_TARGETS:
            m = found.get(target)
            if m is None:
                continue
            count = counts[target]
            if m.stopped_at is None:
                if m.breached:  # still open and overdue now
                    count["breached"] += 1
                    late = _late(m, now)
                    breaches.append((late, _ref(record, f"{_WORDS[target]} overdue by {format_duration(late)}"
                                                        " (still open)")))
                continue
            if m.stopped_at not in period:
                continue
            elapsed[target].append(m.elapsed)
            if m.deadline is None:
                continue
            count["with_deadline"] += 1
            if m.breached:
                count["breached"] += 1
                late = _late(m, now)
                breaches.append((late, _ref(record, f"{_WORDS[target]} late by {format_duration(late)}")))
                continue
            count["met"] += 1
            if m.goal is not None and m.goal > timedelta(0) and m.goal - m.elapsed < m.goal * near_miss_share:
                count["near"] += 1
                spare = m.goal - m.elapsed
                near.append((spare, _ref(record, f"{_WORDS[target]} met with {format_duration(spare)} to spare")))
    targets = tuple(
        TargetStats(target, completed=len(elapsed[target]), with_deadline=counts[target]["with_deadline"],
                    met=counts[target]["met"], median=quantile_duration(elapsed[target], 0.5),
                    p90=quantile_duration(elapsed[target], 0.9), breached=counts[target]["breached"],
                    near_misses=counts[target]["near"])
        for target in SLA_TARGETS
    )
    worst = tuple(ref for _, ref in sorted(breaches, key=lambda item: (-item[0], item[1].key))[:limit])
    closest = tuple(ref for _, ref in sorted(near, key=lambda item: (item[0], item[1].key))[:limit])
    return SlaSummary(targets, worst, closest)


def _late(m: Measurement, now: datetime) -> timedelta:
    """How far past the goal, in the target's own time base (wall time when no goal is known)."""
    if m.goal is not None:
        return max(m.elapsed - m.goal, timedelta(0))
    assert m.deadline is not None
    return max((m.stopped_at or now) - m.deadline, timedelta(0))


def _ref(record: TicketRecord, detail: str) -> TicketRef:
    ticket = record.ticket
    return TicketRef(ticket.key, ticket.subject, ticket.url, detail)
