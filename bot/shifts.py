"""The roster: the rules file's agents, shifts and assignment settings, and who is on duty when.

    shifts:
      emea_day: {timezone: Europe/London, hours: {weekdays: "09:00-17:30"}}
      night: {hours: {mon-fri: "22:00-06:00"}}          # no timezone: the agent's, else the team's
    agents:
      ana@example.com:
        skills: [french, billing]
        capacity: {total: 20, urgent: 3}
        shift: emea_day
        out_of_office:
          - {from: 2026-07-01, to: 2026-07-14}           # whole local days, both included
          - {from: "2026-08-03 13:00", to: "2026-08-03 17:00", note: dentist}
    assignment:
      priority_weights: {urgent: 4, high: 2, normal: 1, low: 0.5}
      ping_pong: {max: 3, within: 24h}
      skills_from: {tags: {fr: french}, custom: {plan: {enterprise: vip}}}

A shift is a weekly-hours spec read by `bot.calendar` (split, overnight and
whole-day shifts, DST-exact, optional holidays). A shift without a `timezone`
runs in the agent's time zone, else the team's, else UTC, so one `day` shift
can serve teams on several continents. An agent with no shift whose team has
none is always on shift. Out-of-office dates are local to the agent (their
`timezone`, else the shift's); exact datetimes may carry an offset. Everything
here is pure: instants are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.calendar import Calendar, expand_hours, load_zone
from bot.model import Priority, Status
from bot.rules.durations import parse_duration
from bot.sla import HolidaysSpec

ALWAYS = "24x7"  # the built-in shift: always on
_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")
_MAX_STEPS = 2000  # a schedule flips at most a few times a day; this covers years of absences


class Strict(BaseModel):
    """Unknown keys are errors; specs never change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _zone_name(value: str | None) -> str | None:
    if value is not None:
        load_zone(value)  # CalendarError (a ValueError) names the closest valid zones
    return value


class ShiftSpec(Strict):
    """A weekly working pattern: shifts per weekday, an optional time zone and holidays."""

    timezone: str | None = Field(None, description="IANA time zone; omit to use the agent's, else the team's.")
    hours: dict[str, list[str] | str] | Literal["24x7"] = Field(
        description="Shifts per day, as in calendars: {weekdays: '09:00-17:00', sat: ['10:00-14:00']}, "
                    "overnight '22:00-06:00' belongs to the day it starts; or '24x7'.")
    holidays: HolidaysSpec | None = Field(None, description="Days off when no shift starts.")

    _zone = field_validator("timezone")(_zone_name)

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: Any) -> Any:
        if value != ALWAYS and not expand_hours(value):
            raise ValueError("no working hours at all (give at least one day a shift, or write 24x7)")
        return value

    def build(self, name: str, zone: ZoneInfo) -> Calendar | None:
        """The calendar of this shift in `zone` (its own zone wins); None for an always-on shift."""
        if self.hours == ALWAYS and self.holidays is None:
            return None
        days_off = self.holidays or HolidaysSpec()
        hours = None if self.hours == ALWAYS else self.hours
        timezone = load_zone(self.timezone) if self.timezone else zone
        return Calendar(name, timezone, hours, country=days_off.country, subdivision=days_off.subdivision,
                        dates=days_off.dates)


def _moment(value: Any) -> Any:
    """Dates stay dates (whole days); other ISO texts become datetimes (naive = the agent's zone)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if _DATE_ONLY.match(text) else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a date (2026-07-01) or a date and time (2026-07-01 13:00)")
    return value


Moment = Annotated[datetime | date, BeforeValidator(_moment)]


class OutOfOfficeSpec(Strict):
    """One absence: whole days (`to` included) or exact date-times (`to` excluded)."""

    start: Moment = Field(alias="from", description="First day off (2026-07-01) or instant (2026-07-01 13:00).")
    end: Moment = Field(alias="to", description="Last day off (included), or the instant the agent is back.")
    note: str = Field("", description="Shown in explanations, e.g. 'holiday'.")

    @model_validator(mode="after")
    def _ordered(self) -> OutOfOfficeSpec:
        if _as_naive(self.end, end=True) <= _as_naive(self.start, end=False):
            raise ValueError(f"out_of_office ends ({self.end}) before it starts ({self.start})")
        return self

    def interval(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The absence as a UTC interval [start, end), local dates and naive times read in `zone`."""
        return _instant(self.start, zone, end=False), _instant(self.end, zone, end=True)


