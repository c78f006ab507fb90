"""Freshdesk payloads to deskbot's `Ticket` (and back for writes), in one place.

Freshdesk speaks in codes (status 2..5 plus custom >= 6, priority 1..4,
source 1..13) and `cf_`-prefixed custom fields; this module turns them into
the platform-neutral vocabulary of `bot.model`, so one rules file reads the
same on Zendesk and Freshdesk. Nothing here does I/O.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from bot.connectors.payload import unmapped
from bot.model import Directory, Priority, SlaDeadlines, Status, Ticket

PLATFORM = "freshdesk"

STATUS_BY_CODE: Mapping[int, Status] = MappingProxyType(
    {2: Status.OPEN, 3: Status.PENDING, 4: Status.SOLVED, 5: Status.CLOSED}
)
# Freshdesk has no "new": a fresh ticket is Open (2), so writing `new` means Open.
CODE_BY_STATUS: Mapping[Status, int] = MappingProxyType(
    {Status.NEW: 2, Status.OPEN: 2, Status.PENDING: 3, Status.SOLVED: 4, Status.CLOSED: 5}
)
PRIORITY_BY_CODE: Mapping[int, Priority] = MappingProxyType(
    {1: Priority.LOW, 2: Priority.NORMAL, 3: Priority.HIGH, 4: Priority.URGENT}
)
CODE_BY_PRIORITY: Mapping[Priority, int] = MappingProxyType({p: c for c, p in PRIORITY_BY_CODE.items()})

# Names follow the neutral channel vocabulary of bot.sandbox.seed / Zendesk where the meaning is the same
# (portal = web form, phone = phone); the rest keep Freshdesk's own meaning in snake_case.
#: Record keys `to_ticket` turns into `Ticket` fields; the rest (the raw `*_due_by` included) stay in `raw`.
MAPPED_KEYS = frozenset({
    "id", "subject", "status", "priority", "created_at", "updated_at", "description", "description_text", "type",
    "source", "tags", "group_id", "responder_id", "requester_id", "requester", "company_id", "company",
    "custom_fields", "stats", "fr_escalated", "nr_escalated", "is_escalated",
})
CHANNEL_BY_SOURCE: Mapping[int, str] = MappingProxyType({
    1: "email", 2: "web", 3: "phone", 4: "forum", 5: "twitter", 6: "facebook", 7: "chat", 8: "mobihelp",
    9: "feedback_widget", 10: "outbound_email", 11: "ecommerce", 12: "bot", 13: "whatsapp",
})
SOURCE_BY_CHANNEL: Mapping[str, int] = MappingProxyType({c: s for s, c in CHANNEL_BY_SOURCE.items()})

ESCALATION_FLAGS = ("fr_escalated", "nr_escalated", "is_escalated")

_CATEGORY_WORDS: tuple[tuple[tuple[str, ...], Status], ...] = (
    (("hold", "waiting", "awaiting"), Status.ON_HOLD),
    (("pending",), Status.PENDING),
    (("closed",), Status.CLOSED),
    (("resolved", "solved", "done", "complete", "fixed"), Status.SOLVED),
)


def categorize_status(name: str) -> Status:
    """The normalised category of a custom status from its name ("Waiting on Third Party" -> on_hold)."""
    folded = name.casefold()
    for words, status in _CATEGORY_WORDS:
        if any(word in folded for word in words):
            return status
    return Status.OPEN


@dataclass(frozen=True)
class TicketFields:
    """What the account's `ticket_fields` say about custom statuses (code -> name and category)."""

    status_names: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: Iterable[Mapping[str, Any]]) -> TicketFields:
        """Read the `status` field's choices, e.g. `{"6": ["Waiting on Third Party", "Awaiting"]}`."""
        names: dict[int, str] = {}
        for item in payload:
            if item.get("name") != "status":
                continue
            choices = item.get("choices") or {}
            for code, labels in choices.items() if isinstance(choices, Mapping) else ():
                label = labels[0] if isinstance(labels, list | tuple) and labels else labels
                try:
                    names[int(code)] = str(label)
                except (TypeError, ValueError):
                    continue
        return cls(MappingProxyType(names))

    def status(self, code: Any) -> Status:
        """The category of a status code; unknown custom codes count as open (work still to do)."""
        try:
            number = int(code)
        except (TypeError, ValueError):
            return Status.OPEN
        if number in STATUS_BY_CODE:
            return STATUS_BY_CODE[number]
        name = self.status_names.get(number)
        return categorize_status(name) if name else Status.OPEN

    def code_for(self, status: Status) -> int | None:
        """The code to write for a category: built-ins, else the first custom status of that category."""
        if status in CODE_BY_STATUS:
            return CODE_BY_STATUS[status]
        for code in sorted(self.status_names):
            if code >= 6 and categorize_status(self.status_names[code]) is status:
                return code
        return None


