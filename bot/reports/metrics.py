"""Queue-health metrics, computed as pure functions of ticket records, audit lines and a period.

`build_report(records, audit, period, scopes, ...)` never reads a clock, the
state store or the network, so every number can be checked against a
generated history. Conventions (see docs/reports.md):

- flow counts (created, solved, reopened, SLA, tags, repeats) place a ticket
  in the team owning its *current* group; the backlog at a past instant uses
  the group the ticket had *then*;
- the backlog normal is the mean of the backlog at the same weekday and time
  in each of the four previous weeks (only weeks with recorded history count,
  at least two are needed); the report flags a backlog more than 10% above it;
- ages are business time of the ticket's calendar, in working days of that
  calendar (8h for a 09:00-17:00 day).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.calendar import Calendar, always
from bot.model import Ticket
from bot.reports.records import TicketRecord, assignee_label, requester_identity
from bot.reports.report import (
    AgentLoad,
    Backlog,
    Period,
    Repeats,
    Report,
    RuleActivity,
    ScopeReport,
    TicketRef,
    TrendPoint,
)
from bot.reports.sla_stats import Measurer, platform_measurer, sla_summary
from bot.reports.stats import business_day, robust_z
from bot.rules.durations import format_duration
from bot.state import AuditEntry

_AGING_EDGES = (1.0, 3.0, 7.0)  # business days
_FAILED = frozenset({"failed", "dead", "expired"})


@dataclass(frozen=True)
class Scope:
    """What one section of a report covers: a team's groups (None: the whole queue)."""

    name: str
    groups: frozenset[str] | None = None  # casefolded group names
    members: tuple[str, ...] = ()  # agents' emails, shown even with no open ticket
    time_basis: str = "calendar time (24x7)"

    def covers(self, group: str | None) -> bool:
        """True when a ticket in this group belongs to the scope."""
        return self.groups is None or (group is not None and group.casefold() in self.groups)


@dataclass(frozen=True)
class ReportSettings:
    """Thresholds and sizes; the defaults are what docs/reports.md describes."""

    backlog_threshold: float = 0.10
    normal_weeks: int = 4
    min_normal_weeks: int = 2
    trend_days: int = 14
    near_miss_share: float = 0.10
    outlier_z: float = 3.5
    min_agents_for_outliers: int = 3
    repeat_window: timedelta = field(default=timedelta(days=7))
    top_tags: int = 10
    list_limit: int = 10


def build_report(records: Sequence[TicketRecord], audit: Iterable[AuditEntry], period: Period,
                 scopes: Sequence[Scope], *, calendar_for: Callable[[Ticket], Calendar] | None = None,
                 measurer: Measurer | None = None, history_since: datetime | None = None,
                 settings: ReportSettings | None = None, notes: Sequence[str] = (),
                 team: str | None = None) -> Report:
    """Every metric for every scope, as of `period.end`."""
    settings = settings or ReportSettings()
    calendar_for = calendar_for or (lambda ticket: always())
    measurer = measurer or platform_measurer(calendar_for)
    entries = [e for e in audit if e.at in period]
    requesters = _requester_index(records)
    built = tuple(
        _scope_report(scope, records, entries, period, calendar_for, measurer, history_since, settings, requesters)
        for scope in scopes
    )
    return Report(period, period.end, built, tuple(notes), team)


