"""The pure rules engine: `plan(tickets, now, config, memory) -> Plan`.

No clock, no I/O: the same inputs always give the same plan. A rule fires on
the rising edge, when its condition becomes true for a ticket, once per
occurrence; `repeat: 4h` fires again while it stays true; `stop: true` makes
later rules skip a ticket in the pass where the rule acted on it. Rule order is file order. For every
ticket the plan also says when time alone could next change a verdict
(`Plan.next_check_at`), so the runner re-evaluates only changed or due tickets.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.calendar import from_us
from bot.model import Firing, Plan, PlannedAction, RuleMatch, Ticket
from bot.rules.actions import CompiledAction
from bot.rules.batch import compile_verdicts
from bot.rules.conditions import Condition, Leaf, Verdict
from bot.rules.templates import format_value

if TYPE_CHECKING:
    from bot.config import Config

Memory = Mapping[tuple[str, str], Firing]
_NO_MEMORY: Memory = {}
_NEXT_PASS = timedelta(microseconds=1)


@dataclass(frozen=True)
class CompiledRule:
    """A rule checked and compiled once when the file loads."""

    name: str
    description: str
    index: int
    condition: Condition
    actions: tuple[CompiledAction, ...]
    repeat: timedelta | None = None
    stop: bool = False
    enabled: bool = True

    @property
    def time_based(self) -> bool:
        """True when time alone can change whether this rule matches."""
        return bool(self.condition.time_leaves)


def plan(tickets: Iterable[Ticket], now: datetime, config: Config, memory: Memory = _NO_MEMORY) -> Plan:
    """Decide what every rule does to every ticket at `now`, given what already fired."""
    matches: list[RuleMatch] = []
    updates: dict[tuple[str, str], Firing] = {}
    next_check: dict[str, datetime] = {}
    rules = config.active_rules
    index = _index_for(rules)
    verdicts = index.verdicts
    tickets = tickets if isinstance(tickets, list | tuple) else list(tickets)
    remembered, stale = _by_ticket(memory, rules, index.position, len(tickets))
    fired_now: dict[int, Firing] = {}  # Firing is frozen: one per occurrence number serves every ticket
    wakers = index.wakers
    for ticket in tickets:
        key = ticket.key
        soonest: datetime | None = None
        held, still_open = verdicts(ticket, now)  # positions of rules that hold / time could flip, in file order
        entries = remembered(key)  # position -> Firing
        if entries:  # rules that do not hold still see their memory, to record a falling edge
            holds: Container[int] = set(held)
            if stale is None or key in stale:
                matching: Container[int] = {at for at, firing in entries.items() if firing.matching}
            else:
                matching = entries.keys()  # every remembered rule was matching
            if matching == holds:  # the same rules hold as before: no edge, only repeats can fire
                repeats = index.repeating
                visit: Iterable[int] = () if holds.isdisjoint(repeats) else sorted(holds & repeats)
            else:
                visit = sorted(entries.keys() | holds)
        else:
            visit = holds = held
        stopped = False
        for position in visit:
            before = entries.get(position) if entries else None
            if position in holds:
                rule = rules[position]
                if before is not None and before.matching:
                    if rule.repeat is None:
                        continue  # held before and still holds: nothing to do (so a `stop` did not act now)
                    fire = before.fired_at is not None and now - before.fired_at >= rule.repeat
                else:
                    fire = True
                if fire:
                    occurrence = (before.occurrence if before else 0) + 1
                    firing = fired_now.get(occurrence)
                    if firing is None:
                        firing = fired_now[occurrence] = Firing(True, occurrence, now)
                    updates[(rule.name, key)] = firing
                    matches.append(_match(rule, ticket, now, occurrence))
                    fired_at = now
                else:
                    fired_at = before.fired_at  # type: ignore[union-attr]
                if rule.repeat is not None and fired_at is not None:
                    due = fired_at + rule.repeat
                    if soonest is None or due < soonest:
                        soonest = due
                if rule.stop and fire:
                    # This rule acted on the ticket now: later rules wait for the next pass, due at once.
                    soonest = now + _NEXT_PASS
                    stopped = True
                    break
            elif before is not None and before.matching:
                updates[(rules[position].name, key)] = Firing(False, before.occurrence, before.fired_at)
        if not stopped and still_open:
            waker = wakers.get(tuple(still_open))  # `_Index.next_change`, inline
            if waker is None:
                waker = index.waker(tuple(still_open))
            at = waker.next_change(ticket, now)
            if at is not None and (soonest is None or at < soonest):
                soonest = at
        if soonest is not None:
            next_check[key] = soonest
    return Plan(tuple(matches), updates, next_check)


# ---- speed: what the plan loop precomputes per rules file -------------------------------------------
#
# The loop above gives the same plan as testing every rule on every ticket, one after the other, and
# asking every time-based rule for its next change, for less: (1) all conditions of the file are one
# generated function (`bot.rules.batch`) returning the rules that hold, where rules needing a field to
# equal some values are found by looking the ticket's value up, and any other rule that does not hold
# costs its cheapest failing leaf and no Python call (rules after a `stop` that acted are evaluated
# too, and ignored: conditions are pure); (2) memory is read per ticket, not per (rule, ticket) pair;
# (3) a ticket's next change is asked only of the rules time could still flip on it
# (the same function's second answer: an assigned ticket does not wake at the thresholds of an unassigned-ticket
# rule); tickets with the same open rules share one merged `_Waker`: each age's boundaries sorted together (one
# bisect per age), and fields that answer together (an SLA target's measures) asked one question.


class _Index:
    """Per rules file: every condition in one function, and what wakes a ticket per set of open rules."""

    def __init__(self, rules: tuple[CompiledRule, ...]):
        self.position = {rule.name: i for i, rule in enumerate(rules)}
        self.repeating = frozenset(i for i, rule in enumerate(rules) if rule.repeat is not None)
        self.verdicts = compile_verdicts([(i, rule.condition.root) for i, rule in enumerate(rules)])
        self.times = [_Thresholds(rule) for rule in rules]
        self.wakers: dict[tuple[int, ...], _Waker] = {}

    def next_change(self, ticket: Ticket, now: datetime, still_open: list[int]) -> datetime | None:
        """The earliest instant after `now` at which time alone could flip one of these rules' verdicts."""
        if not still_open:
            return None
        key = tuple(still_open)
        waker = self.wakers.get(key)
        if waker is None:
            waker = self.waker(key)
        return waker.next_change(ticket, now)

    def waker(self, key: tuple[int, ...]) -> _Waker:
        """The merged waker of one set of open rules, made once."""
        if len(self.wakers) >= _WAKERS:
            self.wakers.clear()
        waker = self.wakers[key] = _Waker([self.times[position] for position in key])
        return waker


