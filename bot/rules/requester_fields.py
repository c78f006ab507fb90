"""Repeat-contact fields: how many tickets a ticket's requester has open, opened lately, or opened on the same topic.

    when:
      all:
        - requester.tickets_last_7d: {gte: 3}     # this one included
        - requester.open_tickets: {gte: 1}        # others still unresolved

These facts span the whole mirror, which a per-ticket getter cannot see, so
the runner computes them once per cycle with `requester_facts(tickets, now)`
(pure) and attaches them to the tickets it plans (`with_requester_facts`)
under `Ticket.related["requester"]`. A ticket without them (no requester,
or `deskbot explain` on a bare file) reads as empty, so no rule matches by
accident.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.model import Ticket
from bot.reports.records import requester_identity
from bot.reports.text import similarity, terms
from bot.rules.durations import DurationError, format_duration, parse_duration
from bot.rules.fields import Field, Kind, register_prefix

PREFIX = "requester."
RELATED_KEY = "requester"
SIMILAR = 0.3  # Jaccard similarity of subject terms above which two tickets are about the same topic
_LAST = "tickets_last_"


@dataclass(frozen=True, slots=True)
class RequesterFacts:
    """What the mirror knows about one ticket's requester, as of one cycle."""

    open_tickets: int = 0  # the requester's other unresolved tickets
    similar_open_tickets: int = 0  # of those, the ones about the same topic
    created: tuple[datetime, ...] = ()  # creation times of all the requester's known tickets, sorted

    def tickets_since(self, since: datetime, now: datetime) -> int:
        """Tickets created in (since, now]."""
        return bisect.bisect_right(self.created, now) - bisect.bisect_right(self.created, since)


def requester_facts(tickets: Iterable[Ticket], now: datetime) -> dict[str, RequesterFacts]:
    """Facts per ticket key, from every known ticket (mirror plus recently resolved history)."""
    by_requester: dict[str, dict[str, Ticket]] = {}
    for ticket in tickets:
        who = requester_identity(ticket)
        if who is not None:
            by_requester.setdefault(who, {})[ticket.key] = ticket
    facts: dict[str, RequesterFacts] = {}
    for group in by_requester.values():
        created = tuple(sorted(t.created_at for t in group.values()
                               if t.created_at is not None and t.created_at <= now))
        open_ = [t for t in group.values() if not t.status.is_resolved]
        topics = {t.key: terms(t.subject) for t in open_}
        for ticket in group.values():
            others = [t for t in open_ if t.key != ticket.key]
            own = topics.get(ticket.key) or terms(ticket.subject)
            similar = sum(1 for t in others if similarity(own, topics[t.key]) >= SIMILAR)
            facts[ticket.key] = RequesterFacts(len(others), similar, created)
    return facts


def with_requester_facts(tickets: Iterable[Ticket], universe: Iterable[Ticket], now: datetime) -> list[Ticket]:
    """The tickets with `related["requester"]` filled from all known tickets (unchanged if Ticket lacks `related`)."""
    tickets = list(tickets)
    if not any(_can_relate(t) for t in tickets):
        return tickets
    return attach_facts(tickets, requester_facts([*universe, *tickets], now))


def attach_facts(tickets: Iterable[Ticket], facts: Mapping[str, RequesterFacts]) -> list[Ticket]:
    """The tickets with precomputed facts attached (compute once per cycle, attach per chunk)."""
    return [replace(t, related={**t.related, RELATED_KEY: facts[t.key]})  # type: ignore[attr-defined]
            if t.key in facts and _can_relate(t) else t for t in tickets]


def _can_relate(ticket: Ticket) -> bool:
    """True when the ticket's class has the `related` field (bot.model.Ticket once the lead adds it)."""
    return hasattr(type(ticket), "related")


def facts_of(ticket: Ticket) -> RequesterFacts | None:
    """The requester facts attached to a ticket, if the runner attached any."""
    related = getattr(ticket, "related", None)
    found = related.get(RELATED_KEY) if isinstance(related, Mapping) else None
    if isinstance(found, RequesterFacts):
        return found
    if isinstance(found, Mapping):  # a serialized copy (e.g. a rule test file)
        created = tuple(sorted(_time(v) for v in found.get("created") or ()))
        return RequesterFacts(int(found.get("open_tickets") or 0), int(found.get("similar_open_tickets") or 0),
                              created)
    return None


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _open_tickets(ticket: Ticket, now: datetime) -> int | None:
    facts = facts_of(ticket)
    return None if facts is None else facts.open_tickets


def _similar_open(ticket: Ticket, now: datetime) -> int | None:
    facts = facts_of(ticket)
    return None if facts is None else facts.similar_open_tickets


_FIXED = {
    "requester.open_tickets": Field(
        "requester.open_tickets", Kind.NUMBER,
        "How many other unresolved tickets the same requester has (repeat contact).",
        "requester.open_tickets: {gte: 1}", _open_tickets),
    "requester.similar_open_tickets": Field(
        "requester.similar_open_tickets", Kind.NUMBER,
        "How many of the requester's other unresolved tickets share this one's topic (subject terms).",
        "requester.similar_open_tickets: {gte: 1}", _similar_open),
}
_KNOWN = ", ".join([*_FIXED, f"{PREFIX}{_LAST}<duration>"])
_CACHE: dict[str, Field] = {}
_WINDOWS: dict[str, timedelta] = {}


def _window_field(name: str, window: timedelta) -> Field:
    def getter(ticket: Ticket, now: datetime) -> int | None:
        facts = facts_of(ticket)
        return None if facts is None else facts.tickets_since(now - window, now)

    def next_change(ticket: Ticket, now: datetime, operator: str, const: Any) -> datetime | None:
        """When the oldest counted ticket leaves the window (the count can only drop with time)."""
        facts = facts_of(ticket)
        if facts is None:
            return None
        leaving = [created + window for created in facts.created if now - window < created <= now]
        return min(leaving) if leaving else None

    return Field(name, Kind.NUMBER, f"How many tickets the requester opened in the last {format_duration(window)}, "
                                    "this one included (repeat contact).",
                 f"{name}: {{gte: 3}}", getter, next_change=next_change)


def longest_window(default: timedelta = timedelta(days=7)) -> timedelta:
    """The longest `tickets_last_<duration>` any compiled rule uses (how much history the facts need)."""
    return max([default, *_WINDOWS.values()])


def requester_field(name: str, context: Any = None) -> Field:
    """The field for `requester.<name>`; ValueError says which names exist."""
    found = _FIXED.get(name) or _CACHE.get(name)
    if found is not None:
        return found
    rest = name.removeprefix(PREFIX)
    if not rest.startswith(_LAST):
        raise ValueError(f"unknown field '{name}' (requester fields: {_KNOWN})")
    try:
        window = parse_duration(rest.removeprefix(_LAST))
    except DurationError:
        raise ValueError(f"'{name}' needs a duration after '{_LAST}', e.g. {PREFIX}{_LAST}7d or "
                         f"{PREFIX}{_LAST}24h") from None
    if window <= timedelta(0):
        raise ValueError(f"'{name}' needs a window longer than zero, e.g. {PREFIX}{_LAST}7d")
    _CACHE[name] = field = _window_field(name, window)
    _WINDOWS[name] = window
    return field


register_prefix(PREFIX, requester_field)