DEFAULT_FIELDS = TicketFields()


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from Freshdesk's ISO 8601 text (None stays None)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """Freshdesk's timestamp form, to the second: `2024-06-10T13:05:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(p|div|li|h\d)>|<br\s*/?>", re.IGNORECASE)


def html_to_text(body: str) -> str:
    """Plain text of an HTML body (Freshdesk descriptions and notes are HTML)."""
    text = _TAG.sub("", _BLOCK_END.sub("\n", body))
    return re.sub(r"\n{3,}", "\n\n", html.unescape(text)).strip()


def note_marker(key: str) -> str:
    """The trailer that ties a note to the action that wrote it (Freshdesk notes carry no metadata)."""
    return f"(deskbot: {key})"


def note_html(text: str, key: str = "") -> str:
    """A private note body: the text HTML-escaped (it may quote a customer), one paragraph per line."""
    lines = html.escape(text, quote=True).splitlines() or [""]
    body = "".join(f"<p>{line}</p>" if line else "<p><br></p>" for line in lines)
    return body + (f"<p>{html.escape(note_marker(key), quote=True)}</p>" if key else "")


def untouched(raw: Mapping[str, Any]) -> bool:
    """An Open ticket no agent has handled yet: what Zendesk calls `new` (Freshdesk folds it into Open).

    Needs the `stats` include; without it the ticket counts as handled.
    """
    stats = raw.get("stats")
    if _int(raw.get("status")) != 2 or raw.get("responder_id") is not None or not isinstance(stats, Mapping):
        return False
    if stats.get("first_responded_at") or stats.get("agent_responded_at") or stats.get("reopened_at"):
        return False
    changed = parse_time(stats.get("status_updated_at"))
    return changed is None or changed == parse_time(raw.get("created_at"))


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def custom_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Custom fields by name without the `cf_` prefix, plus the SLA escalation flags."""
    values: dict[str, Any] = {flag: bool(raw[flag]) for flag in ESCALATION_FLAGS if flag in raw}
    for name, value in (raw.get("custom_fields") or {}).items():
        values[name.removeprefix("cf_")] = value
    return values


def sla_deadlines(raw: Mapping[str, Any], status: Status, first_responded_at: datetime | None) -> SlaDeadlines:
    """Running SLA clocks only: a met, paused (pending/on hold) or finished target has no deadline.

    Freshdesk keeps `fr_due_by` after the first response and `due_by` after
    resolution; Zendesk reports only clocks in the `active` stage. Clearing them
    here makes `sla.*` conditions mean the same on both platforms.
    """
    if status in (Status.PENDING, Status.ON_HOLD) or status.is_resolved:
        return SlaDeadlines()
    return SlaDeadlines(
        first_reply_due_at=None if first_responded_at else parse_time(raw.get("fr_due_by")),
        next_reply_due_at=parse_time(raw.get("nr_due_by")),
        resolution_due_at=parse_time(raw.get("due_by")),
    )


def to_ticket(
    raw: Mapping[str, Any],
    directory: Directory,
    *,
    fields: TicketFields = DEFAULT_FIELDS,
    base_url: str = "",
) -> Ticket:
    """One Freshdesk ticket record (list or view, any includes) as a deskbot `Ticket`."""
    stats = raw.get("stats") or {}
    requester = raw.get("requester") or {}
    company = raw.get("company") or {}
    status = Status.NEW if untouched(raw) else fields.status(raw.get("status"))
    created_at = parse_time(raw.get("created_at"))
    first_responded_at = parse_time(stats.get("first_responded_at"))
    group_id, assignee_id = _int(raw.get("group_id")), _int(raw.get("responder_id"))
    group = directory.group_by_id(group_id) if group_id is not None else None
    agent = directory.agent_by_id(assignee_id) if assignee_id is not None else None
    description = raw.get("description_text")
    if description is None and raw.get("description"):
        description = html_to_text(str(raw["description"]))
    source = _int(raw.get("source"))
    ticket_id = int(raw["id"])
    return Ticket(
        platform=PLATFORM,
        id=ticket_id,
        subject=str(raw.get("subject") or ""),
        status=status,
        priority=PRIORITY_BY_CODE.get(_int(raw.get("priority")) or 0, Priority.NORMAL),
        created_at=created_at,
        updated_at=parse_time(raw.get("updated_at")),
        url=f"{base_url.rstrip('/')}/a/tickets/{ticket_id}" if base_url else "",
        description=str(description or ""),
        type=(str(raw["type"]).casefold() if raw.get("type") else None),
        channel=(CHANNEL_BY_SOURCE.get(source, f"source_{source}") if source is not None else None),
        tags=frozenset(str(tag) for tag in raw.get("tags") or ()),
        group_id=group_id,
        group=group.name if group else None,
        assignee_id=assignee_id,
        assignee=agent.name if agent else None,
        assignee_email=agent.email if agent else None,
        requester_id=_int(raw.get("requester_id")),
        requester=requester.get("name"),
        requester_email=requester.get("email"),
        organization_id=_int(raw.get("company_id")),
        organization=company.get("name"),
        custom=MappingProxyType(custom_values(raw)),
        first_responded_at=first_responded_at,
        last_agent_update_at=parse_time(stats.get("agent_responded_at")),
        # The ticket itself is the customer's first message, as in Zendesk's requester_updated_at.
        last_customer_update_at=parse_time(stats.get("requester_responded_at")) or created_at,
        assigned_at=None,  # Freshdesk exposes no assignment time; see docs/freshdesk.md
        status_changed_at=parse_time(stats.get("status_updated_at")),
        solved_at=parse_time(stats.get("resolved_at")) or parse_time(stats.get("closed_at")),
        sla=sla_deadlines(raw, status, first_responded_at),
        raw=unmapped(raw, MAPPED_KEYS),
    )
