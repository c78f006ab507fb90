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

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.calendar import Calendar, from_us, to_us
from bot.model import Ticket
from bot.rules.fields import Field, Kind, register_prefix
from bot.rules.operators import suggest
from bot.sla import (
    TARGETS,
    TICK,
    Clock,
    ClockReader,
    Reading,
    SlaPolicySpec,
    build_calendars,
    percent_mark,
    sla_problems,
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


class SlaBinding:
    """One rules file's policies and built calendars, with a one-entry memo of the last ticket's readings.

    Every SLA leaf of every rule asks for the same ticket at the same instant in turn (conditions, then
    next-change announcements), so the clocks are computed once per ticket and evaluation. The memo is
    one tuple, `last` = (ticket, now, readings, now in µs), replaced whole: compiled conditions check
    it inline, and a reader never sees one ticket's readings beside another ticket's key.
    """

    __slots__ = ("_clocks", "announcers", "calendars", "fields", "last", "policies", "reader")

    def __init__(self, policies: tuple[SlaPolicySpec, ...], calendars: Mapping[str, Calendar]) -> None:
        self.policies, self.calendars = policies, calendars
        self.reader = ClockReader(policies, calendars)
        self.last: tuple[Ticket | None, datetime | None, dict[str, Reading], int] = (None, None, {}, 0)
        self._clocks: tuple[dict[str, Reading] | None, dict[str, Clock]] = (None, {})
        self.fields: dict[str, Field] = {}  # one Field per name, shared by every leaf of the file
        self.announcers: dict[str, Callable[..., Any]] = {}  # per target: `Field.announce_many`

    def readings(self, ticket: Ticket, now: datetime) -> dict[str, Reading]:
        """The ticket's clock readings at `now`."""
        return self.memo(ticket, now)[2]

    def memo(self, ticket: Ticket, now: datetime) -> tuple[Ticket, datetime, dict[str, Reading], int]:
        """`last` for this ticket and instant, read now if it is another's."""
        last = self.last
        if last[0] is ticket and last[1] == now:
            return last  # type: ignore[return-value]
        now_us = last[3] if last[1] == now else to_us(now)
        self.last = last = (ticket, now, self.reader.read(ticket, now, now_us), now_us)
        return last

    def clocks(self, ticket: Ticket, now: datetime) -> dict[str, Clock]:
        """The ticket's clocks at `now` (rules evaluated in one pass share one computation)."""
        found = self.readings(ticket, now)
        source, built = self._clocks
        if source is not found:
            built = {target: reading.clock() for target, reading in found.items()}
            self._clocks = (found, built)
        return built

    def running(self, ticket: Ticket, now: datetime, target: str) -> Reading | None:
        """The target's reading when time moves it (not stopped, not paused), else None."""
        reading = self.readings(ticket, now).get(target)
        if reading is None or reading.stopped_at is not None or reading.paused:
            return None
        return reading


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
    """The field `name` (`sla.first_reply.remaining`, `sla.next_due`, ...) bound to a rules file."""
    if name not in NAMES:
        raise ValueError(f"unknown SLA field '{name}'{suggest(name, list(NAMES))}")
    binding = bind(context)
    field = binding.fields.get(name)
    if field is None:
        field = binding.fields[name] = _build(name, binding)
    return field


def _build(name: str, binding: SlaBinding) -> Field:
    if name == f"{PREFIX}next_due":
        return _next_due_field(name, binding)
    target, measure = name.removeprefix(PREFIX).split(".")
    doc, example = (text.format(t=target.replace("_", " "), n=name) for text in _DOCS[measure])
    kind, announces = _MEASURES[measure]
    plans: dict[tuple[str, Any], tuple[bool, tuple[tuple[int, int, int], ...], bool]] = {}

    def next_change(ticket: Ticket, now: datetime, operator: str, const: Any) -> datetime | None:
        reading = binding.running(ticket, now, target)
        if reading is None:
            return None
        now_us = binding.memo(ticket, now)[3]
        try:
            plan = plans[(operator, const)]
        except KeyError:
            plan = plans[(operator, const)] = _announcement(measure, operator, const)
        except TypeError:  # an unhashable constant
            plan = _announcement(measure, operator, const)
        at = reading.next_change(now_us, *plan)
        return None if at is None else from_us(at)

    announcer = binding.announcers.get(target)
    if announcer is None:
        announcer = binding.announcers[target] = _announcer(binding, target)

    def code(name_of: Callable[[Any], str]) -> str:
        b, found = name_of(binding), name_of(target)
        readings = f"(_q[2] if (_q := {b}.last)[0] is t and _q[1] is now else {b}.readings(t, now))"
        return _CODE[measure].format(r=f"(_r := {readings}.get({found}))", from_us=name_of(from_us))

    return Field(name, kind, doc, example, _getter(binding, target, measure),
                 next_change=next_change if announces else None, announce_many=announcer if announces else None,
                 shorthand=_SHORTHAND.get(measure), code=code, slow=True)


# Each measure as an expression over a target's reading `{r}` (assigned to `_r`), as `_getter` reads it.
_CODE = {
    "elapsed": "(None if {r} is None else _r.percent)",
    "breached": "(False if {r} is None else _r.breached)",
    "running": "(False if {r} is None else _r.stopped_at is None)",
    "remaining": "(None if {r} is None else timedelta(microseconds=_r.goal - _r.elapsed))",
    "breached_for": "(timedelta(microseconds=max(0, _r.elapsed - _r.goal)) if {r} is not None and _r.breached "
                    "else None)",
    "deadline": "(None if {r} is None or _r.deadline is None else {from_us}(_r.deadline))",
}


def _announcer(binding: SlaBinding, target: str) -> Callable[[Sequence[tuple[str, str, Any]]],
                                                             Callable[[Ticket, datetime], int | None]]:
    """`Field.announce_many` of one target's measures: their comparisons merged into one question."""

    def prepare(comparisons: Sequence[tuple[str, str, Any]]) -> Callable[[Ticket, datetime], int | None]:
        breach, marks = False, set()
        for name, operator, const in comparisons:
            waits_for_breach, found, after = _announcement(name.rsplit(".", 1)[1], operator, const)
            breach = breach or waits_for_breach
            marks.update((scale, add, divisor, after) for scale, add, divisor in found)
        by_goal: dict[tuple[int, bool], tuple[int, ...]] = {}

        def crossings(goal: int, own: bool) -> tuple[int, ...]:
            """Every elapsed time at which a comparison flips, for this goal, sorted: per mark, where it is
            reached and where it is passed (only passed for `>`-like tests), as in Reading.next_change;
            for deskbot's own clocks the breach too, where the elapsed time reaches the goal."""
            found = {goal} if own and breach else set()
            for scale, add, divisor, after in marks:
                numerator = goal * scale + add
                found.add(numerator // divisor + 1)
                if not after:
                    found.add(-(-numerator // divisor))
            if len(by_goal) >= 256:  # goals come from priorities, or a helpdesk's own deadlines
                by_goal.clear()
            by_goal[(goal, own)] = ordered = tuple(sorted(found))
            return ordered

        def earliest(ticket: Ticket, now: datetime) -> int | None:
            """A clock reaches a larger elapsed time no earlier, so the earliest change is the first
            crossing still ahead (one calendar lookup), or a helpdesk's own deadline when sooner
            (epoch microseconds)."""
            last = binding.last
            if last[0] is not ticket or last[1] is not now:
                last = binding.memo(ticket, now)
            reading = last[2].get(target)
            if reading is None or reading.stopped_at is not None or reading.paused:
                return None  # time does not move this clock
            now_us = last[3]
            own = reading.source == "deskbot"
            best = None
            if breach and not own:
                deadline = reading.deadline
                best = deadline if deadline is not None and deadline > now_us else None
            goal = reading.goal
            ahead = by_goal.get((goal, own)) or crossings(goal, own)
            i = bisect_right(ahead, reading.elapsed)
            if i < len(ahead):
                timeline = reading.timeline
                if timeline.pauses_us:
                    instant = timeline.instant_us(ahead[i])
                else:  # Timeline.instant_us without pauses, inline
                    calendar = timeline.calendar
                    instant = calendar.add_us(timeline.start_us, ahead[i]) if calendar else timeline.start_us + ahead[i]
                if instant is not None and instant > now_us and (best is None or instant < best):
                    best = instant
            return best

        return earliest

    return prepare


def _getter(binding: SlaBinding, target: str, measure: str) -> Callable[[Ticket, datetime], Any]:
    """The reading of one measure (the reference of `_CODE`; explanations and templates call it)."""

    def reading(ticket: Ticket, now: datetime) -> Reading | None:
        return binding.readings(ticket, now).get(target)

    if measure == "elapsed":
        def getter(ticket: Ticket, now: datetime) -> Any:
            r = reading(ticket, now)
            return None if r is None else r.percent
    elif measure == "breached":
        def getter(ticket: Ticket, now: datetime) -> Any:
            r = reading(ticket, now)
            return False if r is None else r.breached
    elif measure == "running":
        def getter(ticket: Ticket, now: datetime) -> Any:
            r = reading(ticket, now)
            return False if r is None else r.stopped_at is None
    elif measure == "remaining":
        def getter(ticket: Ticket, now: datetime) -> Any:
            r = reading(ticket, now)
            return None if r is None else timedelta(microseconds=r.goal - r.elapsed)
    elif measure == "breached_for":
        def getter(ticket: Ticket, now: datetime) -> Any:
            r = reading(ticket, now)
            return timedelta(microseconds=max(0, r.elapsed - r.goal)) if r is not None and r.breached else None
    else:  # deadline
        def getter(ticket: Ticket, now: datetime) -> Any:
            r = reading(ticket, now)
            return None if r is None or r.deadline is None else from_us(r.deadline)
    return getter


def _next_due_field(name: str, binding: SlaBinding) -> Field:
    def due(ticket: Ticket, now: datetime) -> list[Reading]:
        return [r for r in binding.readings(ticket, now).values()
                if r.stopped_at is None and not r.paused and not r.breached and r.deadline is not None]

    def getter(ticket: Ticket, now: datetime) -> str | None:
        found = due(ticket, now)
        return min(found, key=lambda r: (r.deadline, TARGETS.index(r.target))).target if found else None

    def next_change(ticket: Ticket, now: datetime, operator: str, const: Any) -> datetime | None:
        now_us = binding.memo(ticket, now)[3]
        at = min((r.deadline for r in due(ticket, now)), default=None)  # type: ignore[type-var]
        return from_us(at) if at is not None and at > now_us else None

    return Field(name, Kind.CHOICE, "Which target (first_reply, next_reply, resolution) is due soonest among "
                 "running, unbreached clocks; empty when none is.", f"{name}: first_reply", getter,
                 choices=TARGETS, next_change=next_change)


def _constants(const: Any) -> Iterable[Any]:
    if isinstance(const, frozenset | set | list | tuple):
        return const
    return (const,)


# A comparison flips when the clock first *passes* its threshold for `>` on a growing value (elapsed,
# breached_for) and for `<` on a shrinking one (remaining); when it *reaches* it for `>=`/`<`; eq/ne both.
_PASSES_GROWING = ("gt", "lte")
_PASSES_SHRINKING = ("lt", "gte")


def _announcement(measure: str, operator: str, const: Any) -> tuple[bool, tuple[tuple[int, int, int], ...], bool]:
    """What a comparison waits for, once per (operator, constant): (the breach?, marks, strictly past?).

    Marks are `Reading.next_change`'s: elapsed time as (goal * scale + add) / divisor microseconds.
    """
    consts = list(_constants(const))
    durations = [c // TICK for c in consts if isinstance(c, timedelta)]
    if measure == "remaining":  # crossed when elapsed reaches goal - threshold
        return False, tuple((1, -d, 1) for d in durations), operator in _PASSES_SHRINKING
    if measure == "elapsed":
        numbers = [c for c in consts if isinstance(c, int | float) and not isinstance(c, bool)]
        return False, tuple(percent_mark(c) for c in numbers), operator in _PASSES_GROWING
    if measure == "breached_for":  # the breach itself too: empty becomes 0
        return True, tuple((1, d, 1) for d in durations), operator in _PASSES_GROWING
    return True, (), False  # breached


_MEASURES: dict[str, tuple[Kind, bool]] = {  # the kind of value, and whether time alone changes it
    "remaining": (Kind.DURATION, True),
    "elapsed": (Kind.NUMBER, True),
    "breached": (Kind.BOOL, True),
    "breached_for": (Kind.DURATION, True),
    "deadline": (Kind.ANY, False),
    "running": (Kind.BOOL, False),
}

#: A bare value reads as a threshold: `elapsed: 75%` = at least 75%, `remaining: 30m` = 30m or less left,
#: `breached_for: 1h` = breached for at least an hour.
_SHORTHAND = {"elapsed": "gte", "remaining": "lte", "breached_for": "gte"}

register_prefix(PREFIX, sla_field)