def _as_naive(value: date | datetime, *, end: bool) -> datetime:
    """A comparable wall-clock reading (for the order check only)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
    return datetime.combine(value + timedelta(days=1) if end else value, time())


def _instant(value: date | datetime, zone: ZoneInfo, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=zone)
        return aware.astimezone(UTC)
    day = value + timedelta(days=1) if end else value  # a whole last day ends at the next local midnight
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


class CapacitySpec(Strict):
    """Most open tickets an agent may hold: in total and, optionally, per priority."""

    total: int | None = Field(None, ge=0)
    urgent: int | None = Field(None, ge=0)
    high: int | None = Field(None, ge=0)
    normal: int | None = Field(None, ge=0)
    low: int | None = Field(None, ge=0)

    def full(self, counts: Mapping[Priority, int], priority: Priority) -> str | None:
        """Which limit a new ticket of `priority` would break ("urgent 3/3"), or None."""
        total = sum(counts.values())
        if self.total is not None and total >= self.total:
            return f"total {total}/{self.total}"
        limit = getattr(self, priority.value)
        if limit is not None and counts.get(priority, 0) >= limit:
            return f"{priority.value} {counts.get(priority, 0)}/{limit}"
        return None


def _skills(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Skills = Annotated[list[str], BeforeValidator(_skills)]


class AgentSpec(Strict):
    """One agent's skills, capacity, shift and absences, keyed by email in `agents:`."""

    skills: Skills = Field(default_factory=list, description="e.g. [french, billing, enterprise].")
    capacity: CapacitySpec | None = Field(None, description="Max open tickets: {total: 20, urgent: 3}; a number "
                                                            "is the total.")
    shift: str | ShiftSpec | None = Field(None, description="A name under `shifts:`, '24x7', or inline hours; "
                                                           "omit for the team's shift.")
    timezone: str | None = Field(None, description="The agent's IANA zone (shifts without one, absence dates).")
    out_of_office: list[OutOfOfficeSpec] = Field(default_factory=list)

    @field_validator("capacity", mode="before")
    @classmethod
    def _total(cls, value: Any) -> Any:
        return {"total": value} if isinstance(value, int) and not isinstance(value, bool) else value

    _zone = field_validator("timezone")(_zone_name)


@dataclass(frozen=True, slots=True)
class Absence:
    """An out-of-office interval in UTC, [start, end)."""

    start: datetime
    end: datetime
    note: str = ""


@dataclass(frozen=True)
class Schedule:
    """When one agent is on duty: a shift calendar (None = always) minus absences."""

    shift: str
    calendar: Calendar | None
    zone: ZoneInfo
    absences: tuple[Absence, ...] = ()

    def absence(self, at: datetime) -> Absence | None:
        """The absence covering `at`, if any."""
        return next((a for a in self.absences if a.start <= at < a.end), None)

    def on_shift(self, at: datetime) -> bool:
        """True when `at` is inside the shift's hours (absences aside)."""
        return self.calendar is None or self.calendar.is_open(at)

    def on_duty(self, at: datetime) -> bool:
        """On shift and not out of office."""
        return self.absence(at) is None and self.on_shift(at)

    def off_duty_reason(self, at: datetime) -> str | None:
        """Why the agent is not on duty at `at` ("out of office until ...", "off shift ..."), or None."""
        away = self.absence(at)
        if away is not None:
            note = f" ({away.note})" if away.note else ""
            return f"out of office{note} until {self._local(away.end)}"
        if not self.on_shift(at):
            back = self.next_change(at)
            return f"off shift ({self.shift}; back {self._local(back)})" if back else f"off shift ({self.shift})"
        return None

    def next_change(self, at: datetime) -> datetime | None:
        """The first instant after `at` at which `on_duty` flips; None when it never will."""
        now_on = self.on_duty(at)
        cursor = at
        for _ in range(_MAX_STEPS):
            candidates = [a.start for a in self.absences if a.start > cursor]
            candidates += [a.end for a in self.absences if a.end > cursor]
            if self.calendar is not None:
                flip = self.calendar.next_change(cursor)
                if flip is not None:
                    candidates.append(flip)
            if not candidates:
                return None
            cursor = min(candidates)
            if self.on_duty(cursor) != now_on:
                return cursor
        return cursor  # pragma: no cover - a re-check then is harmless

    def _local(self, at: datetime) -> str:
        zone = self.calendar.timezone if self.calendar is not None else self.zone
        local = at.astimezone(zone)
        return f"{local:%a %Y-%m-%d %H:%M} {zone.key}"


