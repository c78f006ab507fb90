"""Report schedules and recurring-issue settings from the rules file, and which reports are due.

    reports:
      - name: billing-morning
        kind: daily            # or weekly
        team: billing          # omit for the whole queue
        at: "08:30"            # local time of `timezone` (default: the team's, else UTC)
        days: weekdays         # mon..sun, weekdays, weekend, daily, ranges like mon-thu, or a list
        channel: "#billing-leads"   # default: the team's slack_channel
    recurring_issues:
      channel: "#support-leads"
      window: 6h
      factor: 3
      min_count: 5

`due_reports(schedules, last_run, now)` is pure: a schedule is due when its
latest slot at or before `now` is newer than its last run and no older than
the grace period (a bot restarted at 15:00 does not post the 08:30 report).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.calendar import WEEKDAYS, CalendarError, load_zone, parse_weekday
from bot.reports.spikes import SpikeSettings
from bot.rules.durations import DurationError, parse_duration

GRACE = timedelta(hours=2)
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_GROUPS = {"weekdays": WEEKDAYS[:5], "weekend": WEEKDAYS[5:], "daily": WEEKDAYS}


class Strict(BaseModel):
    """Unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def expand_days(value: str | Sequence[str]) -> tuple[int, ...]:
    """Weekday numbers (Monday 0) from `weekdays`, `mon-thu`, `daily`, `sat` or a list of those."""
    items = [value] if isinstance(value, str) else list(value)
    found: set[int] = set()
    for item in items:
        name = str(item).strip().lower()
        if name in _GROUPS:
            found.update(WEEKDAYS.index(d) for d in _GROUPS[name])
            continue
        first, dash, last = (part.strip() for part in name.partition("-"))
        try:
            start = parse_weekday(first)
            end = parse_weekday(last) if dash else start
        except CalendarError:
            raise ValueError(f"'{item}' is not a day (use mon..sun, weekdays, weekend, daily or a range "
                             "such as mon-fri)") from None
        found.update((start + i) % 7 for i in range((end - start) % 7 + 1))
    if not found:
        raise ValueError("give at least one day (e.g. weekdays, or [mon])")
    return tuple(sorted(found))


