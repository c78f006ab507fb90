"""The report as data: what every renderer (terminal, Markdown, CSV, JSON, Slack, chart) draws from.

Everything is computed once by `bot.reports.metrics.build_report`; renderers
only format. Ticket subjects here are helpdesk text (untrusted): renderers
escape them for their medium.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

Kind = Literal["daily", "weekly"]
AGING_LABELS = ("under 1 day", "1-3 days", "3-7 days", "over 7 days")
SLA_TARGETS = ("first_reply", "resolution")


@dataclass(frozen=True)
class Period:
    """The half-open interval [start, end) a report counts events in."""

    kind: Kind
    start: datetime
    end: datetime

    @classmethod
    def ending(cls, kind: Kind, end: datetime) -> Period:
        """The day or week (7 days) that ends at `end`."""
        return cls(kind, end - (timedelta(days=1) if kind == "daily" else timedelta(days=7)), end)

    def __contains__(self, at: object) -> bool:
        return isinstance(at, datetime) and self.start <= at < self.end


@dataclass(frozen=True)
class TicketRef:
    """A ticket named in a report, with why it is named."""

    key: str
    subject: str = ""
    url: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Backlog:
    """Open tickets now against the trailing four-week normal for the same weekday and time."""

    open: int
    normal: float | None = None
    low: int | None = None
    high: int | None = None
    weeks: int = 0
    flagged: bool = False

    @property
    def change(self) -> float | None:
        """Relative change against the normal (0.12 is 12% above); None without a normal."""
        if self.normal is None or self.normal == 0:
            return None
        return (self.open - self.normal) / self.normal


@dataclass(frozen=True)
class TrendPoint:
    """The backlog at one past instant and the normal band for that weekday (None: not known)."""

    at: datetime
    open: int | None
    normal: float | None = None
    low: int | None = None
    high: int | None = None
    weeks: int = 0


@dataclass(frozen=True)
class TargetStats:
    """SLA adherence for one target over the tickets that reached it in the period."""

    target: str
    completed: int = 0
    with_deadline: int = 0
    met: int = 0
    median: timedelta | None = None
    p90: timedelta | None = None
    breached: int = 0
    near_misses: int = 0

    @property
    def share_met(self) -> float | None:
        """Share of tickets with a deadline that met it."""
        return self.met / self.with_deadline if self.with_deadline else None


@dataclass(frozen=True)
class AgentLoad:
    """One agent's open tickets and whether that is unusual for the team (robust z-score)."""

    agent: str
    open: int
    z: float = 0.0
    flag: Literal["", "high", "low"] = ""


@dataclass(frozen=True)
class RuleActivity:
    """What deskbot did for one rule in the period, from the audit log."""

    rule: str
    actions: int = 0
    alerts: int = 0
    dry_run: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        """Every counted line."""
        return self.actions + self.alerts + self.dry_run + self.failed


@dataclass(frozen=True)
class Repeats:
    """Tickets created in the period whose requester had opened another one shortly before."""

    repeats: int = 0
    with_requester: int = 0
    window: timedelta = timedelta(days=7)

    @property
    def rate(self) -> float | None:
        """Share of tickets (with a known requester) that were repeat contacts."""
        return self.repeats / self.with_requester if self.with_requester else None


@dataclass(frozen=True)
class ScopeReport:
    """Every metric for one team (or for the whole queue)."""

    name: str
    created: int = 0
    solved: int = 0
    reopened: int = 0
    backlog: Backlog = field(default_factory=lambda: Backlog(0))
    trend: tuple[TrendPoint, ...] = ()
    aging: tuple[int, int, int, int] = (0, 0, 0, 0)
    time_basis: str = "calendar time"
    sla: tuple[TargetStats, ...] = ()
    breaches: tuple[TicketRef, ...] = ()
    near_misses: tuple[TicketRef, ...] = ()
    agents: tuple[AgentLoad, ...] = ()
    unassigned: int = 0
    unassigned_oldest: tuple[TicketRef, ...] = ()
    no_group: int = 0
    no_group_oldest: tuple[TicketRef, ...] = ()
    repeats: Repeats = field(default_factory=Repeats)
    top_tags: tuple[tuple[str, int], ...] = ()
    activity: tuple[RuleActivity, ...] = ()


@dataclass(frozen=True)
class Report:
    """A daily or weekly queue-health report: the main scope first, then one per team when overall."""

    period: Period
    generated_at: datetime
    scopes: tuple[ScopeReport, ...]
    notes: tuple[str, ...] = ()
    team: str | None = None  # None: the whole queue

    @property
    def main(self) -> ScopeReport:
        """The scope the report is about (overall, or the one team)."""
        return self.scopes[0]

    @property
    def title(self) -> str:
        """E.g. `Daily queue report: billing`."""
        return f"{self.period.kind.capitalize()} queue report: {self.main.name}"


def seconds(value: timedelta | None) -> float | None:
    """A duration as seconds for JSON and CSV (None stays None)."""
    return None if value is None else round(value.total_seconds(), 3)


def to_dict(report: Report) -> dict[str, Any]:
    """The whole report as JSON-ready data (times ISO 8601, durations in seconds)."""
    return {
        "title": report.title,
        "team": report.team,
        "kind": report.period.kind,
        "period": {"start": report.period.start.isoformat(), "end": report.period.end.isoformat()},
        "generated_at": report.generated_at.isoformat(),
        "notes": list(report.notes),
        "scopes": [_scope(s) for s in report.scopes],
    }


def _ref(ref: TicketRef) -> dict[str, str]:
    return {"key": ref.key, "subject": ref.subject, "url": ref.url, "detail": ref.detail}


def _scope(scope: ScopeReport) -> dict[str, Any]:
    backlog = scope.backlog
    return {
        "name": scope.name,
        "created": scope.created, "solved": scope.solved, "reopened": scope.reopened,
        "backlog": {"open": backlog.open, "normal": backlog.normal, "low": backlog.low, "high": backlog.high,
                    "weeks": backlog.weeks, "change": backlog.change, "flagged": backlog.flagged},
        "trend": [{"at": p.at.isoformat(), "open": p.open, "normal": p.normal, "low": p.low, "high": p.high}
                  for p in scope.trend],
        "aging": dict(zip(AGING_LABELS, scope.aging, strict=True)),
        "time_basis": scope.time_basis,
        "sla": [{"target": t.target, "completed": t.completed, "with_deadline": t.with_deadline, "met": t.met,
                 "share_met": t.share_met, "median_seconds": seconds(t.median), "p90_seconds": seconds(t.p90),
                 "breached": t.breached, "near_misses": t.near_misses} for t in scope.sla],
        "breaches": [_ref(r) for r in scope.breaches],
        "near_misses": [_ref(r) for r in scope.near_misses],
        "agents": [{"agent": a.agent, "open": a.open, "z": round(a.z, 2), "flag": a.flag} for a in scope.agents],
        "unassigned": {"count": scope.unassigned, "oldest": [_ref(r) for r in scope.unassigned_oldest]},
        "no_group": {"count": scope.no_group, "oldest": [_ref(r) for r in scope.no_group_oldest]},
        "repeat_contacts": {"repeats": scope.repeats.repeats, "with_requester": scope.repeats.with_requester,
                            "rate": scope.repeats.rate, "window_seconds": seconds(scope.repeats.window)},
        "top_tags": [{"tag": tag, "count": count} for tag, count in scope.top_tags],
        "activity": [{"rule": a.rule, "actions": a.actions, "alerts": a.alerts, "dry_run": a.dry_run,
                      "failed": a.failed} for a in scope.activity],
    }  # fmt: skip