def _scope_report(scope: Scope, records: Sequence[TicketRecord], audit: Sequence[AuditEntry], period: Period,
                  calendar_for: Callable[[Ticket], Calendar], measurer: Measurer, history_since: datetime | None,
                  settings: ReportSettings, requesters: dict[str, list[datetime]]) -> ScopeReport:
    now = period.end
    mine = [r for r in records if scope.covers(r.ticket.group)]
    created = [r.ticket for r in mine if r.ticket.created_at in period]
    open_now = [r.ticket for r in mine if not r.ticket.status.is_resolved]
    trend = backlog_trend(records, scope, now, history_since, settings)
    sla = sla_summary(mine, measurer, period, near_miss_share=settings.near_miss_share, limit=settings.list_limit)
    unassigned = [t for t in open_now if t.assignee_id is None and not t.assignee and not t.assignee_email]
    no_group = [t for t in open_now if not t.group]
    keys = None if scope.groups is None else {r.key for r in mine}
    return ScopeReport(
        name=scope.name,
        created=len(created),
        solved=sum(1 for r in mine if r.solved_between(period.start, period.end)),
        reopened=sum(1 for r in mine if r.reopened_between(period.start, period.end)),
        backlog=_backlog(trend[-1], len(open_now), settings),
        trend=trend,
        aging=aging(open_now, now, calendar_for),
        time_basis=scope.time_basis,
        sla=sla.targets, breaches=sla.breaches, near_misses=sla.near_misses,
        agents=agent_loads(open_now, scope.members, settings),
        unassigned=len(unassigned), unassigned_oldest=_oldest(unassigned, now, settings.list_limit),
        no_group=len(no_group), no_group_oldest=_oldest(no_group, now, settings.list_limit),
        repeats=repeat_contacts(created, requesters, settings.repeat_window),
        top_tags=top_tags(created, settings.top_tags),
        activity=activity(audit, keys),
    )  # fmt: skip


# -- backlog -------------------------------------------------------------------------------------


def backlog_at(records: Iterable[TicketRecord], scope: Scope, at: datetime) -> int:
    """How many tickets were open in the scope at an instant (by the group they had then)."""
    count = 0
    for record in records:
        state = record.state_at(at)
        if state is not None and state.open and scope.covers(state.group):
            count += 1
    return count


def backlog_trend(records: Sequence[TicketRecord], scope: Scope, now: datetime, history_since: datetime | None,
                  settings: ReportSettings) -> tuple[TrendPoint, ...]:
    """The backlog at this time of day for the last `trend_days` days, each with its weekday normal band."""
    known: dict[datetime, int | None] = {}

    def value(at: datetime) -> int | None:
        if at not in known:
            known[at] = None if history_since is not None and at < history_since else backlog_at(records, scope, at)
        return known[at]

    points = []
    for days_back in range(settings.trend_days - 1, -1, -1):
        at = now - timedelta(days=days_back)
        samples = [v for w in range(1, settings.normal_weeks + 1)
                   if (v := value(at - timedelta(weeks=w))) is not None]
        enough = len(samples) >= settings.min_normal_weeks
        if enough:
            points.append(TrendPoint(at, value(at), sum(samples) / len(samples), min(samples), max(samples),
                                     len(samples)))
        else:
            points.append(TrendPoint(at, value(at)))
    return tuple(points)


def _backlog(point: TrendPoint, open_now: int, settings: ReportSettings) -> Backlog:
    if point.normal is None:
        return Backlog(open_now)
    flagged = open_now > point.normal * (1 + settings.backlog_threshold)
    return Backlog(open_now, point.normal, point.low, point.high, point.weeks, flagged)


# -- open tickets --------------------------------------------------------------------------------


def business_age_days(ticket: Ticket, now: datetime, calendar: Calendar) -> float | None:
    """A ticket's age in working days of its calendar (None without a creation time)."""
    if ticket.created_at is None:
        return None
    return calendar.between(ticket.created_at, max(now, ticket.created_at)) / business_day(calendar)


def aging(open_tickets: Iterable[Ticket], now: datetime,
          calendar_for: Callable[[Ticket], Calendar]) -> tuple[int, int, int, int]:
    """Open tickets under 1, 1-3, 3-7 and over 7 business days old (bucket edges belong to the older one)."""
    buckets = [0, 0, 0, 0]
    for ticket in open_tickets:
        age = business_age_days(ticket, now, calendar_for(ticket))
        if age is not None:
            buckets[bisect.bisect_right(_AGING_EDGES, age)] += 1
    return buckets[0], buckets[1], buckets[2], buckets[3]


