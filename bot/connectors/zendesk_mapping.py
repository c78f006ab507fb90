"""Zendesk payloads to deskbot's `Ticket` and `Directory`, in one place and without I/O.

`to_ticket(raw, sideloads)` reads one ticket as the incremental export or
`show_many` returns it, using the sideloaded users, groups, organizations and
metric sets for names and clocks, so no extra call is needed per ticket.
Keys it does not map are kept in `Ticket.raw` (`payload.unmapped`) and never fail the mapping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from bot.connectors.payload import unmapped
from bot.model import Agent, Directory, Group, Priority, SlaDeadlines, Status, Ticket

PLATFORM = "zendesk"

STATUS_BY_NAME: Mapping[str, Status] = MappingProxyType({
    "new": Status.NEW, "open": Status.OPEN, "pending": Status.PENDING, "hold": Status.ON_HOLD,
    "solved": Status.SOLVED, "closed": Status.CLOSED,
})
NAME_BY_STATUS: Mapping[Status, str] = MappingProxyType({s: n for n, s in STATUS_BY_NAME.items()})

# SLA policy metric -> the deadline it drives; the first active one per slot wins (earliest breach).
_SLA_SLOTS: Mapping[str, str] = MappingProxyType({
    "first_reply_time": "first_reply_due_at",
    "next_reply_time": "next_reply_due_at",
    "total_resolution_time": "resolution_due_at",
})

#: Payload keys `to_ticket` turns into `Ticket` fields (or that only version the payload); the rest stay in `raw`.
MAPPED_KEYS = frozenset({
    "id", "url", "subject", "raw_subject", "description", "status", "priority", "type", "via", "tags",
    "group_id", "assignee_id", "requester_id", "organization_id", "custom_fields", "fields", "created_at",
    "updated_at", "generated_timestamp", "metric_set", "slas",
})

#: Zendesk's `via.channel` names where the shared vocabulary (and Freshdesk) says otherwise.
_CHANNELS = {"voice": "phone", "chat_transcript": "chat", "native_messaging": "chat", "mobile_sdk": "api"}


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from Zendesk's ISO 8601 text or Unix seconds (None stays None)."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """Zendesk's timestamp text, e.g. `2024-06-10T12:00:00Z`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def field_key(title: str) -> str:
    """The rules-friendly name of a custom field: `Order number` -> `order_number`."""
    return re.sub(r"[^0-9a-z]+", "_", title.casefold()).strip("_")


def field_keys(titles: Mapping[int, str]) -> dict[int, str]:
    """Custom field id -> key; a title that slugs like an earlier field's gets its id appended."""
    keys: dict[int, str] = {}
    taken: set[str] = set()
    for field_id in sorted(titles):
        key = field_key(titles[field_id]) or f"field_{field_id}"
        if key in taken:
            key = f"{key}_{field_id}"
        taken.add(key)
        keys[field_id] = key
    return keys


@dataclass(frozen=True)
class Sideloads:
    """What a page brought along (users, groups, organizations, metric sets) plus account facts."""

    users: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    groups: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    organizations: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    metric_sets: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    field_keys: Mapping[int, str] = field(default_factory=dict)
    agent_url: str = ""  # e.g. https://acme.zendesk.com/agent/tickets/

    @classmethod
    def from_page(cls, page: Mapping[str, Any], *, field_keys: Mapping[int, str] | None = None,
                  agent_url: str = "", directory: Directory | None = None) -> Sideloads:
        """Index a page's sideload arrays by id; directory agents/groups fill names the page lacks."""
        users = {a.id: {"id": a.id, "name": a.name, "email": a.email} for a in (directory.agents if directory
                                                                                   else ())}
        groups = {g.id: {"id": g.id, "name": g.name} for g in (directory.groups if directory else ())}
        users.update(_by_id(page.get("users")))
        groups.update(_by_id(page.get("groups")))
        metric_sets = {int(m["ticket_id"]): m for m in page.get("metric_sets") or () if m.get("ticket_id")}
        return cls(users=users, groups=groups, organizations=_by_id(page.get("organizations")),
                   metric_sets=metric_sets, field_keys=dict(field_keys or {}), agent_url=agent_url)