class PriorityWeights(Strict):
    """How much one open ticket of each priority weighs in least-loaded choices."""

    urgent: float = Field(4, ge=0)
    high: float = Field(2, ge=0)
    normal: float = Field(1, ge=0)
    low: float = Field(0.5, ge=0)

    def load(self, counts: Mapping[Priority, int]) -> float:
        """The weighted workload of these open-ticket counts."""
        return sum(getattr(self, p.value) * n for p, n in counts.items())


def _positive_duration(value: Any) -> timedelta:
    delta = parse_duration(value)  # DurationError is a ValueError: pydantic reports it at the key
    if delta <= timedelta(0):
        raise ValueError(f"{value!r} must be longer than zero")
    return delta


class PingPongSpec(Strict):
    """At most `max` deskbot assignments of one ticket within `within`."""

    max: int = Field(3, ge=1, description="Assignments by deskbot allowed within the window.")
    within: Annotated[timedelta, BeforeValidator(_positive_duration)] = Field(
        timedelta(hours=24), description="The sliding window, e.g. 24h.")


class SkillsFromSpec(Strict):
    """Skills a ticket requires, read from its tags and custom fields."""

    tags: dict[str, Skills] = Field(default_factory=dict, description="tag -> skill(s), e.g. {fr: french}.")
    custom: dict[str, dict[str, Skills]] = Field(
        default_factory=dict, description="custom field -> value -> skill(s), e.g. {plan: {enterprise: vip}}.")


OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD)


class AssignmentSpec(Strict):
    """The `assignment:` section: load weights, ping-pong guard and required-skill mappings."""

    priority_weights: PriorityWeights = Field(default_factory=PriorityWeights)
    ping_pong: PingPongSpec | None = Field(default_factory=PingPongSpec, description="null turns the guard off.")
    skills_from: SkillsFromSpec = Field(default_factory=SkillsFromSpec)
    open_statuses: list[Status] = Field(default_factory=lambda: list(OPEN_STATUSES), min_length=1,
                                        description="Statuses that count as an agent's open workload.")
    respect_availability: bool = Field(True, description="Pass over agents the helpdesk marks unavailable.")


