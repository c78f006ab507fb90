"""Condition fields about the assignee's duty: `assignee.on_shift` and `assignee.out_of_office`.

    - name: urgent tickets follow the shift
      when:
        all:
          - priority: urgent
          - status: {in: [new, open]}
          - assignee.on_shift: false        # off shift or out of office right now
      then:
        - assign: {team: billing, strategy: least_loaded, fallback: notify}

The family binds the rules file's `agents:`, `shifts:` and teams once, when the
file is compiled (`fields.resolve` hands prefix families the `ConfigSpec`).
The assignee is found by email (else name) under `agents:`; the team whose
group the ticket is in and that lists the agent supplies the shift and time
zone when the agent has none. An unassigned ticket reads as empty (neither true
nor false). Each field announces the next instant its value flips (a shift
starts or ends, an absence starts or ends), so the engine re-checks the ticket
exactly then and no sooner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.model import Ticket
from bot.rules.fields import Field, Kind, register_prefix
from bot.rules.operators import suggest
from bot.shifts import Roster, Schedule, roster_for

PREFIX = "assignee."
ON_SHIFT = f"{PREFIX}on_shift"
OUT_OF_OFFICE = f"{PREFIX}out_of_office"
NAMES = (ON_SHIFT, OUT_OF_OFFICE)
#: The issue's spelling; resolves to `assignee.on_shift` once the engine can bind plain names (see docs).
PLAIN_NAMES = {"assignee_on_shift": ON_SHIFT}


def assignee_field(name: str, context: Any) -> Field:
    """Build `assignee.on_shift` or `assignee.out_of_office` bound to a rules file; ValueError otherwise."""
    wanted = PLAIN_NAMES.get(name, name)
    if wanted not in NAMES:
        raise ValueError(f"unknown assignee field '{name}'{suggest(name, list(NAMES))}")
    roster = roster_for(context)
    if not roster.agents and not any(getattr(team, "shift", None) for team in roster.teams.values()):
        raise ValueError(f"'{name}' needs working times: list agents under `agents:` with a `shift` or "
                         "`out_of_office`, or give a team a `shift` (see docs/assignment.md)")
    if wanted == ON_SHIFT:
        return Field(name, Kind.BOOL, "True while the ticket's assignee is on shift and not out of office "
                     "(empty when unassigned).", f"{name}: false", _getter(roster, Schedule.on_duty),
                     next_change=_announce(roster, Schedule.next_change))
    return Field(name, Kind.BOOL, "True while the ticket's assignee is out of office (empty when unassigned).",
                 f"{name}: true", _getter(roster, lambda s, at: s.absence(at) is not None),
                 next_change=_announce(roster, _next_absence_change))


def _schedule(roster: Roster, ticket: Ticket) -> Schedule | None:
    """The assignee's schedule for the ticket's team, or None when the ticket has no assignee."""
    if ticket.assignee_id is None and not ticket.assignee_email and not ticket.assignee:
        return None
    agent = roster.key(ticket.assignee_email, ticket.assignee)
    if agent is None:
        return None
    return roster.schedule(agent, roster.team_of(agent, ticket.group))


def _getter(roster: Roster, read: Any) -> Any:
    def getter(ticket: Ticket, now: datetime) -> bool | None:
        schedule = _schedule(roster, ticket)
        return None if schedule is None else bool(read(schedule, now))

    return getter


def _announce(roster: Roster, flip: Any) -> Any:
    def next_change(ticket: Ticket, now: datetime, operator: str, const: Any) -> datetime | None:
        schedule = _schedule(roster, ticket)
        return None if schedule is None else flip(schedule, now)

    return next_change


def _next_absence_change(schedule: Schedule, now: datetime) -> datetime | None:
    """The first absence boundary after `now` at which being away flips (touching absences merge)."""
    away = schedule.absence(now) is not None
    for boundary in sorted({b for a in schedule.absences for b in (a.start, a.end) if b > now}):
        if (schedule.absence(boundary) is not None) != away:
            return boundary
    return None


def register_fields() -> None:
    """Add the `assignee.` family to the field registry (idempotent)."""
    register_prefix(PREFIX, assignee_field)


register_fields()
