"""Every ticket field a condition or a template can name, in one registry.

A field knows how to read its value from a `Ticket` at an instant, what kind of
value it is (which decides the operators that apply), and, when time alone can
change it (ages, SLA clocks), the next instant at which a comparison against it
flips. Adding a field is one `register(...)` call; prefixed families such as
`custom.<name>` are one `register_prefix(...)` call.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from bot.model import Priority, Status, Ticket


class Kind(enum.StrEnum):
    """What a field holds; decides which operators apply and how values are checked."""

    TEXT = "text"
    CHOICE = "choice"
    TAGS = "tags"
    NUMBER = "number"
    DURATION = "duration"
    BOOL = "bool"
    ANY = "any"


Getter = Callable[[Ticket, datetime], Any]
NextChange = Callable[[Ticket, datetime, str, Any], "datetime | None"]
AnnounceMany = Callable[[Sequence[tuple[str, str, Any]]], Callable[[Ticket, datetime], "int | None"]]


@dataclass(frozen=True)
class Field:
    """One readable ticket property.

    `attr` names a plain Ticket attribute (the compiler reads it directly);
    `code(bind)` is, for other fields, the same read as an inline Python
    expression over `t` and `now` (constants bound by name through `bind`), so
    compiled conditions skip a call per leaf; `getter` stays the reference;
    `since` gives the timestamp an age counts from; `next_change` answers when a
    comparison `operator const` on this field could next change with time only;
    `announce_many`, when given, is shared by fields that can answer together
    (an SLA target's measures): given comparisons as (field name, operator,
    const), it returns once a function of (ticket, now) giving the earliest
    instant any of them could flip, in epoch microseconds (`bot.calendar.to_us`),
    so the planner asks once per ticket instead of once per comparison; `slow` says a read may compute something (SLA
    clocks), so cheaper tests of a condition go first; `shorthand` is the
    operator a bare value means (default: equality).
    """

    name: str
    kind: Kind
    doc: str
    example: str
    getter: Getter
    attr: str | None = None
    choices: tuple[str, ...] = ()
    ordered: bool = False
    since: Callable[[Ticket], datetime | None] | None = None
    unit: timedelta | None = None
    next_change: NextChange | None = None
    announce_many: AnnounceMany | None = None
    shorthand: str | None = None
    code: Callable[[Callable[[Any], str]], str] | None = None
    slow: bool = False

    @property
    def time_based(self) -> bool:
        """True when the value changes as time passes with no change to the ticket."""
        return self.since is not None or self.next_change is not None


FIELDS: dict[str, Field] = {}
PREFIXES: dict[str, Callable[[str, Any], Field]] = {}


def register(field: Field) -> Field:
    """Add a field to the registry (its name must be new)."""
    if field.name in FIELDS:
        raise ValueError(f"field {field.name!r} registered twice")
    FIELDS[field.name] = field
    return field


def register_prefix(prefix: str, factory: Callable[[str, Any], Field]) -> None:
    """Add a family of fields such as `custom.<name>`: `factory(full_name, context)` builds one.

    `context` is the rules file being compiled (a `ConfigSpec`, or None outside
    a file), so families such as SLA clocks can bind the file's policies once.
    """
    PREFIXES[prefix] = factory


def resolve(name: str, context: Any = None) -> Field | None:
    """The field for a name, including prefixed families; None if unknown.

    A family's factory may raise ValueError to say why a name is not valid.
    """
    field = FIELDS.get(name)
    if field is not None:
        return field
    for prefix, factory in PREFIXES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return factory(name, context)
    return None


def known_names() -> list[str]:
    """Every field name plus each prefix family's pattern, for suggestions and docs."""
    return [*FIELDS, *(f"{prefix}<name>" for prefix in PREFIXES)]


def _attr_field(name: str, kind: Kind, doc: str, example: str, attr: str | None = None, **extra: Any) -> Field:
    attr = attr or name

    def getter(ticket: Ticket, now: datetime, _attr: str = attr) -> Any:
        return getattr(ticket, _attr)

    return register(Field(name, kind, doc, example, getter, attr=attr, **extra))


_attr_field("status", Kind.CHOICE, "Normalised status.", "status: {in: [new, open]}",
            choices=tuple(Status))
_attr_field("priority", Kind.CHOICE, "Normalised priority, ordered low < normal < high < urgent.",
            "priority: {at_least: high}", choices=tuple(Priority), ordered=True)
_attr_field("subject", Kind.TEXT, "The ticket's subject line.", 'subject: {contains: "refund"}')
_attr_field("description", Kind.TEXT, "An excerpt of the first message.",
            'description: {matches: "order #?\\\\d{5}"}')
_attr_field("type", Kind.TEXT, "Ticket type (question, incident, problem, task, or Freshdesk's own).",
            "type: incident")