@dataclass
class Roster:
    """The rules file's `agents:`, `shifts:`, `assignment:` and teams, ready for decisions."""

    agents: Mapping[str, AgentSpec]  # casefolded email or name -> settings
    shifts: Mapping[str, ShiftSpec]
    settings: AssignmentSpec
    teams: Mapping[str, Any]  # name -> TeamSpec (group, members, timezone and, optionally, shift)
    _built: dict[tuple[str, str], Calendar | None] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, agents: Mapping[str, AgentSpec] | None = None, shifts: Mapping[str, ShiftSpec] | None = None,
              settings: AssignmentSpec | None = None, teams: Mapping[str, Any] | None = None) -> Roster:
        """A roster from the sections (any may be absent)."""
        folded = {key.casefold(): spec for key, spec in (agents or {}).items()}
        return cls(folded, dict(shifts or {}), settings or AssignmentSpec(), dict(teams or {}))

    @classmethod
    def from_spec(cls, spec: Any) -> Roster:
        """A roster from a rules file (`ConfigSpec`) with optional agents/shifts/assignment sections."""
        return cls.build(getattr(spec, "agents", None), getattr(spec, "shifts", None),
                         getattr(spec, "assignment", None), getattr(spec, "teams", None))

    def key(self, email: str | None, name: str | None) -> str | None:
        """How `agents:` knows this agent: the email, else the name; the email when neither is listed."""
        for candidate in (email, name):
            if candidate and candidate.casefold() in self.agents:
                return candidate
        return email or name

    def profile(self, email: str | None, name: str | None = None) -> AgentSpec | None:
        """The agent's settings, by email and then by name."""
        key = self.key(email, name)
        return self.agents.get(key.casefold()) if key else None

    def team_of(self, agent: str, group: str | None = None) -> str | None:
        """The team whose shift applies: one working `group` that lists the agent, else the first listing it."""
        wanted = agent.casefold()
        listing = [name for name, team in self.teams.items()
                   if wanted in {m.casefold() for m in getattr(team, "members", ())}]
        folded = (group or "").casefold()
        chosen = [n for n in listing if str(getattr(self.teams[n], "group", "")).casefold() == folded]
        return (chosen or listing or [None])[0]

    def schedule(self, agent: str, team: str | None = None) -> Schedule:
        """The schedule of `agent` (email or name) when working for `team` (None: no team context)."""
        spec = self.agents.get(agent.casefold())
        team_spec = self.teams.get(team) if team is not None else None
        shift = spec.shift if spec is not None and spec.shift is not None else getattr(team_spec, "shift", None)
        agent_zone = spec.timezone if spec is not None else None
        zone = load_zone(agent_zone or getattr(team_spec, "timezone", None) or "UTC")
        shift_name, calendar = self._calendar(shift, zone, agent)
        own_zone = calendar.timezone if calendar is not None else zone
        absence_zone = load_zone(agent_zone) if agent_zone else own_zone
        absences = () if spec is None else tuple(sorted(
            (Absence(*o.interval(absence_zone), o.note) for o in spec.out_of_office), key=lambda a: (a.start, a.end)))
        return Schedule(shift_name, calendar, own_zone, absences)

    def _calendar(self, shift: str | ShiftSpec | None, zone: ZoneInfo, agent: str) -> tuple[str, Calendar | None]:
        if shift is None or shift == ALWAYS:
            return ALWAYS, None
        if isinstance(shift, ShiftSpec):
            name, spec = f"{agent}'s shift", shift
        else:
            name, found = shift, self.shifts.get(shift)
            if found is None:
                raise ValueError(f"unknown shift '{shift}' (known: {', '.join([ALWAYS, *self.shifts])})")
            spec = found
        key = (name, zone.key)
        if key not in self._built:
            self._built[key] = spec.build(name, zone)
        return name, self._built[key]


_ROSTERS: dict[int, tuple[Any, Roster]] = {}


def roster_for(spec: Any) -> Roster:
    """The roster of a rules file, built once per loaded file."""
    cached = _ROSTERS.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    roster = Roster.from_spec(spec)
    if len(_ROSTERS) >= 8:  # hot reloads make new files; keep the few most recent
        _ROSTERS.pop(next(iter(_ROSTERS)))
    _ROSTERS[id(spec)] = (spec, roster)
    return roster


def roster_problems(spec: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-section mistakes as (location, message): unknown shift names, an agent listed twice."""
    import difflib

    shifts: Mapping[str, ShiftSpec] = getattr(spec, "shifts", None) or {}
    agents: Mapping[str, AgentSpec] = getattr(spec, "agents", None) or {}
    problems: list[tuple[tuple[Any, ...], str]] = []
    if ALWAYS in shifts:
        problems.append((("shifts", ALWAYS), f"'{ALWAYS}' is built in (always on shift); use another name"))
    uses = [(("agents", key, "shift"), a.shift) for key, a in agents.items() if isinstance(a.shift, str)]
    uses += [(("teams", name, "shift"), getattr(team, "shift", None))
             for name, team in (getattr(spec, "teams", None) or {}).items()]
    known = [ALWAYS, *(name for name in shifts if name != ALWAYS)]
    for where, name in uses:
        if name is not None and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"
            problems.append((where, f"unknown shift '{name}'{hint}"))
    seen: dict[str, str] = {}
    for key in agents:
        if key.casefold() in seen:
            problems.append((("agents", key), f"'{key}' is listed twice (also as '{seen[key.casefold()]}')"))
        seen.setdefault(key.casefold(), key)
    return problems
