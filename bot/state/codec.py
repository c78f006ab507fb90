"""JSON forms of tickets and times, so the mirror survives restarts without API calls.

Times are stored as fixed-width UTC strings (`2024-06-10T12:00:00.000000Z`),
so SQL compares them correctly as text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from sys import intern
from types import MappingProxyType
from typing import Any

from bot.model import EMPTY, Priority, SlaDeadlines, Status, Ticket

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_TIME_FIELDS = {
    "created_at", "updated_at", "first_responded_at", "last_agent_update_at", "last_customer_update_at",
    "assigned_at", "status_changed_at", "solved_at",
}


def to_text(when: datetime | None) -> str | None:
    """A tz-aware time as sortable UTC text (naive times are taken as UTC)."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime(_TIME_FORMAT)


def from_text(text: str | None) -> datetime | None:
    """The inverse of `to_text`; also accepts other ISO forms (naive ones are taken as UTC)."""
    if not text:
        return None
    parsed = datetime.fromisoformat(text)  # Python 3.11 reads `Z` and fractions itself, ~30x strptime's speed
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _plain(value: Any) -> Any:
    """JSON-safe copy of nested payload values (sets become sorted lists, times text)."""
    if isinstance(value, datetime):
        return to_text(value)
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Compact JSON of any payload deskbot stores."""
    return json.dumps(_plain(value), separators=(",", ":"), sort_keys=True, default=str)


def ticket_to_dict(ticket: Ticket) -> dict[str, Any]:
    """Every field of a ticket, JSON-safe."""
    out: dict[str, Any] = {}
    for f in fields(Ticket):
        if f.name == "related" or not f.init:  # derived (from the mirror, or the platform and id); never stored
            continue
        value = getattr(ticket, f.name)
        if f.name == "sla":
            out["sla"] = {s.name: to_text(getattr(value, s.name)) for s in fields(SlaDeadlines)}
        elif f.name in _TIME_FIELDS:
            out[f.name] = to_text(value)
        elif f.name == "tags":
            out["tags"] = sorted(value)
        elif f.name in ("status", "priority"):
            out[f.name] = value.value
        else:
            out[f.name] = _plain(value)
    return out


def ticket_from_dict(data: dict[str, Any]) -> Ticket:
    """Rebuild a ticket; unknown keys (from a newer version) are ignored.

    A mirror holds every open ticket, and most of their words repeat (platform,
    group and people's names, tags, custom field keys): they are interned, so
    100,000 tickets share one copy of each instead of holding their own.
    """
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in _KNOWN}
    for name in _TIME_FIELDS & kwargs.keys():
        kwargs[name] = from_text(kwargs[name])
    for name in _WORD_FIELDS & kwargs.keys():
        if isinstance(kwargs[name], str):
            kwargs[name] = intern(kwargs[name])
    sla = kwargs.get("sla")
    if sla is not None:
        deadlines = {k: from_text(v) for k, v in sla.items() if k in _SLA_FIELDS and v}
        kwargs["sla"] = SlaDeadlines(**deadlines) if deadlines else NO_DEADLINES
    if "status" in kwargs:
        kwargs["status"] = Status(kwargs["status"])
    if "priority" in kwargs:
        kwargs["priority"] = Priority(kwargs["priority"])
    kwargs["tags"] = frozenset(map(intern, kwargs.get("tags") or ()))
    kwargs["custom"] = _words(kwargs.get("custom"))
    kwargs["raw"] = _words(kwargs.get("raw"))
    return Ticket(**kwargs)


_KNOWN = frozenset(f.name for f in fields(Ticket) if f.init) - {"related"}
_SLA_FIELDS = frozenset(f.name for f in fields(SlaDeadlines))
#: Text fields whose values repeat across tickets.
_WORD_FIELDS = frozenset({"platform", "type", "channel", "group", "assignee", "assignee_email", "requester",
                          "requester_email", "organization"})
NO_DEADLINES = SlaDeadlines()


def _words(mapping: Any) -> Mapping[str, Any]:
    """A read-only mapping with interned keys (and short text values), or the shared empty one."""
    if not mapping:
        return EMPTY
    return MappingProxyType({intern(k): intern(v) if isinstance(v, str) and len(v) <= 64 else v
                             for k, v in mapping.items()})


def ticket_to_json(ticket: Ticket) -> str:
    """A ticket as compact JSON."""
    return json.dumps(ticket_to_dict(ticket), separators=(",", ":"), default=str)


def ticket_from_json(text: str) -> Ticket:
    """A ticket from `ticket_to_json` output."""
    return ticket_from_dict(json.loads(text))


def seen_fields(ticket: Ticket) -> dict[str, Any]:
    """The fields of a ticket the executor compares to spot a human's change after evaluation."""
    return {
        "status": ticket.status.value,
        "priority": ticket.priority.value,
        "assignee_id": ticket.assignee_id,
        "group_id": ticket.group_id,
        "tags": sorted(ticket.tags),
        "updated_at": to_text(ticket.updated_at),
    }
