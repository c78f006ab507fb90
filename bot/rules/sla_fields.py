"""SLA clock fields for conditions and templates: `sla.<target>.<measure>` and `sla.next_due`.

    when:
      all:
        - sla.first_reply.elapsed: {at_least: 75}      # percent of the target used
        - sla.first_reply.breached: false
    ...
    message: "First reply due in {{ sla.first_reply.remaining }} ({{ sla.first_reply.deadline }})"

Targets are `first_reply`, `next_reply` and `resolution`; measures are
`remaining`, `elapsed`, `breached`, `breached_for` and `deadline`. The family
binds the rules file's `calendars:` and `sla_policies:` once, when the file is
compiled; each field reads the ticket's clocks (`bot.sla.clocks`) under the
first policy that covers it, and announces the next instant at which time alone
could flip a comparison, so the engine re-checks a ticket exactly then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.calendar import Calendar
from bot.model import Ticket
from bot.rules.fields import Field, Kind, register_prefix
from bot.rules.operators import suggest
from bot.sla import (
    TARGETS,
    Clock,
    SlaPolicySpec,
    build_calendars,
    next_change_at,
    next_due,
    next_due_change_at,
    sla_problems,
    ticket_clocks,
)

PREFIX = "sla."
MEASURES = ("remaining", "elapsed", "breached", "breached_for", "deadline", "running")
NAMES = (*(f"{PREFIX}{t}.{m}" for t in TARGETS for m in MEASURES), f"{PREFIX}next_due")
_DOCS = {
    "remaining": ("Time left before the {t} target breaches, in the policy's time base; negative once "
                  "breached, empty when no clock runs.", "{n}: {{under: 1h}}"),
    "elapsed": ("Percent of the {t} target used so far (75 = three quarters); over 100 once breached.",
                "{n}: {{at_least: 75}}"),
    "breached": ("True when the {t} target is breached (false when the ticket has no such clock).",
                 "{n}: true"),
    "breached_for": ("How long the {t} target has been breached, in the policy's time base "
                     "(empty when it is not).", "{n}: {{over: 2h}}"),
    "deadline": ("When the {t} target breaches (UTC; empty while paused with time left). For messages.",
                 '"due {{{{ {n} }}}}"'),
    "running": ("True while the {t} clock runs or is paused, false once it stopped (target met, solved) "
                "or when the ticket has no such clock.", "{n}: true"),
}


@dataclass
class SlaBinding:
    """One rules file's policies and built calendars, with a one-entry memo of the last clocks read."""

    policies: tuple[SlaPolicySpec, ...]
    calendars: Mapping[str, Calendar]
    _last: tuple[Ticket | None, datetime | None, dict[str, Clock]] = field(default=(None, None, {}), repr=False)

    def clocks(self, ticket: Ticket, now: datetime) -> dict[str, Clock]:
        """The ticket's clocks at `now` (rules evaluated in one pass share one computation)."""
        last_ticket, last_now, found = self._last
        if last_ticket is ticket and last_now == now:
            return found
        found = ticket_clocks(ticket, now, self.policies, self.calendars)
        self._last = (ticket, now, found)
        return found


_BINDINGS: dict[int, tuple[Any, SlaBinding]] = {}


def bind(context: Any) -> SlaBinding:
    """The binding for a rules file (built once per file); ValueError when it has no SLA policies."""
    cached = _BINDINGS.get(id(context))
    if cached is not None and cached[0] is context:
        return cached[1]
    policies = tuple(getattr(context, "sla_policies", None) or ())
    if not policies:
        raise ValueError("SLA fields need a policy: add an `sla_policies:` section (see docs/sla.md)")
    specs = getattr(context, "calendars", None) or {}
    mistakes = sla_problems(specs, policies)  # normally refused earlier, where the file is loaded
    if mistakes:
        raise ValueError(f"SLA fields cannot bind: {mistakes[0][1]}")
    binding = SlaBinding(policies, build_calendars(specs))
    if len(_BINDINGS) >= 8:  # hot reloads make new files; keep the few most recent
        _BINDINGS.pop(next(iter(_BINDINGS)))
    _BINDINGS[id(context)] = (context, binding)
    return binding


