"""SLA policies and their clocks: how long a ticket may wait, and how long it has.

The rules file names calendars (`calendars:`) and policies (`sla_policies:`);
`clocks(ticket, now, policy, calendars)` turns one ticket snapshot into a
`Clock` per target (first reply, next reply, resolution). Everything here is
pure: time is passed in, nothing reads a clock or the network.

Clock semantics (see docs/sla.md):

- first_reply: starts at created_at, stops at first_responded_at;
- next_reply: starts at the customer's last update when it is later than the
  first reply, stops at the next agent update;
- resolution: starts at created_at, stops when the ticket is solved or closed;
- a ticket solved or closed stops every clock it still runs.

Pausing (`pause_when: [pending, on_hold]`) needs the ticket's status history.
Given one (`history=`, oldest first), every past pause is subtracted. Without
it only the current pause is visible, from status_changed_at: time spent
pending before the last status change counts as running time, so a clock
without history can only breach early, never late.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.calendar import Calendar, always, check_holiday_region, expand_hours, from_us, load_zone, to_us
from bot.model import Priority, Status, Ticket
from bot.rules.durations import parse_duration

TARGETS = ("first_reply", "next_reply", "resolution")
ZERO = timedelta(0)
TICK = timedelta(microseconds=1)


def _duration(value: Any) -> timedelta:
    delta = parse_duration(value)  # DurationError is a ValueError: pydantic reports it at the key
    if delta <= ZERO:
        raise ValueError(f"{value!r} must be longer than zero")
    return delta


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Strict(BaseModel):
    """Unknown keys are errors; specs never change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HolidaysSpec(Strict):
    """Days off: a country's public holidays (the `holidays` package) plus explicit dates."""

    country: str | None = Field(None, description="ISO 3166 country code, e.g. GB, US, DE.")
    subdivision: str | None = Field(None, description="State/region code within the country, e.g. ENG, CA.")
    dates: list[date] = Field(default_factory=list, description="Extra days off, e.g. 2024-12-24.")

    @model_validator(mode="after")
    def _known_region(self) -> HolidaysSpec:
        if self.subdivision is not None and self.country is None:
            raise ValueError("a holiday 'subdivision' needs a 'country'")
        if self.country is not None:
            check_holiday_region(self.country, self.subdivision)
        return self


class CalendarSpec(Strict):
    """A named working schedule: time zone, shifts per weekday, holidays."""

    timezone: str = Field("UTC", description="IANA time zone, e.g. Europe/London.")
    hours: dict[str, list[str] | str] | Literal["24x7"] = Field(
        description="Shifts per day: {mon: ['09:00-12:30', '13:30-18:00'], weekdays: '09:00-17:00', "
                    "sat: []}; keys mon..sun, weekdays, weekend, daily, or ranges like mon-thu; "
                    "overnight shifts such as 22:00-06:00 belong to the day they start; or '24x7'.")
    holidays: HolidaysSpec | None = Field(None, description="Days off.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        load_zone(value)
        return value

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: Any) -> Any:
        if value != "24x7" and not expand_hours(value):
            raise ValueError("no working hours at all (give at least one day a shift, or write 24x7)")
        return value

    def build(self, name: str) -> Calendar:
        """The working `Calendar` this spec describes."""
        days_off = self.holidays or HolidaysSpec()
        return Calendar(name, self.timezone, None if self.hours == "24x7" else self.hours, country=days_off.country,
                        subdivision=days_off.subdivision, dates=days_off.dates)