class ReportSchedule(Strict):
    """A report posted to Slack at a local time on chosen days."""

    name: str = Field(min_length=1, description="Unique name; remembers when the report last ran.")
    kind: Literal["daily", "weekly"] = Field("daily", description="daily covers 24 hours, weekly 7 days.")
    team: str | None = Field(None, description="A team under `teams:`; omit for the whole queue with per-team rows.")
    at: str = Field("08:30", description="Local time HH:MM.")
    days: str | list[str] | None = Field(None, description="Days to post: weekdays (daily default), mon (weekly "
                                                           "default), daily, weekend, mon-thu, or a list.")
    timezone: str | None = Field(None, description="IANA zone of `at`; default: the team's timezone, else UTC.")
    channel: str | None = Field(None, description="Slack channel; default: the team's slack_channel.")
    chart: bool = Field(True, description="Upload the backlog and aging chart with the summary.")
    calendar: str | None = Field(None, description="Calendar (under `calendars:`) for business-time ages; "
                                                   "default: the team's calendar, else its SLA policy's, else 24x7.")

    @field_validator("at")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value.strip()):
            raise ValueError(f"'{value}' is not a time of day (write HH:MM, e.g. 08:30)")
        return value.strip()

    @field_validator("days")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if value is not None:
            expand_days(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                load_zone(value)
            except CalendarError as error:
                raise ValueError(str(error)) from None
        return value

    @property
    def weekdays(self) -> tuple[int, ...]:
        """The days it posts on (Monday 0)."""
        return expand_days(self.days if self.days is not None else ("weekdays" if self.kind == "daily" else "mon"))

    @property
    def local_time(self) -> time:
        """`at` as a time of day."""
        hour, minute = self.at.split(":")
        return time(int(hour), int(minute))


def _duration(value: Any) -> Any:
    try:
        if parse_duration(value) <= timedelta(0):
            raise ValueError(f"{value!r} must be longer than zero")
    except DurationError as error:
        raise ValueError(str(error)) from None
    return value


class RecurringIssuesSpec(Strict):
    """Alert when many new tickets share terms or tags far more than usual (see docs/reports.md)."""

    enabled: bool = True
    channel: str = Field(description="Slack channel for recurring-issue alerts.")
    window: str = Field("6h", description="How far back new tickets are counted.")
    baseline: str = Field("7d", description="The period before the window that sets the usual rate.")
    factor: float = Field(3.0, gt=1, description="Alert when the window's count is at least this many times usual.")
    min_count: int = Field(5, ge=2, description="... and at least this many tickets.")
    ignore_terms: list[str] = Field(default_factory=list, description="Words never grouped on (e.g. your brand).")
    ignore_tags: list[str] = Field(default_factory=list, description="Tags never grouped on.")
    mention: list[str] = Field(default_factory=list, description="Emails or @handles to mention.")
    severity: Literal["info", "warning", "critical"] = "warning"

    _durations = field_validator("window", "baseline")(_duration)

    def settings(self) -> SpikeSettings:
        """The detector's settings."""
        from bot.reports.text import stem

        ignored = {w.casefold() for w in self.ignore_terms}
        return SpikeSettings(
            channel=self.channel, window=parse_duration(self.window), baseline=parse_duration(self.baseline),
            factor=self.factor, min_count=self.min_count, ignore_terms=frozenset(ignored | {stem(w) for w in ignored}),
            ignore_tags=frozenset(t.casefold() for t in self.ignore_tags), severity=self.severity,
            mention=tuple(self.mention),
        )  # fmt: skip


@dataclass(frozen=True)
class DueReport:
    """A schedule whose slot has come: post it, then remember `scheduled_at` as its last run."""

    schedule: ReportSchedule
    scheduled_at: datetime


def latest_slot(schedule: ReportSchedule, now: datetime) -> datetime | None:
    """The schedule's most recent slot at or before `now`, in UTC."""
    zone = load_zone(schedule.timezone or "UTC")
    today = now.astimezone(zone).date()
    days = schedule.weekdays
    for back in range(8):
        day = today - timedelta(days=back)
        if day.weekday() not in days:
            continue
        slot = datetime.combine(day, schedule.local_time, tzinfo=zone).astimezone(UTC)
        if slot <= now:
            return slot
    return None


def due_reports(schedules: Sequence[ReportSchedule], last_run: Mapping[str, datetime], now: datetime, *,
                grace: timedelta = GRACE) -> list[DueReport]:
    """Schedules whose latest slot is after their last run and at most `grace` ago, oldest slot first."""
    due = []
    for schedule in schedules:
        slot = latest_slot(schedule, now)
        if slot is None or now - slot > grace:
            continue
        last = last_run.get(schedule.name)
        if last is None or slot > last:
            due.append(DueReport(schedule, slot))
    return sorted(due, key=lambda item: (item.scheduled_at, item.schedule.name))


def resolve_schedules(schedules: Sequence[ReportSchedule], teams: Mapping[str, Any]) -> list[ReportSchedule]:
    """Schedules with the team's time zone and Slack channel filled in where the schedule leaves them out."""
    resolved = []
    for schedule in schedules:
        team = teams.get(schedule.team) if schedule.team else None
        update: dict[str, Any] = {}
        if schedule.timezone is None:
            update["timezone"] = getattr(team, "timezone", None) or "UTC"
        if schedule.channel is None and getattr(team, "slack_channel", None):
            update["channel"] = team.slack_channel  # type: ignore[union-attr]
        resolved.append(schedule.model_copy(update=update) if update else schedule)
    return resolved


def report_problems(schedules: Sequence[ReportSchedule], teams: Mapping[str, Any],
                    calendars: Sequence[str] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-section mistakes as (location, message): unknown team or calendar, no channel, repeated names."""
    import difflib

    problems: list[tuple[tuple[str | int, ...], str]] = []
    seen: set[str] = set()
    for index, schedule in enumerate(schedules):
        where: tuple[str | int, ...] = ("reports", index)
        if schedule.name in seen:
            problems.append(((*where, "name"), f"report name '{schedule.name}' is used twice"))
        seen.add(schedule.name)
        team = teams.get(schedule.team) if schedule.team else None
        if schedule.team and team is None:
            close = difflib.get_close_matches(schedule.team, list(teams), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (teams: {', '.join(teams) or 'none defined'})"
            problems.append(((*where, "team"), f"unknown team '{schedule.team}'{hint}"))
        if schedule.channel is None and not getattr(team, "slack_channel", None):
            problems.append(((*where, "channel"), f"report '{schedule.name}' has nowhere to go: give it a "
                                                  "channel, or a team with a slack_channel"))
        known = ["24x7", *calendars]
        if schedule.calendar is not None and schedule.calendar not in known:
            problems.append(((*where, "calendar"), f"unknown calendar '{schedule.calendar}' "
                                                   f"(known: {', '.join(known)})"))
    return problems