def sla_field(name: str, context: Any) -> Field:
    """Build the field `name` (`sla.first_reply.remaining`, `sla.next_due`, ...) bound to a rules file."""
    if name not in NAMES:
        raise ValueError(f"unknown SLA field '{name}'{suggest(name, list(NAMES))}")
    binding = bind(context)
    if name == f"{PREFIX}next_due":
        return _next_due_field(name, binding)
    target, measure = name.removeprefix(PREFIX).split(".")
    doc, example = (text.format(t=target.replace("_", " "), n=name) for text in _DOCS[measure])
    read, kind, announce = _MEASURES[measure]

    def getter(ticket: Ticket, now: datetime) -> Any:
        clock = binding.clocks(ticket, now).get(target)
        return read(clock) if clock is not None else (False if measure in ("breached", "running") else None)

    def next_change(ticket: Ticket, now: datetime, operator: str, const: Any) -> datetime | None:
        clock = binding.clocks(ticket, now).get(target)
        if clock is None or not clock.running or announce is None:
            return None
        return announce(clock, now, list(_constants(const)), operator)

    return Field(name, kind, doc, example, getter, next_change=next_change if announce else None,
                 shorthand=_SHORTHAND.get(measure))


def _next_due_field(name: str, binding: SlaBinding) -> Field:
    def getter(ticket: Ticket, now: datetime) -> str | None:
        return next_due(binding.clocks(ticket, now))

    def next_change(ticket: Ticket, now: datetime, operator: str, const: Any) -> datetime | None:
        at = next_due_change_at(binding.clocks(ticket, now))
        return at if at is not None and at > now else None

    return Field(name, Kind.CHOICE, "Which target (first_reply, next_reply, resolution) is due soonest among "
                 "running, unbreached clocks; empty when none is.", f"{name}: first_reply", getter,
                 choices=TARGETS, next_change=next_change)


def _constants(const: Any) -> Iterable[Any]:
    if isinstance(const, frozenset | set | list | tuple):
        return const
    return (const,)


def _earliest(instants: Iterable[datetime | None]) -> datetime | None:
    return min((at for at in instants if at is not None), default=None)


# A comparison flips when the clock first *passes* its threshold for `>` on a growing value (elapsed,
# breached_for) and for `<` on a shrinking one (remaining); when it *reaches* it for `>=`/`<`; eq/ne both.
_PASSES_GROWING = ("gt", "lte")
_PASSES_SHRINKING = ("lt", "gte")


def _remaining_changes(clock: Clock, now: datetime, consts: list[Any], operator: str) -> datetime | None:
    after = operator in _PASSES_SHRINKING
    durations = [c for c in consts if isinstance(c, timedelta)]
    return _earliest(next_change_at(clock, now, remaining=c, after=after) for c in durations)


def _elapsed_changes(clock: Clock, now: datetime, consts: list[Any], operator: str) -> datetime | None:
    after = operator in _PASSES_GROWING
    numbers = [c for c in consts if isinstance(c, int | float) and not isinstance(c, bool)]
    return _earliest(next_change_at(clock, now, percent=c, after=after) for c in numbers)


def _breach_changes(clock: Clock, now: datetime, consts: list[Any], operator: str) -> datetime | None:
    return next_change_at(clock, now)


def _breached_for_changes(clock: Clock, now: datetime, consts: list[Any], operator: str) -> datetime | None:
    after = operator in _PASSES_GROWING
    durations = [c for c in consts if isinstance(c, timedelta)]  # plus the breach: empty becomes 0
    return _earliest([next_change_at(clock, now),
                      *(next_change_at(clock, now, breached_for=c, after=after) for c in durations)])


Announce = Callable[[Clock, datetime, list[Any], str], "datetime | None"]
_MEASURES: dict[str, tuple[Callable[[Clock], Any], Kind, Announce | None]] = {
    "remaining": (lambda c: c.remaining, Kind.DURATION, _remaining_changes),
    "elapsed": (lambda c: c.elapsed_percent, Kind.NUMBER, _elapsed_changes),
    "breached": (lambda c: c.breached, Kind.BOOL, _breach_changes),
    "breached_for": (lambda c: c.breached_for if c.breached else None, Kind.DURATION, _breached_for_changes),
    "deadline": (lambda c: c.deadline, Kind.ANY, None),
    "running": (lambda c: not c.stopped, Kind.BOOL, None),
}

#: A bare value reads as a threshold: `elapsed: 75%` = at least 75%, `remaining: 30m` = 30m or less left,
#: `breached_for: 1h` = breached for at least an hour.
_SHORTHAND = {"elapsed": "gte", "remaining": "lte", "breached_for": "gte"}

register_prefix(PREFIX, sla_field)
