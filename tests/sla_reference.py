"""The plain SLA clock computation the fast one must equal: datetimes, one threshold at a time.

This is bot/sla.py's clock code as it was before clocks moved to epoch microseconds and compiled
policies (bot/sla.py keeps the helpers it still shares: `_span`, `_pauses`, `_clip`). Tests only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from fractions import Fraction
from math import ceil, floor
from typing import Any

from bot.calendar import Calendar
from bot.model import Ticket
from bot.sla import TARGETS, SlaPolicySpec, StatusChange, _clip, _pauses, _span

ZERO = timedelta(0)
TICK = timedelta(microseconds=1)


class Timeline:
    def __init__(self, started_at: datetime, pauses: tuple, calendar: Calendar | None) -> None:
        self.started_at, self.pauses, self.calendar = started_at, pauses, calendar

    def measure(self, start: datetime, end: datetime) -> timedelta:
        return self.calendar.between(start, end) if self.calendar else end - start

    def advance(self, start: datetime, amount: timedelta) -> datetime:
        return self.calendar.add(start, amount) if self.calendar else start + amount

    def elapsed_until(self, at: datetime) -> timedelta:
        at = max(at, self.started_at)
        paused = sum((self.measure(a, min(b or at, at)) for a, b in self.pauses if a < at), ZERO)
        return self.measure(self.started_at, at) - paused

    def instant_at(self, amount: timedelta) -> datetime | None:
        if amount < ZERO:
            return None
        cursor, left = self.started_at, amount
        for pause_start, pause_end in self.pauses:
            if pause_start > cursor:
                stretch = self.measure(cursor, pause_start)
                if left <= stretch:
                    return self.advance(cursor, left)
                left -= stretch
            if pause_end is None:
                return None
            cursor = max(cursor, pause_end)
        return self.advance(cursor, left)


def clocks(ticket: Ticket, now: datetime, policy: SlaPolicySpec, calendars: Mapping[str, Calendar],
           history: Sequence[StatusChange] | None = None) -> dict[str, dict[str, Any]]:
    """Each target's clock as a dict of what `bot.sla.Clock` holds (plus its timeline)."""
    calendar = calendars[policy.calendar]
    pauses = _pauses(ticket, now, set(policy.pause_when), history)
    result = {}
    resolved = (ticket.solved_at or ticket.status_changed_at or now) if ticket.status.is_resolved else None
    for target in TARGETS:
        span = _span(ticket, target, resolved)
        if span is None:
            continue
        started_at, stopped_at = span
        spec = getattr(policy.targets, target)
        platform_deadline = getattr(ticket.sla, f"{target}_due_at") if policy.source == "platform" else None
        goal = spec.goal(ticket.priority) if spec else None
        if platform_deadline is None and goal is None:
            continue
        business = spec.business_hours if spec else True
        base = calendar if business and not calendar.always_open else None
        own = _clip(pauses, started_at, stopped_at)
        if platform_deadline is not None:
            own = tuple(p for p in own if p[1] is None) if stopped_at is None else ()
        timeline = Timeline(started_at, own, base)
        if platform_deadline is not None:
            deadline = platform_deadline
            goal = timeline.measure(started_at, platform_deadline)
        else:
            deadline = timeline.instant_at(goal)
        ongoing = [a for a, b in timeline.pauses if b is None]
        frozen_at = stopped_at if stopped_at is not None else (ongoing[0] if ongoing else None)
        end = max(frozen_at or now, timeline.started_at)
        elapsed = timeline.elapsed_until(end)
        remaining = goal - elapsed
        breached = deadline is not None and (end > deadline if stopped_at is not None else end >= deadline)
        share = elapsed / goal if goal > ZERO else (1.0 if breached else 0.0)
        result[target] = dict(
            target=target, policy=policy.name, source="platform" if platform_deadline is not None else "deskbot",
            business_hours=business, started_at=started_at, goal=goal, deadline=deadline,
            paused=stopped_at is None and bool(ongoing), stopped=stopped_at is not None, stopped_at=stopped_at,
            elapsed=elapsed, remaining=remaining, elapsed_share=share, breached=breached,
            breached_for=max(ZERO, -remaining) if breached else ZERO, as_of=now, timeline=timeline)
    return result


def running(clock: dict[str, Any]) -> bool:
    return not (clock["stopped"] or clock["paused"])


def next_change_at(clock: dict[str, Any], now: datetime, *, breach: bool | None = None, percent: float | None = None,
                   remaining: timedelta | None = None, breached_for: timedelta | None = None,
                   after: bool = False) -> datetime | None:
    """`bot.sla.next_change_at` as it was: Fractions of microseconds, one threshold after another."""
    if not running(clock):
        return None
    if breach is None:
        breach = percent is None and remaining is None and breached_for is None
    deadline, timeline = clock["deadline"], clock["timeline"]
    candidates = [deadline] if breach and deadline is not None and deadline > now else []
    marks: list[Fraction] = []
    goal = clock["goal"] // TICK
    if percent is not None:
        marks.append(Fraction(percent) * goal / 100)
    if remaining is not None:
        marks.append(Fraction(goal - remaining // TICK))
    if breached_for is not None:
        marks.append(Fraction(goal + breached_for // TICK))
    elapsed_now = timeline.elapsed_until(now) // TICK
    for mark in marks:
        reached, passed = ceil(mark), floor(mark) + 1
        for target in (passed,) if after else (reached, passed):
            if elapsed_now < target:
                instant = timeline.instant_at(target * TICK)
                if instant is not None and instant > now:
                    candidates.append(instant)
                break
    return min(candidates, default=None)


_PASSES_GROWING = ("gt", "lte")
_PASSES_SHRINKING = ("lt", "gte")


def field_value(clock: dict[str, Any] | None, measure: str) -> Any:
    """What the field `sla.<target>.<measure>` read from the old Clock."""
    if clock is None:
        return False if measure in ("breached", "running") else None
    goal = clock["goal"]
    return {"remaining": clock["remaining"],
            "elapsed": (clock["elapsed"] * 100 / goal if goal > ZERO else 100.0 if clock["breached"] else 0.0),
            "breached": clock["breached"],
            "breached_for": clock["breached_for"] if clock["breached"] else None,
            "deadline": clock["deadline"], "running": not clock["stopped"]}[measure]


def field_next_change(clock: dict[str, Any] | None, measure: str, now: datetime, operator: str,
                      consts: list[Any]) -> datetime | None:
    """When the old field announced that `sla.<target>.<measure> <operator> <consts>` could flip."""
    if clock is None or not running(clock) or measure in ("deadline", "running"):
        return None
    durations = [c for c in consts if isinstance(c, timedelta)]
    found: list[datetime | None] = []
    if measure == "remaining":
        found = [next_change_at(clock, now, remaining=c, after=operator in _PASSES_SHRINKING) for c in durations]
    elif measure == "elapsed":
        numbers = [c for c in consts if isinstance(c, int | float) and not isinstance(c, bool)]
        found = [next_change_at(clock, now, percent=c, after=operator in _PASSES_GROWING) for c in numbers]
    elif measure == "breached":
        found = [next_change_at(clock, now)]
    elif measure == "breached_for":
        found = [next_change_at(clock, now), *(next_change_at(clock, now, breached_for=c,
                                                               after=operator in _PASSES_GROWING) for c in durations)]
    return min((at for at in found if at is not None), default=None)
