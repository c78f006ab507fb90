"""The fake Freshdesk's account state and the moves of the humans working in it.

Tickets, conversations, agents, groups, contacts and companies, stored in
Freshdesk's own shapes (codes, `cf_` fields, `stats`), plus the helpers tests
and the demo use to play the humans: `add_ticket`, `human_update`,
`customer_reply`, `agent_reply`, and `load_queue` for the shared seed. The HTTP
side lives in `bot.sandbox.freshdesk`.
"""

from __future__ import annotations

import functools
import html
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.sandbox.seed import Queue

Clock = Callable[[], datetime]
# seconds to first response and to resolution by priority code, like a default SLA policy
DEFAULT_SLA = {4: (3600, 4 * 3600), 3: (4 * 3600, 24 * 3600), 2: (8 * 3600, 72 * 3600), 1: (24 * 3600, 120 * 3600)}
CUSTOM_STATUSES = {6: "Waiting on Customer", 7: "Waiting on Third Party"}
_SEED_STATUS = {"new": 2, "open": 2, "pending": 3, "solved": 4, "closed": 5}
_SEED_PRIORITY = {None: 2, "low": 1, "normal": 2, "high": 3, "urgent": 4}
_SEED_SOURCE = {"email": 1, "web": 2, "api": 2, "phone": 3, "chat": 7}