_WAKERS = 4096  # distinct sets of open rules remembered per file; tickets alike share a few


class _Thresholds:
    """One rule's time leaves: (age start, boundary offsets), announcing leaves, leaves left as they are."""

    def __init__(self, rule: CompiledRule):
        self.ages: dict[Callable[[Ticket], datetime | None], set[timedelta]] = {}
        self.announcing: dict[object, Leaf] = {}
        self.unusual: list[Leaf] = []
        for leaf in rule.condition.time_leaves:
            field, const = leaf.field, leaf.test.const
            if field.next_change is not None:
                try:
                    key: object = (field.name, leaf.operator, const)
                    hash(key)
                except TypeError:
                    key = id(leaf)
                self.announcing.setdefault(key, leaf)
                continue
            if not leaf.counts_from_start:
                continue  # Leaf.next_change: no boundary
            try:
                found = leaf.offsets()
                if not all(isinstance(offset, timedelta) for offset in found):
                    raise TypeError
            except TypeError:
                self.unusual.append(leaf)  # Leaf.next_change decides (and fails), exactly as before
                continue
            self.ages.setdefault(field.since, set()).update(found)  # type: ignore[arg-type]


class _Waker:
    """What time can flip for one set of open rules, merged: each age's boundaries sorted together (one
    bisect per age), comparisons of fields that answer together asked as one question, other leaves once."""

    def __init__(self, rules: list[_Thresholds]):
        ages: dict[Callable[[Ticket], datetime | None], set[timedelta]] = {}
        announcing: dict[object, Leaf] = {}
        self.leaves: list[Leaf] = []
        for times in rules:
            for since, offsets in times.ages.items():
                ages.setdefault(since, set()).update(offsets)
            for key, leaf in times.announcing.items():
                announcing.setdefault(key, leaf)
            self.leaves += times.unusual
        self.ages = [(since, tuple(sorted(offsets))) for since, offsets in ages.items()]
        together: dict[int, tuple[Any, list[tuple[str, str, Any]]]] = {}
        for leaf in announcing.values():
            many = leaf.field.announce_many
            if many is None:
                self.leaves.append(leaf)
            else:
                together.setdefault(id(many), (many, []))[1].append((leaf.field.name, leaf.operator, leaf.test.const))
        self.asks = [many(comparisons) for many, comparisons in together.values()]

    def next_change(self, ticket: Ticket, now: datetime) -> datetime | None:
        best: datetime | None = None
        for since, offsets in self.ages:
            start = since(ticket)
            if start is None:
                continue
            i = bisect_right(offsets, now - start)  # the first boundary start + offset > now
            if i < len(offsets):
                at = start + offsets[i]
                if best is None or at < best:
                    best = at
        if self.asks:
            soonest = None  # epoch microseconds
            for ask in self.asks:
                found = ask(ticket, now)
                if found is not None and (soonest is None or found < soonest):
                    soonest = found
            if soonest is not None:
                at = from_us(soonest)
                if best is None or at < best:
                    best = at
        for leaf in self.leaves:
            at = leaf.next_change(ticket, now)
            if at is not None and (best is None or at < best):
                best = at
        return best