class TargetSpec(Strict):
    """How long one target may take, per priority; a bare duration applies to every priority."""

    urgent: Duration | None = None
    high: Duration | None = None
    normal: Duration | None = None
    low: Duration | None = None
    business_hours: bool = Field(True, description="Count only the policy calendar's working time.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str | timedelta):
            return {priority.value: value for priority in Priority}
        return value

    def goal(self, priority: Priority) -> timedelta | None:
        """The allowed time for this priority, if the policy sets one."""
        return getattr(self, priority.value)


class TargetsSpec(Strict):
    """The three targets a policy may set."""

    first_reply: TargetSpec | None = None
    next_reply: TargetSpec | None = None
    resolution: TargetSpec | None = None


class AppliesTo(Strict):
    """Which tickets a policy covers; every list given must match (tags: any one of them)."""

    groups: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    types: list[str] = Field(default_factory=list)
    priorities: list[Priority] = Field(default_factory=list)

    def matches(self, ticket: Ticket) -> bool:
        """True when the ticket is covered."""
        folded = {name.casefold() for name in self.groups}
        return ((not self.groups or (ticket.group or "").casefold() in folded)
                and (not self.tags or not ticket.tags.isdisjoint(self.tags))
                and (not self.types or (ticket.type or "").casefold() in {t.casefold() for t in self.types})
                and (not self.priorities or ticket.priority in self.priorities))


class SlaPolicySpec(Strict):
    """One SLA policy: which tickets, which calendar, the targets, and when clocks pause."""

    name: str
    calendar: str = Field("24x7", description="A name under `calendars:`, or the built-in 24x7.")
    source: Literal["deskbot", "platform"] = Field(
        "deskbot", description="platform: use the helpdesk's own deadlines when a ticket has them.")
    pause_when: list[Literal["pending", "on_hold"]] = Field(default_factory=list)
    applies_to: AppliesTo | None = None
    targets: TargetsSpec = Field(default_factory=TargetsSpec)

    @model_validator(mode="after")
    def _has_targets(self) -> SlaPolicySpec:
        if self.source == "deskbot" and not any(getattr(self.targets, name) for name in TARGETS):
            raise ValueError(f"policy '{self.name}' sets no targets (add first_reply, next_reply or resolution)")
        return self

    def covers(self, ticket: Ticket) -> bool:
        """True when this policy applies to the ticket."""
        return self.applies_to is None or self.applies_to.matches(ticket)


def build_calendars(specs: Mapping[str, CalendarSpec]) -> dict[str, Calendar]:
    """Every usable calendar by name, the built-in `24x7` included."""
    return {"24x7": always(), **{name: spec.build(name) for name, spec in specs.items()}}


def sla_problems(calendars: Mapping[str, CalendarSpec],
                 policies: Sequence[SlaPolicySpec]) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-section mistakes as (location, message): unknown calendars, duplicate names."""
    import difflib

    problems: list[tuple[tuple[str | int, ...], str]] = []
    if "24x7" in calendars:
        problems.append((("calendars", "24x7"), "'24x7' is built in; give your calendar another name"))
    known = ["24x7", *calendars]
    seen: set[str] = set()
    for index, policy in enumerate(policies):
        if policy.calendar not in known:
            close = difflib.get_close_matches(policy.calendar, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"
            problems.append((("sla_policies", index, "calendar"), f"unknown calendar '{policy.calendar}'{hint}"))
        if policy.name in seen:
            problems.append((("sla_policies", index, "name"), f"policy name '{policy.name}' is used twice"))
        seen.add(policy.name)
    return problems


def policy_for(ticket: Ticket, policies: Sequence[SlaPolicySpec]) -> SlaPolicySpec | None:
    """The first policy, in file order, that covers the ticket."""
    return next((policy for policy in policies if policy.covers(ticket)), None)


# -- clocks ----------------------------------------------------------------------------------------
#
# Clock arithmetic runs on epoch microseconds (ints): a business-time sum is two bisects in the calendar's
# timeline (`Calendar.between_us`, `add_us`). `ClockReader` compiles a file's policies once and reads a
# ticket's clocks as `Reading`s, the few numbers conditions and next-change announcements need; `Clock`
# is the same reading with every value as a datetime or timedelta, for messages and reports.


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The ticket entered `status` at `at` (one entry of a status history)."""

    at: datetime
    status: Status


class Timeline:
    """Where a clock runs: from `started_at`, minus pauses ((start, end or None=ongoing)), in a time base.

    `calendar` None means calendar (wall) time. Not changed once built; `start_us` and `pauses_us` are the
    same instants in epoch microseconds.
    """

    __slots__ = ("calendar", "last", "ongoing_us", "pauses", "pauses_us", "start_us", "started_at")

    def __init__(self, started_at: datetime, pauses: tuple[tuple[datetime, datetime | None], ...] = (),
                 calendar: Calendar | None = None, start_us: int | None = None) -> None:
        self.started_at, self.pauses, self.calendar = started_at, pauses, calendar
        self.start_us = to_us(started_at) if start_us is None else start_us
        self.ongoing_us: int | None = None  # where an ongoing pause began
        self.last = (0, 0)  # the last (instant, elapsed) a Reading measured: targets sharing a timeline share it
        if pauses:
            self.pauses_us = tuple((to_us(a), None if b is None else to_us(b)) for a, b in pauses)
            for pause_start, pause_end in self.pauses_us:
                if pause_end is None:
                    self.ongoing_us = pause_start
                    break
        else:
            self.pauses_us = ()

    def __repr__(self) -> str:
        return f"Timeline({self.started_at!r}, {self.pauses!r}, {self.calendar!r})"

    def measure(self, start: datetime, end: datetime) -> timedelta:
        """Time-base length of [start, end), signed."""
        return self.calendar.between(start, end) if self.calendar else end - start

    def advance(self, start: datetime, amount: timedelta) -> datetime:
        """The earliest instant `amount` of time-base time after `start`."""
        return self.calendar.add(start, amount) if self.calendar else start + amount

    def elapsed_until(self, at: datetime) -> timedelta:
        """Running time from the start to `at`, pauses excluded."""
        return timedelta(microseconds=self.elapsed_us(to_us(at)))

    def instant_at(self, amount: timedelta) -> datetime | None:
        """The earliest instant the running time reaches `amount`; None if an ongoing pause comes first."""
        found = self.instant_us(amount // TICK)
        return None if found is None else from_us(found)

    def elapsed_us(self, at: int) -> int:
        """`elapsed_until` in epoch microseconds."""
        start, calendar = self.start_us, self.calendar
        if at < start:
            at = start
        total = calendar.between_us(start, at) if calendar else at - start
        for pause_start, pause_end in self.pauses_us:
            if pause_start < at:
                end = at if pause_end is None or pause_end > at else pause_end
                total -= calendar.between_us(pause_start, end) if calendar else end - pause_start
        return total

    def instant_us(self, amount: int) -> int | None:
        """`instant_at` in epoch microseconds."""
        if amount < 0:
            return None
        calendar = self.calendar
        cursor, left = self.start_us, amount
        for pause_start, pause_end in self.pauses_us:
            if pause_start > cursor:
                stretch = calendar.between_us(cursor, pause_start) if calendar else pause_start - cursor
                if left <= stretch:
                    break
                left -= stretch
            if pause_end is None:
                return None
            cursor = max(cursor, pause_end)
        return calendar.add_us(cursor, left) if calendar else cursor + left


#: `Reading`'s deadline for deskbot's own clocks: where the running time reaches the goal, found when asked.
WHEN_GOAL_REACHED: Any = object()


class Reading:
    """One target's clock at `now`, in epoch microseconds: what conditions read and announcements need.

    `elapsed` is the running time at `now` (or where the clock stopped or paused), `goal` the allowed
    time, `deadline` None while a paused clock has time left; `percent` is `Clock.elapsed_percent`.
    Given `deadline=WHEN_GOAL_REACHED` (deskbot's own clocks), the deadline is the instant the running
    time reaches the goal, found in the calendar only when asked: until then, a clock that has not
    stopped is breached exactly when its running time has reached the goal.
    """

    __slots__ = ("_deadline", "breached", "business", "elapsed", "goal", "now", "paused", "percent", "policy",
                 "source", "stopped_at", "target", "timeline")

    def __init__(self, target: str, policy: str, source: str, business: bool, timeline: Timeline, goal: int,
                 deadline: Any, stopped_at: datetime | None, now: datetime, now_us: int) -> None:
        ongoing = timeline.ongoing_us
        if stopped_at is not None:
            frozen_at = to_us(stopped_at)
        else:
            frozen_at = now_us if ongoing is None else ongoing
        start = timeline.start_us
        end = frozen_at if frozen_at > start else start
        last = timeline.last
        if last[0] == end and end:
            elapsed = last[1]
        else:
            if timeline.pauses_us:
                elapsed = timeline.elapsed_us(end)
            else:  # Timeline.elapsed_us without pauses, inline: this runs for every ticket and target
                calendar = timeline.calendar
                elapsed = calendar.between_us(start, end) if calendar else end - start
            timeline.last = (end, elapsed)
        self.timeline, self.goal = timeline, goal
        if deadline is WHEN_GOAL_REACHED:  # the elapsed time is exactly the goal at the deadline, and never drops
            if stopped_at is None:
                breached = elapsed >= goal  # the same as end >= deadline
            elif elapsed != goal:
                breached = elapsed > goal  # the same as end > deadline
            else:  # stopped with exactly the goal used: in time when it stopped at the deadline, not after
                deadline = timeline.instant_us(goal)
                breached = deadline is not None and end > deadline
        else:
            breached = deadline is not None and (end > deadline if stopped_at is not None else end >= deadline)
        self.target, self.policy, self.source, self.business = target, policy, source, business
        self._deadline, self.stopped_at = deadline, stopped_at
        self.paused = stopped_at is None and ongoing is not None
        self.elapsed, self.breached, self.now = elapsed, breached, now
        self.percent = elapsed * 100 / goal if goal > 0 else (100.0 if breached else 0.0)

    @property
    def running(self) -> bool:
        """True when time alone moves this clock."""
        return self.stopped_at is None and not self.paused

    @property
    def deadline(self) -> int | None:
        """When the target breaches (epoch microseconds); None while a paused clock has time left."""
        deadline = self._deadline
        if deadline is WHEN_GOAL_REACHED:
            deadline = self._deadline = self.timeline.instant_us(self.goal)
        return deadline  # type: ignore[return-value]

    def next_change(self, now: int, breach: bool, marks: Sequence[tuple[int, int, int]] = (),
                    after: bool = False) -> int | None:
        """The first instant after `now` (epoch microseconds) at which the clock breaches or crosses a mark.

        A mark (scale, add, divisor) is the elapsed time (goal * scale + add) / divisor, in microseconds:
        a share of the goal, or the goal plus or minus a duration. See `next_change_at`.
        """
        if self.stopped_at is not None or self.paused:
            return None
        deadline = self.deadline
        best = deadline if breach and deadline is not None and deadline > now else None
        elapsed, goal = self.elapsed, self.goal
        for scale, add, divisor in marks:
            numerator = goal * scale + add
            passed = numerator // divisor + 1
            for target in (passed,) if after else (-(-numerator // divisor), passed):
                if elapsed < target:
                    instant = self.timeline.instant_us(target)
                    if instant is not None and instant > now and (best is None or instant < best):
                        best = instant
                    break
        return best

    def clock(self) -> Clock:
        """The same reading with datetimes and timedeltas."""
        goal, elapsed = timedelta(microseconds=self.goal), timedelta(microseconds=self.elapsed)
        remaining = goal - elapsed
        if self.goal > 0:
            share = self.elapsed / self.goal
        else:
            share = 1.0 if self.breached else 0.0
        timeline = self.timeline
        return Clock(target=self.target, policy=self.policy, source=self.source, business_hours=self.business,
                     started_at=timeline.started_at, goal=goal,
                     deadline=None if self.deadline is None else from_us(self.deadline), paused=self.paused,
                     stopped=self.stopped_at is not None, stopped_at=self.stopped_at, elapsed=elapsed,
                     remaining=remaining, elapsed_share=share, breached=self.breached,
                     breached_for=max(ZERO, -remaining) if self.breached else ZERO, as_of=self.now,
                     timeline=timeline)


@dataclass(frozen=True)
class Clock:
    """One SLA target's state at `as_of`; durations are in the policy's time base.

    `remaining` is negative once breached; `deadline` is None while a paused
    clock has time left (it moves when the clock resumes).
    """

    target: str
    policy: str
    source: str
    business_hours: bool
    started_at: datetime
    goal: timedelta
    deadline: datetime | None
    paused: bool
    stopped: bool
    stopped_at: datetime | None
    elapsed: timedelta
    remaining: timedelta
    elapsed_share: float
    breached: bool
    breached_for: timedelta
    as_of: datetime
    timeline: Timeline = field(repr=False, compare=False)

    @property
    def elapsed_percent(self) -> float:
        """`elapsed` as a percentage of `goal` (exact division, so 7% of a day reads 7.0, not 7.000000000000001)."""
        if self.goal <= ZERO:
            return 100.0 if self.breached else 0.0
        return self.elapsed * 100 / self.goal

    @property
    def running(self) -> bool:
        """True when time alone moves this clock."""
        return not (self.stopped or self.paused)


class _Policy:
    """A policy compiled for reading clocks: who it covers, its calendar, and each target's goals in microseconds."""

    __slots__ = ("calendar", "covers", "name", "pausing", "platform", "spec", "targets")

    def __init__(self, spec: SlaPolicySpec, calendars: Mapping[str, Calendar]) -> None:
        self.spec, self.name, self.platform = spec, spec.name, spec.source == "platform"
        self.calendar = calendars.get(spec.calendar)
        self.pausing = set(spec.pause_when)
        self.covers = _matcher(spec.applies_to)
        targets = []
        calendar = self.calendar
        for target in TARGETS:
            goals: TargetSpec | None = getattr(spec.targets, target)
            business = goals.business_hours if goals else True
            by_priority = {p: (None if goals is None or goals.goal(p) is None else goals.goal(p) // TICK)
                           for p in Priority}
            counted = calendar if business and calendar is not None and not calendar.always_open else None
            if goals is not None or self.platform:
                targets.append((target, business, by_priority, counted))
        self.targets = tuple(targets)

    def read(self, ticket: Ticket, now: datetime, now_us: int,
             history: Sequence[StatusChange] | None = None) -> dict[str, Reading]:
        """Each target's reading for one ticket; targets that do not apply are absent."""
        calendar = self.calendar
        if calendar is None:
            raise ValueError(f"policy '{self.name}' names unknown calendar '{self.spec.calendar}'")
        pausing = self.pausing
        if not pausing:
            pauses: tuple[tuple[datetime, datetime | None], ...] = ()
        elif history:
            pauses = _pauses(ticket, now, pausing, history)
        elif ticket.status in pausing:  # `_pauses` without a history, inline (a Status equals its value)
            pauses = ((ticket.status_changed_at or ticket.updated_at or ticket.created_at or now, None),)
        else:
            pauses = ()
        result: dict[str, Reading] = {}
        shared: Timeline | None = None  # first reply and resolution run on one timeline until one stops
        resolved = (ticket.solved_at or ticket.status_changed_at or now) if ticket.status in _RESOLVED else None
        created_at, created_us = ticket.created_at, None
        for target, business, by_priority, counted in self.targets:
            if target == "next_reply":
                span = _span(ticket, target, resolved)
                if span is None:
                    continue
                started_at, stopped_at = span
            else:  # `_span` of first reply and resolution, inline: every ticket has them
                if created_at is None:
                    continue
                started_at = created_at
                stopped_at = (ticket.first_responded_at or resolved) if target == "first_reply" else resolved
                if stopped_at is not None and stopped_at < created_at:
                    stopped_at = created_at
            platform_deadline = getattr(ticket.sla, f"{target}_due_at") if self.platform else None
            goal = by_priority[ticket.priority]
            if platform_deadline is None and goal is None:
                continue
            own = _clip(pauses, started_at, stopped_at) if pauses else ()
            if platform_deadline is not None:  # the helpdesk already moved its deadline for past pauses
                own = tuple(p for p in own if p[1] is None) if stopped_at is None else ()
            if (shared is not None and started_at is shared.started_at and own == shared.pauses
                    and counted is shared.calendar):
                timeline = shared
            else:
                start_us = None
                if started_at is created_at:  # first reply and resolution both start at creation: convert once
                    if created_us is None:
                        created_us = to_us(created_at)
                    start_us = created_us
                timeline = shared = Timeline(started_at, own, counted, start_us)
            if platform_deadline is not None:
                deadline: Any = to_us(platform_deadline)
                goal = _measure_us(timeline, timeline.start_us, deadline)
                source = "platform"
            else:
                assert goal is not None
                deadline = WHEN_GOAL_REACHED
                source = "deskbot"
            result[target] = Reading(target, self.name, source, business, timeline, goal, deadline, stopped_at,
                                     now, now_us)
        return result


def _measure_us(timeline: Timeline, start: int, end: int) -> int:
    return timeline.calendar.between_us(start, end) if timeline.calendar else end - start


def _matcher(applies: AppliesTo | None) -> Callable[[Ticket], bool] | None:
    """`AppliesTo.matches` with its lists folded once; None when the policy covers every ticket."""
    if applies is None:
        return None
    groups = {name.casefold() for name in applies.groups}
    tags = frozenset(applies.tags)
    types = {name.casefold() for name in applies.types}
    priorities = frozenset(applies.priorities)

    def covers(ticket: Ticket) -> bool:
        return ((not groups or (ticket.group or "").casefold() in groups)
                and (not tags or not tags.isdisjoint(ticket.tags))
                and (not types or (ticket.type or "").casefold() in types)
                and (not priorities or ticket.priority in priorities))

    return covers


class ClockReader:
    """A rules file's policies compiled once: each ticket's readings under the first policy that covers it."""

    def __init__(self, policies: Sequence[SlaPolicySpec], calendars: Mapping[str, Calendar]) -> None:
        self.policies = tuple(_Policy(policy, calendars) for policy in policies)

    def read(self, ticket: Ticket, now: datetime, now_us: int | None = None,
             history: Sequence[StatusChange] | None = None) -> dict[str, Reading]:
        """Readings by target ({} when no policy covers the ticket)."""
        for policy in self.policies:
            if policy.covers is None or policy.covers(ticket):
                return policy.read(ticket, now, to_us(now) if now_us is None else now_us, history)
        return {}


def clocks(ticket: Ticket, now: datetime, policy: SlaPolicySpec, calendars: Mapping[str, Calendar],
           history: Sequence[StatusChange] | None = None) -> dict[str, Clock]:
    """Each target's clock for one ticket under `policy`; targets that do not apply are absent."""
    found = _Policy(policy, calendars).read(ticket, now, to_us(now), history)
    return {target: reading.clock() for target, reading in found.items()}


def ticket_clocks(ticket: Ticket, now: datetime, policies: Sequence[SlaPolicySpec],
                  calendars: Mapping[str, Calendar],
                  history: Sequence[StatusChange] | None = None) -> dict[str, Clock]:
    """The clocks of the first policy covering the ticket ({} when none does)."""
    policy = policy_for(ticket, policies)
    return {} if policy is None else clocks(ticket, now, policy, calendars, history)


_RESOLVED = frozenset(status for status in Status if status.is_resolved)


def _span(ticket: Ticket, target: str, resolved: datetime | None) -> tuple[datetime, datetime | None] | None:
    """(started_at, stopped_at) of a target by the ticket's timestamps, given when it was resolved (None
    while it is not); None when the target has not started."""
    if target == "next_reply":
        customer, first = ticket.last_customer_update_at, ticket.first_responded_at
        if customer is None or first is None or customer <= first:
            return None
        agent = ticket.last_agent_update_at
        stop = agent if agent is not None and agent >= customer else resolved
        return customer, None if stop is None else max(stop, customer)
    if ticket.created_at is None:
        return None
    stop = (ticket.first_responded_at or resolved) if target == "first_reply" else resolved
    return ticket.created_at, None if stop is None else max(stop, ticket.created_at)


def _pauses(ticket: Ticket, now: datetime, statuses: set[str],
            history: Sequence[StatusChange] | None) -> tuple[tuple[datetime, datetime | None], ...]:
    """Intervals spent in a pausing status; the last may be ongoing (end None)."""
    if not statuses:
        return ()
    if not history:
        # Unknown since when: the last update is the latest the status can have changed. Never `now`,
        # which would make a paused clock's reading drift with time.
        since = ticket.status_changed_at or ticket.updated_at or ticket.created_at or now
        return ((since, None),) if ticket.status in statuses else ()  # a Status equals its value
    changes = sorted(history, key=lambda change: change.at)
    if changes[-1].status != ticket.status:  # the snapshot is newer than the history
        changes.append(StatusChange(max(changes[-1].at, ticket.status_changed_at or now), ticket.status))
    found: list[tuple[datetime, datetime | None]] = []
    for change, following in zip(changes, [*changes[1:], None], strict=True):
        if change.status.value in statuses:
            end = following.at if following is not None else None
            if found and found[-1][1] == change.at:  # pending -> on_hold is one pause
                found[-1] = (found[-1][0], end)
            else:
                found.append((change.at, end))
    return tuple(found)


def _clip(pauses: tuple[tuple[datetime, datetime | None], ...], start: datetime,
          end: datetime | None) -> tuple[tuple[datetime, datetime | None], ...]:
    """Pauses inside [start, end); with an end (a stopped clock) none stays ongoing."""
    clipped = []
    for pause_start, pause_end in pauses:
        low = max(pause_start, start)
        high = pause_end if end is None else min(pause_end or end, end)
        if high is None or low < high:
            clipped.append((low, high))
    return tuple(clipped)


def next_due(found: Mapping[str, Clock]) -> str | None:
    """The running, not yet breached target with the earliest deadline (None when there is none)."""
    due = [c for c in found.values() if c.running and not c.breached and c.deadline is not None]
    return min(due, key=lambda c: (c.deadline, TARGETS.index(c.target))).target if due else None


def next_due_change_at(found: Mapping[str, Clock]) -> datetime | None:
    """When `next_due` can change with time alone: the earliest running, unbreached deadline."""
    deadlines = [c.deadline for c in found.values() if c.running and not c.breached and c.deadline]
    return min(deadlines, default=None)


def next_change_at(clock: Clock, now: datetime, *, breach: bool | None = None, percent: float | None = None,
                   remaining: timedelta | None = None, breached_for: timedelta | None = None,
                   after: bool = False) -> datetime | None:
    """The first instant after `now` at which the clock breaches or crosses a given threshold.

    With no threshold it answers when the clock breaches. `percent` is a share
    of the goal (75); `remaining` and `breached_for` are durations; pass
    `breach=True` to also count the breach. A threshold is crossed when the
    clock reaches it (for `>=`-like tests) or, with `after=True`, when it is
    first strictly past it (`>`-like tests); otherwise an instant exactly on a
    threshold announces the microsecond after. None when time alone cannot
    change anything (stopped, paused, or every crossing already past).
    """
    if not clock.running:
        return None
    if breach is None:
        breach = percent is None and remaining is None and breached_for is None
    marks = []
    if percent is not None:
        marks.append(percent_mark(percent))
    if remaining is not None:
        marks.append((1, -(remaining // TICK), 1))
    if breached_for is not None:
        marks.append((1, breached_for // TICK, 1))
    now_us = to_us(now)
    reading = Reading(clock.target, clock.policy, clock.source, clock.business_hours, clock.timeline,
                      clock.goal // TICK, None if clock.deadline is None else to_us(clock.deadline), None, now, now_us)
    found = reading.next_change(now_us, breach, marks, after)
    return None if found is None else from_us(found)


def percent_mark(percent: float) -> tuple[int, int, int]:
    """A share of the goal as a mark for `Reading.next_change`, exactly (75 -> goal * 75 / 100)."""
    numerator, denominator = Fraction(percent).as_integer_ratio() if not isinstance(percent, int | float) \
        else percent.as_integer_ratio()
    return numerator, 0, 100 * denominator
