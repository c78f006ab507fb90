"""The pure rules engine: `plan(tickets, now, config, memory) -> Plan`.

No clock, no I/O: the same inputs always give the same plan. A rule fires on
the rising edge, when its condition becomes true for a ticket, once per
occurrence; `repeat: 4h` fires again while it stays true; `stop: true` makes
later rules skip a ticket in the pass where the rule acted on it. Rule order is file order. For every
ticket the plan also says when time alone could next change a verdict
(`Plan.next_check_at`), so the runner re-evaluates only changed or due tickets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.model import Firing, Plan, PlannedAction, RuleMatch, Ticket
from bot.rules.actions import CompiledAction
from bot.rules.conditions import Condition, Verdict
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
    remembered = memory.get
    for ticket in tickets:
        key = ticket.key
        soonest: datetime | None = None
        for rule in rules:
            matched = rule.condition.test(ticket, now)
            slot = (rule.name, key)
            before = remembered(slot)
            if matched:
                fire = before is None or not before.matching
                if not fire and rule.repeat is not None and before.fired_at is not None:
                    fire = now - before.fired_at >= rule.repeat
                if fire:
                    occurrence = (before.occurrence if before else 0) + 1
                    updates[slot] = Firing(True, occurrence, now)
                    matches.append(_match(rule, ticket, now, occurrence))
                    fired_at = now
                else:
                    fired_at = before.fired_at  # type: ignore[union-attr]
                if rule.repeat is not None and fired_at is not None:
                    due = fired_at + rule.repeat
                    if soonest is None or due < soonest:
                        soonest = due
            elif before is not None and before.matching:
                updates[slot] = Firing(False, before.occurrence, before.fired_at)
            if rule.condition.time_leaves:
                at = rule.condition.next_change(ticket, now)
                if at is not None and (soonest is None or at < soonest):
                    soonest = at
            if rule.stop and matched and updates.get(slot, before) is not before:
                # This rule acted on the ticket now: later rules wait for the next pass, due at once.
                soonest = now + _NEXT_PASS
                break
        if soonest is not None:
            next_check[key] = soonest
    return Plan(tuple(matches), updates, next_check)


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