def stamp(moment: datetime | None) -> str | None:
    """Freshdesk's timestamp text, to the second."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from Freshdesk's timestamp text (None if it is not one)."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def field_name(label: str) -> str:
    """The API name Freshdesk gives a custom field from its label: "VIP customer" -> `cf_vip_customer`."""
    return "cf_" + re.sub(r"[^a-z0-9]+", "_", label.casefold()).strip("_")


def _text(body: str) -> str:
    """Freshdesk's `body_text`: the HTML without tags, a line per paragraph."""
    lines = re.sub(r"<[^>]+>", "", re.sub(r"</p>|<br\s*/?>", "\n", body)).split("\n")
    return "\n".join(html.unescape(line).strip() for line in lines if line.strip())


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a human's move under the server's lock, so a demo thread and requests never interleave."""

    @functools.wraps(method)
    def wrapper(self: FreshdeskAccount, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper


class FreshdeskAccount:
    """Account state and Freshdesk's update rules; mixed into the sandbox app (which provides `lock`)."""

    lock: threading.RLock

    def setup_account(self, clock: Clock | None, custom_statuses: Mapping[int, str] | None,
                      required_for_closure: tuple[str, ...]) -> None:
        """Empty account state on `clock` (default: the real UTC time)."""
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.custom_statuses = dict(CUSTOM_STATUSES if custom_statuses is None else custom_statuses)
        self.required_for_closure = tuple(required_for_closure)
        self.tickets: dict[int, dict[str, Any]] = {}
        self.conversations: dict[int, list[dict[str, Any]]] = {}
        self.agents: dict[int, dict[str, Any]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.companies: dict[int, dict[str, Any]] = {}
        self.custom_fields: dict[str, dict[str, Any]] = {}
        self.me: int | None = None
        self._next_id = {"ticket": 1, "contact": 9_000_001, "conversation": 1}

    def now(self) -> datetime:
        """The sandbox's time, to the second like Freshdesk's timestamps."""
        return self.clock().astimezone(UTC).replace(microsecond=0)

    def add_group(self, group_id: int, name: str, agent_ids: list[int] | tuple[int, ...] = (),
                  description: str = "") -> dict[str, Any]:
        """A group and its member agents."""
        now = stamp(self.now())
        self.groups[group_id] = {"id": group_id, "name": name, "description": description, "escalate_to": None,
                                 "unassigned_for": "30m", "business_hour_id": None, "group_type":
                                 "support_agent_group", "auto_ticket_assign": 0, "created_at": now,
                                 "updated_at": now, "agent_ids": list(agent_ids)}
        return self.groups[group_id]

    def add_agent(self, agent_id: int, name: str, email: str, *, group_ids: tuple[int, ...] | list[int] = (),
                  available: bool = True, active: bool = True) -> dict[str, Any]:
        """An agent (and its memberships in existing groups)."""
        now = stamp(self.now())
        self.agents[agent_id] = {"id": agent_id, "available": available, "available_since": None,
                                 "occasional": False, "ticket_scope": 1, "type": "support_agent",
                                 "signature": None, "last_active_at": now, "created_at": now, "updated_at": now,
                                 "contact": {"name": name, "email": email, "active": active, "phone": None,
                                             "mobile": None, "job_title": None, "language": "en",
                                             "time_zone": "UTC"}}
        for group_id in group_ids:
            members = self.groups[group_id]["agent_ids"]
            if agent_id not in members:
                members.append(agent_id)
        self.me = self.me or agent_id
        return self.agents[agent_id]

    def add_contact(self, name: str, email: str, *, contact_id: int | None = None,
                    company_id: int | None = None) -> dict[str, Any]:
        """A requester."""
        if contact_id is None:
            contact_id = self._next_id["contact"]
            self._next_id["contact"] += 1
        self.contacts[contact_id] = {"id": contact_id, "name": name, "email": email, "mobile": None,
                                     "phone": None, "company_id": company_id}
        return self.contacts[contact_id]

    @_locked
    def add_ticket(self, **fields: Any) -> dict[str, Any]:
        """A ticket with Freshdesk-native fields (status 2, priority 1, source 2 unless given); returns it."""
        now = self.now()
        ticket_id = int(fields.pop("id", self._next_id["ticket"]))
        self._next_id["ticket"] = max(self._next_id["ticket"], ticket_id + 1)
        created = parse_time(fields.pop("created_at", None) or stamp(now)) or now
        if "requester_id" not in fields:
            contact = self.add_contact(f"Customer {ticket_id}", f"customer{ticket_id}@mail.example")
            fields["requester_id"] = contact["id"]
        priority = int(fields.get("priority", 1))
        respond, resolve = DEFAULT_SLA[priority]
        description = fields.pop("description", f"Ticket {ticket_id}")
        ticket: dict[str, Any] = {
            "id": ticket_id, "subject": f"Ticket {ticket_id}", "status": 2, "priority": priority, "source": 2,
            "type": None, "group_id": None, "responder_id": None, "company_id": None, "tags": [],
            "custom_fields": {}, "spam": False, "deleted": False, "cc_emails": [], "fwd_emails": [],
            "reply_cc_emails": [], "to_emails": None, "product_id": None, "email_config_id": None,
            "support_email": None, "fr_due_by": stamp(created + timedelta(seconds=respond)),
            "due_by": stamp(created + timedelta(seconds=resolve)), "nr_due_by": None,
            "description": f"<div>{html.escape(description)}</div>", "description_text": description,
            "created_at": stamp(created), "updated_at": stamp(created),
            "stats": {"first_responded_at": None, "agent_responded_at": None, "requester_responded_at": None,
                      "status_updated_at": stamp(created), "pending_since": None, "resolved_at": None,
                      "closed_at": None, "reopened_at": None},
        }
        ticket["company_id"] = self.contacts.get(fields["requester_id"], {}).get("company_id")
        ticket["stats"].update(fields.pop("stats", {}))
        ticket.update(fields)
        ticket["updated_at"] = stamp(parse_time(ticket["updated_at"]))
        self.tickets[ticket_id] = ticket
        self.conversations.setdefault(ticket_id, [])
        return ticket

    def _touch(self, ticket: dict[str, Any], changes: Mapping[str, Any]) -> None:
        now = stamp(self.now())
        stats = ticket["stats"]
        if "status" in changes and changes["status"] != ticket["status"]:
            stats["status_updated_at"] = now
            if changes["status"] == 3:
                stats["pending_since"] = now
            if changes["status"] in (4, 5):
                stats["resolved_at"] = stats["resolved_at"] or now
                stats["closed_at"] = now if changes["status"] == 5 else stats["closed_at"]
            elif ticket["status"] in (4, 5):
                stats["reopened_at"], stats["resolved_at"], stats["closed_at"] = now, None, None
        ticket.update(changes)
        ticket["updated_at"] = now

    @_locked
    def human_update(self, ticket_id: int, **changes: Any) -> dict[str, Any]:
        """An agent edits the ticket in the Freshdesk UI (e.g. `tags=[...]`, `status=4`); bumps updated_at."""
        self._touch(self.tickets[ticket_id], changes)
        return self.tickets[ticket_id]

    def _conversation(self, ticket_id: int, body: str, *, incoming: bool, private: bool, source: int,
                      user_id: int | None) -> dict[str, Any]:
        now = stamp(self.now())
        item = {"id": self._next_id["conversation"], "body": f"<div>{html.escape(body)}</div>" if incoming
                else body, "body_text": body if incoming else _text(body),
                "incoming": incoming, "private": private, "source": source, "user_id": user_id,
                "ticket_id": ticket_id, "to_emails": [], "attachments": [], "created_at": now, "updated_at": now}
        self._next_id["conversation"] += 1
        self.conversations.setdefault(ticket_id, []).append(item)
        return item

    @_locked
    def customer_reply(self, ticket_id: int, body: str = "Any update?") -> dict[str, Any]:
        """The requester writes back: reopens pending/resolved tickets, starts the next-response clock."""
        ticket = self.tickets[ticket_id]
        self._conversation(ticket_id, body, incoming=True, private=False, source=0, user_id=ticket["requester_id"])
        ticket["stats"]["requester_responded_at"] = stamp(self.now())
        changes: dict[str, Any] = {"status": 2} if ticket["status"] in (3, 4, 5) else {}
        if ticket["stats"]["agent_responded_at"]:
            changes["nr_due_by"] = stamp(self.now() + timedelta(seconds=DEFAULT_SLA[ticket["priority"]][0]))
        self._touch(ticket, changes)
        return ticket

    @_locked
    def agent_reply(self, ticket_id: int, body: str = "Thanks, looking into it.", *, agent_id: int | None = None,
                    status: int | None = None) -> dict[str, Any]:
        """An agent answers the customer (optionally setting a status, e.g. 3 pending)."""
        ticket = self.tickets[ticket_id]
        author = agent_id or ticket["responder_id"] or self.me
        self._conversation(ticket_id, html.escape(body), incoming=False, private=False, source=0, user_id=author)
        stats = ticket["stats"]
        stats["agent_responded_at"] = stamp(self.now())
        stats["first_responded_at"] = stats["first_responded_at"] or stats["agent_responded_at"]
        self._touch(ticket, {"nr_due_by": None, **({"status": status} if status else {})})
        return ticket

    @_locked
    def load_queue(self, queue: Queue) -> None:
        """Fill the account from the shared, platform-neutral seed queue (bot.sandbox.seed)."""
        on_hold = next((c for c, n in sorted(self.custom_statuses.items()) if re.search("hold|wait", n, re.I)), 3)
        for group in queue.groups:
            self.add_group(group.id, group.name, description=group.description)
        for agent in queue.agents:
            self.add_agent(agent.id, agent.name, agent.email, group_ids=agent.group_ids,
                           available=agent.available, active=agent.active)
        for org in queue.organizations:
            self.companies[org.id] = {"id": org.id, "name": org.name, "domains": [org.domain]}
        for person in queue.requesters:
            self.add_contact(person.name, person.email, contact_id=person.id, company_id=person.organization_id)
        names = {spec.key: field_name(spec.title) for spec in queue.custom_fields}
        for spec in queue.custom_fields:
            self.custom_fields[names[spec.key]] = {"label": spec.title, "type": f"custom_{spec.type}",
                                                   "choices": list(spec.options)}
        for seeded in queue.tickets:
            priority = _SEED_PRIORITY[seeded.priority]
            customer_again = seeded.last_customer_update_at not in (None, seeded.created_at)
            ticket = self.add_ticket(
                id=seeded.id, subject=seeded.subject, description=seeded.description,
                status=on_hold if seeded.status == "on_hold" else _SEED_STATUS[seeded.status],
                priority=priority, source=_SEED_SOURCE.get(seeded.channel, 2),
                type=seeded.type.capitalize() if seeded.type else None, group_id=seeded.group_id,
                responder_id=seeded.assignee_id, requester_id=seeded.requester_id, tags=list(seeded.tags),
                custom_fields={names.get(k, f"cf_{k}"): v for k, v in seeded.custom.items()},
                created_at=stamp(seeded.created_at), updated_at=stamp(seeded.updated_at),
                stats={"first_responded_at": stamp(seeded.first_responded_at),
                       "agent_responded_at": stamp(seeded.last_agent_update_at),
                       "requester_responded_at": stamp(seeded.last_customer_update_at) if customer_again else None,
                       "status_updated_at": stamp(seeded.status_changed_at or seeded.created_at),
                       "pending_since": stamp(seeded.status_changed_at) if seeded.status == "pending" else None,
                       "resolved_at": stamp(seeded.solved_at),
                       "closed_at": stamp(seeded.solved_at) if seeded.status == "closed" else None})
            if customer_again and seeded.last_agent_update_at:
                respond = DEFAULT_SLA[priority][0]
                ticket["nr_due_by"] = stamp(seeded.last_customer_update_at + timedelta(seconds=respond))
            for comment in seeded.comments[1:]:  # the first one is the description
                item = self._conversation(seeded.id, comment.body, incoming=comment.author == "customer",
                                          private=not comment.public, source=0 if comment.public else 2,
                                          user_id=comment.author_id)
                item["created_at"] = item["updated_at"] = stamp(comment.created_at)

    def public(self, ticket: dict[str, Any], includes: list[str], listing: bool = False) -> dict[str, Any]:
        """The ticket as the API shows it: escalation flags now, includes on request."""
        now = stamp(self.now())
        out = {k: v for k, v in ticket.items() if k not in ("stats", "deleted", "description", "description_text")}
        out["fr_escalated"] = bool(ticket["fr_due_by"] and ticket["fr_due_by"] < now
                                   and not ticket["stats"]["first_responded_at"])
        out["nr_escalated"] = bool(ticket["nr_due_by"] and ticket["nr_due_by"] < now)
        out["is_escalated"] = bool(ticket["due_by"] and ticket["due_by"] < now and ticket["status"] not in (4, 5))
        out["tags"] = list(ticket["tags"])
        out["custom_fields"] = {**{name: None for name in self.custom_fields}, **ticket["custom_fields"]}
        if not listing or "description" in includes:
            out["description"], out["description_text"] = ticket["description"], ticket["description_text"]
        if "stats" in includes:
            out["stats"] = dict(ticket["stats"])
        if "requester" in includes:
            person = self.contacts.get(ticket["requester_id"], {})
            out["requester"] = {k: person.get(k) for k in ("id", "name", "email", "mobile", "phone")}
        if "company" in includes and ticket.get("company_id") in self.companies:
            company = self.companies[ticket["company_id"]]
            out["company"] = {"id": company["id"], "name": company["name"]}
        if "conversations" in includes:
            out["conversations"] = self.conversations.get(ticket["id"], [])[-10:]
        return out

    def ticket_fields(self) -> list[dict[str, Any]]:
        choices = {"2": ["Open", "Being Processed"], "3": ["Pending", "Awaiting your Reply"],
                   "4": ["Resolved", "This ticket has been Resolved"], "5": ["Closed", "This ticket has been Closed"]}
        choices.update({str(code): [name, name] for code, name in self.custom_statuses.items()})
        fields = [{"id": 1, "name": "subject", "label": "Subject", "type": "default_subject", "default": True},
                  {"id": 2, "name": "status", "label": "Status", "type": "default_status", "default": True,
                   "choices": choices},
                  {"id": 3, "name": "priority", "label": "Priority", "type": "default_priority", "default": True,
                   "choices": {"Low": 1, "Medium": 2, "High": 3, "Urgent": 4}}]
        for index, (name, spec) in enumerate(self.custom_fields.items()):
            fields.append({"id": 100 + index, "name": name, "label": spec["label"], "type": spec["type"],
                           "default": False, "choices": spec["choices"],
                           "required_for_closure": name in self.required_for_closure})
        return fields