_attr_field("channel", Kind.TEXT, "Where the ticket came from (email, web, chat, phone, api...).",
            "channel: {in: [chat, phone]}")
_attr_field("tags", Kind.TAGS, "The ticket's tags.", "tags: {has: vip}")
_attr_field("group", Kind.TEXT, "Name of the ticket's group (team queue).", "group: {is_empty: true}")
_attr_field("assignee", Kind.TEXT, "Name of the assigned agent.", "assignee: {is_set: false}")
_attr_field("assignee_email", Kind.TEXT, "Email of the assigned agent.",
            "assignee_email: {in: [ana@example.com]}")
_attr_field("requester", Kind.TEXT, "Name of the customer who asked.", 'requester: {contains: "smith"}')
_attr_field("requester_email", Kind.TEXT, "Email of the customer who asked.",
            'requester_email: {matches: "@bigcorp\\\\.com$"}')
_attr_field("organization", Kind.TEXT, "The requester's organization or company.",
            "organization: Big Corp")
_attr_field("platform", Kind.TEXT, "Which helpdesk the ticket lives in (zendesk, freshdesk).",
            "platform: zendesk")
_attr_field("id", Kind.NUMBER, "The ticket's number in its helpdesk.", "id: {gt: 1000}")


def _custom(name: str, context: Any = None) -> Field:
    key = name.removeprefix("custom.")

    def getter(ticket: Ticket, now: datetime) -> Any:
        return ticket.custom.get(key)

    return Field(name, Kind.ANY, "A custom field, by its name in the helpdesk.",
                 "custom.plan: enterprise", getter, code=lambda bind: f"t.custom.get({bind(key)})")


register_prefix("custom.", _custom)

# Each start also as the same expression over `t`, so compiled conditions read ages without a call; plain
# attributes are read by `attrgetter`, which the planner calls for every ticket without a Python frame.
_AGES: dict[str, tuple[Callable[[Ticket], datetime | None], str, str]] = {
    "created": (attrgetter("created_at"), "the ticket was created", "t.created_at"),
    "updated": (attrgetter("updated_at"), "the ticket was last updated", "t.updated_at"),
    "customer_reply": (lambda t: t.last_customer_update_at or t.created_at,
                       "the customer last wrote (or created the ticket)",
                       "(t.last_customer_update_at or t.created_at)"),
    "agent_reply": (attrgetter("last_agent_update_at"), "an agent last replied", "t.last_agent_update_at"),
    "assigned": (lambda t: t.assigned_at if t.assignee_id is not None else None,
                 "the ticket was assigned to its current agent",
                 "(t.assigned_at if t.assignee_id is not None else None)"),
    "status_change": (lambda t: t.status_changed_at or t.updated_at, "the status last changed",
                      "(t.status_changed_at or t.updated_at)"),
}


def _unanswered_since(ticket: Ticket) -> datetime | None:
    """When the customer started waiting: their last message after the last agent reply."""
    customer = ticket.last_customer_update_at or ticket.created_at
    agent = ticket.last_agent_update_at
    if customer is None or (agent is not None and agent >= customer):
        return None
    return customer


def _age_field(name: str, since: Callable[[Ticket], datetime | None], doc: str, example: str,
               unit: timedelta | None = None, since_code: str | None = None) -> None:
    """An age; `since_code` is `since` as an expression over `t` (else the compiled read calls `since`)."""
    if unit is None:
        def getter(ticket: Ticket, now: datetime) -> timedelta | None:
            start = since(ticket)
            return None if start is None else now - start
        kind = Kind.DURATION

        def code(bind: Callable[[Any], str]) -> str:
            return f"(None if (_s := {since_code or bind(since) + '(t)'}) is None else now - _s)"
    else:
        seconds = unit.total_seconds()

        def getter(ticket: Ticket, now: datetime) -> float | None:
            start = since(ticket)
            return None if start is None else (now - start).total_seconds() / seconds
        kind = Kind.NUMBER

        def code(bind: Callable[[Any], str]) -> str:
            start = since_code or bind(since) + "(t)"
            return f"(None if (_s := {start}) is None else (now - _s).total_seconds() / {bind(seconds)})"
    register(Field(name, kind, doc, example, getter, since=since, unit=unit, code=code))


for _suffix, (_since, _what, _code) in _AGES.items():
    _age_field(f"since_{_suffix}", _since, f"Time since {_what}.", f"since_{_suffix}: {{over: 4h}}",
               since_code=_code)
    _age_field(f"hours_since_{_suffix}", _since, f"Hours since {_what}, as a number.",
               f"hours_since_{_suffix}: {{gt: 4}}", unit=timedelta(hours=1), since_code=_code)
_age_field("unanswered_for", _unanswered_since,
           "How long the customer has been waiting for an agent's reply (empty when they are not).",
           "unanswered_for: {over: 2h}")