_INDEXES: dict[int, tuple[tuple[CompiledRule, ...], _Index]] = {}


def _index_for(rules: tuple[CompiledRule, ...]) -> _Index:
    """The index of a rules file, built on first use (a hot reload brings a new tuple of rules)."""
    cached = _INDEXES.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    index = _Index(rules)
    if len(_INDEXES) >= 8:
        _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[id(rules)] = (rules, index)
    return index


def _by_ticket(memory: Memory, rules: tuple[CompiledRule, ...], position: Mapping[str, int], tickets: int
               ) -> tuple[Callable[[str], dict[int, Firing] | None], Container[str] | None]:
    """Memory per ticket key, by rule position (grouped once when that is cheaper than one lookup per
    (rule, ticket)), and the tickets with a remembered rule that no longer matched (None: any may have)."""
    if not memory:
        return (lambda key: None), ()
    if len(memory) <= tickets * len(rules):
        grouped: dict[str, dict[int, Firing]] = {}
        stale: set[str] = set()
        for (name, key), firing in memory.items():
            at = position.get(name)
            if at is None:
                continue
            found = grouped.get(key)
            if found is None:
                grouped[key] = {at: firing}
            else:
                found[at] = firing
            if not firing.matching:
                stale.add(key)
        return grouped.get, stale
    get = memory.get
    return (lambda key: {i: f for i, rule in enumerate(rules) if (f := get((rule.name, key))) is not None}), None


def _match(rule: CompiledRule, ticket: Ticket, now: datetime, occurrence: int) -> RuleMatch:
    reason = reason_for(rule.condition.explain(ticket, now))
    actions = tuple(
        PlannedAction(
            key=f"{rule.name}/{ticket.key}/{occurrence}/{index}:{action.kind}",
            ticket_key=ticket.key,
            platform=ticket.platform,
            ticket_id=ticket.id,
            rule=rule.name,
            kind=action.kind,
            target=action.target,
            params={**action.build(ticket, now, rule.name), "reason": reason, "occurrence": occurrence},
            reason=reason,
        )
        for index, action in enumerate(rule.actions)
    )
    return RuleMatch(ticket.key, rule.name, actions, reason, occurrence)


def reason_for(verdict: Verdict) -> str:
    """A short sentence of the leaves that made a condition hold, with the values seen."""
    parts: list[str] = []

    def walk(node: Verdict, negated: bool) -> None:
        if node.text == "not":
            walk(node.children[0], not negated)
        elif node.children:
            for child in node.children:
                if child.held != negated:
                    walk(child, negated)
        else:
            shown = format_value(node.value) or "empty"
            parts.append(f"{'not ' if negated else ''}{node.text} (is {shown})")

    walk(verdict, False)
    return "; ".join(parts)


@dataclass(frozen=True)
class RuleExplanation:
    """How one rule judged one ticket: the condition trace and what would happen."""

    rule: CompiledRule
    verdict: Verdict | None
    matched: bool
    would_fire: bool
    skipped_by: str | None
    note: str


def explain(ticket: Ticket, now: datetime, config: Config, memory: Memory = _NO_MEMORY) -> list[RuleExplanation]:
    """Rule by rule, every condition with its actual value; agrees with `plan` by construction."""
    planned = {m.rule for m in plan([ticket], now, config, memory).matches}
    out: list[RuleExplanation] = []
    stopper: str | None = None
    for rule in config.rules:
        if not rule.enabled:
            out.append(RuleExplanation(rule, None, False, False, None, "disabled"))
            continue
        if stopper:
            out.append(RuleExplanation(rule, None, False, False, stopper, f"skipped: '{stopper}' has stop: true"))
            continue
        verdict = rule.condition.explain(ticket, now)
        before = memory.get((rule.name, ticket.key))
        note = ""
        if verdict.held and rule.name not in planned:
            note = f"already fired (occurrence {before.occurrence})" if before else ""
            if rule.repeat and before and before.fired_at:
                note += f"; repeats at {(before.fired_at + rule.repeat).isoformat()}"
        out.append(RuleExplanation(rule, verdict, verdict.held, rule.name in planned, None, note))
        if rule.stop and rule.name in planned:
            stopper = rule.name
    return out
