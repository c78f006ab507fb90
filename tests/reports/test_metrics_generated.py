"""Flow counts and backlog normals on a generated two-month history, against answers computed from the raw lives."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from bot.model import Status
from bot.reports.metrics import ReportSettings, Scope, backlog_at, build_report
from bot.reports.records import Change, TicketRecord
from bot.reports.report import Period

from .helpers import NOW, ticket

GROUPS = ("Billing", "Tech", None)


@dataclass
class Life:
    """The ground truth of one generated ticket."""

    number: int
    created: datetime
    group: str | None
    moved_at: datetime | None
    moved_to: str | None
    toggles: list[datetime]  # solve, reopen, solve, ... in order

    def group_at(self, at: datetime) -> str | None:
        return self.moved_to if self.moved_at is not None and at >= self.moved_at else self.group

    def open_at(self, at: datetime) -> bool:
        return self.created <= at and sum(1 for t in self.toggles if t <= at) % 2 == 0

    @property
    def final_group(self) -> str | None:
        return self.moved_to if self.moved_at is not None else self.group

    def solves(self) -> list[datetime]:
        return self.toggles[0::2]

    def reopens(self) -> list[datetime]:
        return self.toggles[1::2]


def generate(seed: int = 20260302, count: int = 600) -> list[Life]:
    rng = random.Random(seed)
    lives = []
    for number in range(1, count + 1):
        created = NOW - timedelta(days=60) + timedelta(minutes=rng.randrange(60 * 24 * 60))
        group = rng.choice(GROUPS)
        moved_at = moved_to = None
        if rng.random() < 0.3:
            moved_at = created + timedelta(minutes=rng.randrange(10, 48 * 60))
            moved_to = rng.choice([g for g in GROUPS if g != group and g is not None])
            if moved_at >= NOW:
                moved_at = moved_to = None
        toggles, at = [], created
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
            at = at + timedelta(minutes=rng.randrange(30, 6 * 24 * 60))
            if at >= NOW:
                break
            toggles.append(at)
        lives.append(Life(number, created, group, moved_at, moved_to, toggles))
    return lives


def to_record(life: Life) -> TicketRecord:
    """The record the history store would hold for this life."""
    events: list[tuple[datetime, str, object]] = [(t, "toggle", i) for i, t in enumerate(life.toggles)]
    if life.moved_at is not None:
        events.append((life.moved_at, "move", life.moved_to))
    changes = [Change(life.created, Status.NEW, life.group)]
    status, group = Status.NEW, life.group
    for at, what, value in sorted(events, key=lambda e: e[0]):
        if what == "move":
            group = value  # type: ignore[assignment]
        else:
            status = Status.SOLVED if value % 2 == 0 else Status.OPEN  # type: ignore[operator]
        changes.append(Change(at, status, group))
    solved_at = life.solves()[-1] if status.is_resolved else None
    snapshot = ticket(life.number, created_at=life.created, status=status, group=group, solved_at=solved_at)
    return TicketRecord(snapshot, tuple(changes))


LIVES = generate()
RECORDS = [to_record(life) for life in LIVES]
SCOPES = [Scope("all teams"), Scope("billing", frozenset({"billing"})), Scope("tech", frozenset({"tech"}))]


def covers(scope: Scope, group: str | None) -> bool:
    return scope.groups is None or (group or "").casefold() in scope.groups


@pytest.mark.parametrize("kind", ["daily", "weekly"])
def test_created_solved_and_reopened_match_the_lives(kind: str) -> None:
    period = Period.ending(kind, NOW)  # type: ignore[arg-type]
    report = build_report(RECORDS, [], period, SCOPES)
    for scope, built in zip(SCOPES, report.scopes, strict=True):
        mine = [life for life in LIVES if covers(scope, life.final_group)]
        assert built.created == sum(1 for life in mine if period.start <= life.created < period.end)
        assert built.solved == sum(1 for life in mine if any(period.start <= t < period.end for t in life.solves()))
        assert built.reopened == sum(1 for life in mine
                                     if any(period.start <= t < period.end for t in life.reopens()))
    assert report.scopes[0].created > 0 and report.scopes[0].solved > 0, "the generated week must have traffic"


@pytest.mark.parametrize("days_back", [0, 3, 11, 29])
def test_backlog_at_any_instant_counts_open_tickets_by_the_group_they_had_then(days_back: int) -> None:
    at = NOW - timedelta(days=days_back, hours=days_back)
    for scope in SCOPES:
        expected = sum(1 for life in LIVES if life.open_at(at) and covers(scope, life.group_at(at)))
        assert backlog_at(RECORDS, scope, at) == expected


def test_backlog_normal_is_the_mean_of_the_same_weekday_and_time_in_the_four_previous_weeks() -> None:
    report = build_report(RECORDS, [], Period.ending("daily", NOW), SCOPES)
    for scope, built in zip(SCOPES, report.scopes, strict=True):
        samples = [sum(1 for life in LIVES if life.open_at(NOW - timedelta(weeks=w))
                       and covers(scope, life.group_at(NOW - timedelta(weeks=w)))) for w in (1, 2, 3, 4)]
        open_now = sum(1 for life in LIVES if life.open_at(NOW) and covers(scope, life.group_at(NOW)))
        assert built.backlog.open == open_now
        assert built.backlog.normal == pytest.approx(sum(samples) / 4)
        assert (built.backlog.low, built.backlog.high, built.backlog.weeks) == (min(samples), max(samples), 4)
        assert built.backlog.flagged == (open_now > 1.1 * sum(samples) / 4)


def test_trend_points_use_only_weeks_inside_recorded_history() -> None:
    since = NOW - timedelta(days=30)
    settings = ReportSettings()
    report = build_report(RECORDS, [], Period.ending("weekly", NOW), SCOPES[:1], history_since=since,
                          settings=settings)
    trend = report.main.trend
    assert len(trend) == settings.trend_days
    for point in trend:
        known = [w for w in (1, 2, 3, 4) if point.at - timedelta(weeks=w) >= since]
        if len(known) >= 2:
            assert point.weeks == len(known)
            values = [sum(1 for life in LIVES if life.open_at(point.at - timedelta(weeks=w))) for w in known]
            assert point.normal == pytest.approx(sum(values) / len(values))
        else:
            assert point.normal is None and point.weeks == 0
        assert point.open == sum(1 for life in LIVES if life.open_at(point.at))


def test_a_backlog_just_over_ten_percent_above_normal_is_flagged_and_one_at_ten_percent_is_not() -> None:
    def world(extra_now: int) -> list[TicketRecord]:
        records = []
        number = 0
        for w in (1, 2, 3, 4):  # ten tickets open at each of the four sample instants, solved an hour later
            for _ in range(10):
                number += 1
                at = NOW - timedelta(weeks=w)
                t = ticket(number, created_at=at - timedelta(hours=1), status=Status.SOLVED)
                records.append(TicketRecord(t, (Change(at - timedelta(hours=1), Status.NEW),
                                                Change(at + timedelta(hours=1), Status.SOLVED))))
        for _ in range(extra_now):
            number += 1
            t = ticket(number, created_at=NOW - timedelta(hours=2), status=Status.OPEN)
            records.append(TicketRecord(t, (Change(NOW - timedelta(hours=2), Status.OPEN),)))
        return records

    at_threshold = build_report(world(11), [], Period.ending("daily", NOW), SCOPES[:1]).main.backlog
    above = build_report(world(12), [], Period.ending("daily", NOW), SCOPES[:1]).main.backlog
    assert (at_threshold.normal, at_threshold.open, at_threshold.flagged) == (10, 11, False)
    assert (above.open, above.flagged) == (12, True)
    assert above.change == pytest.approx(0.2)