def agent_loads(open_tickets: Iterable[Ticket], members: Sequence[str],
                settings: ReportSettings) -> tuple[AgentLoad, ...]:
    """Open tickets per agent (listed members included at 0), flagging robust-z outliers both ways."""
    counts: Counter[str] = Counter()
    names: dict[str, str] = {}
    for member in members:
        counts[member.casefold()] += 0
        names.setdefault(member.casefold(), member)
    for ticket in open_tickets:
        label = assignee_label(ticket)
        if label is None:
            continue
        identity = (ticket.assignee_email or label).casefold()
        counts[identity] += 1
        names[identity] = label
    identities = sorted(counts, key=lambda i: (-counts[i], names[i].casefold()))
    scores = robust_z([counts[i] for i in identities])
    judge = len(identities) >= settings.min_agents_for_outliers
    loads = []
    for identity, z in zip(identities, scores, strict=True):
        flag = ""
        if judge and z > settings.outlier_z:
            flag = "high"
        elif judge and z < -settings.outlier_z:
            flag = "low"
        loads.append(AgentLoad(names[identity], counts[identity], z, flag))  # type: ignore[arg-type]
    return tuple(loads)


def _oldest(tickets: Sequence[Ticket], now: datetime, limit: int) -> tuple[TicketRef, ...]:
    dated = sorted((t for t in tickets if t.created_at is not None), key=lambda t: (t.created_at, t.key))
    return tuple(TicketRef(t.key, t.subject, t.url, f"waiting {format_duration(now - t.created_at)}")  # type: ignore[operator]
                 for t in dated[:limit])


# -- created in the period -----------------------------------------------------------------------


def _requester_index(records: Iterable[TicketRecord]) -> dict[str, list[datetime]]:
    index: dict[str, list[datetime]] = {}
    for record in records:
        who = requester_identity(record.ticket)
        if who is not None and record.ticket.created_at is not None:
            index.setdefault(who, []).append(record.ticket.created_at)
    for moments in index.values():
        moments.sort()
    return index


def repeat_contacts(created: Iterable[Ticket], requesters: dict[str, list[datetime]],
                    window: timedelta) -> Repeats:
    """Tickets whose requester had opened another ticket in the `window` before it."""
    repeats = total = 0
    for ticket in created:
        who = requester_identity(ticket)
        if who is None or ticket.created_at is None:
            continue
        total += 1
        moments = requesters.get(who, [])
        start = bisect.bisect_left(moments, ticket.created_at - window)
        end = bisect.bisect_left(moments, ticket.created_at)  # strictly earlier tickets only
        if end > start:
            repeats += 1
    return Repeats(repeats, total, window)


def top_tags(created: Iterable[Ticket], limit: int) -> tuple[tuple[str, int], ...]:
    """The most frequent tags on tickets created in the period (ties by name)."""
    counts = Counter(tag for ticket in created for tag in ticket.tags)
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit])


# -- deskbot's own work --------------------------------------------------------------------------


def activity(audit: Iterable[AuditEntry], ticket_keys: set[str] | None) -> tuple[RuleActivity, ...]:
    """Per rule: helpdesk actions done, alerts sent, dry-run actions and failures (from the audit log)."""
    table: dict[str, Counter[str]] = {}
    for entry in audit:
        if ticket_keys is not None and entry.ticket_key not in ticket_keys:
            continue
        if entry.result == "done":
            column = "actions"
        elif entry.result == "sent":
            column = "alerts"
        elif entry.result == "dry_run":
            column = "dry_run"
        elif entry.result in _FAILED:
            column = "failed"
        else:
            continue  # planned, queued, skipped: not an outcome
        table.setdefault(entry.rule or "(none)", Counter())[column] += 1
    rows = [RuleActivity(rule, c["actions"], c["alerts"], c["dry_run"], c["failed"]) for rule, c in table.items()]
    return tuple(sorted(rows, key=lambda row: (-row.total, row.rule)))