def _by_id(items: Iterable[Mapping[str, Any]] | None) -> dict[int, Mapping[str, Any]]:
    return {int(item["id"]): item for item in items or () if item.get("id") is not None}


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def to_ticket(raw: Mapping[str, Any], sideloads: Sideloads | None = None) -> Ticket:
    """One Zendesk ticket payload as a `Ticket` (status `hold` -> on_hold, null priority -> normal)."""
    side = sideloads or Sideloads()
    ticket_id = int(raw["id"])
    requester = side.users.get(_int(raw.get("requester_id")) or 0, {})
    assignee = side.users.get(_int(raw.get("assignee_id")) or 0, {})
    group = side.groups.get(_int(raw.get("group_id")) or 0, {})
    organization = side.organizations.get(_int(raw.get("organization_id")) or 0, {})
    metrics = raw.get("metric_set") or side.metric_sets.get(ticket_id) or {}
    created_at = parse_time(raw.get("created_at"))
    status = STATUS_BY_NAME.get(str(raw.get("status") or "open"), Status.OPEN)
    return Ticket(
        platform=PLATFORM,
        id=ticket_id,
        subject=raw.get("subject") or raw.get("raw_subject") or "",
        status=status,
        priority=Priority(raw["priority"]) if raw.get("priority") in Priority._value2member_map_ else
        Priority.NORMAL,
        created_at=created_at,
        updated_at=parse_time(raw.get("updated_at")),
        url=f"{side.agent_url}{ticket_id}" if side.agent_url else "",
        description=raw.get("description") or "",
        type=raw.get("type"),
        channel=_CHANNELS.get(via := (raw.get("via") or {}).get("channel"), via),
        tags=frozenset(raw.get("tags") or ()),
        group_id=_int(raw.get("group_id")),
        group=group.get("name"),
        assignee_id=_int(raw.get("assignee_id")),
        assignee=assignee.get("name"),
        assignee_email=assignee.get("email"),
        requester_id=_int(raw.get("requester_id")),
        requester=requester.get("name"),
        requester_email=requester.get("email"),
        organization_id=_int(raw.get("organization_id")),
        organization=organization.get("name"),
        custom=MappingProxyType(custom_values(raw, side.field_keys)),
        first_responded_at=_first_reply(created_at, metrics),
        # Zendesk counts the ticket itself as the requester's first update.
        last_customer_update_at=parse_time(metrics.get("requester_updated_at")) or created_at,
        last_agent_update_at=parse_time(metrics.get("assignee_updated_at")),
        assigned_at=parse_time(metrics.get("assigned_at")),
        status_changed_at=parse_time(metrics.get("status_updated_at")),
        solved_at=parse_time(metrics.get("solved_at")),
        sla=sla_deadlines(raw),
        raw=unmapped(raw, MAPPED_KEYS),
    )


def custom_values(raw: Mapping[str, Any], keys: Mapping[int, str]) -> dict[str, Any]:
    """Custom field values by key (`field_keys`), or `field_<id>` when the field's title is unknown."""
    values: dict[str, Any] = {}
    for item in raw.get("custom_fields") or ():
        field_id = _int(item.get("id"))
        if field_id is not None:
            values[keys.get(field_id, f"field_{field_id}")] = item.get("value")
    return values


def _first_reply(created_at: datetime | None, metrics: Mapping[str, Any]) -> datetime | None:
    """Zendesk gives the first reply as minutes after creation (`reply_time_in_minutes.calendar`)."""
    minutes = (metrics.get("reply_time_in_minutes") or {}).get("calendar")
    if created_at is None or minutes is None:
        return None
    return created_at + timedelta(minutes=int(minutes))


def sla_deadlines(raw: Mapping[str, Any]) -> SlaDeadlines:
    """Deadlines of the SLA clocks that are running (`stage: active`); paused or met ones are absent."""
    found: dict[str, datetime] = {}
    for metric in (raw.get("slas") or {}).get("policy_metrics") or ():
        slot = _SLA_SLOTS.get(str(metric.get("metric")))
        breach_at = parse_time(metric.get("breach_at"))
        if slot and metric.get("stage") == "active" and breach_at and (slot not in found or
                                                                       breach_at < found[slot]):
            found[slot] = breach_at
    return SlaDeadlines(**found)


def to_directory(users: Iterable[Mapping[str, Any]], groups: Iterable[Mapping[str, Any]],
                 memberships: Iterable[Mapping[str, Any]]) -> Directory:
    """Agents (agent/admin users) and live groups, linked through group memberships."""
    live_groups = [g for g in groups if not g.get("deleted")]
    group_ids = {int(g["id"]) for g in live_groups}
    by_agent: dict[int, set[int]] = {}
    by_group: dict[int, set[int]] = {}
    for membership in memberships:
        user_id, group_id = _int(membership.get("user_id")), _int(membership.get("group_id"))
        if user_id is None or group_id not in group_ids:
            continue
        by_agent.setdefault(user_id, set()).add(group_id)
        by_group.setdefault(group_id, set()).add(user_id)
    agents = tuple(
        Agent(platform=PLATFORM, id=int(u["id"]), name=u.get("name") or "", email=u.get("email"),
              group_ids=frozenset(by_agent.get(int(u["id"]), ())),
              active=bool(u.get("active", True)) and not u.get("suspended", False))
        for u in users if u.get("role") in ("agent", "admin")
    )
    return Directory(
        agents=agents,
        groups=tuple(Group(platform=PLATFORM, id=int(g["id"]), name=g.get("name") or "",
                           agent_ids=frozenset(by_group.get(int(g["id"]), ()))) for g in live_groups),
    )
