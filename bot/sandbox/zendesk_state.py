"""The fake Zendesk account behind the sandbox: tickets, people, metrics, SLAs and update rules.

`ZendeskAccount` holds the state in Zendesk's own shapes (status `hold`,
`via.channel`, `custom_fields` by id, `generated_timestamp`), applies updates
the way Zendesk does (safe update -> 409, closed -> 422, assignee outside the
group -> 422, audits with events) and offers helpers that play the humans:
`human_update`, `customer_reply`, `agent_reply`. The HTTP layer is in
`bot.sandbox.zendesk`; this module does no I/O.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.sandbox import seed

STATUS_ORDER = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
TYPES = ("problem", "incident", "question", "task")
_CHANNELS = {"phone": "voice"}  # neutral -> Zendesk where the words differ
# Minutes per priority for the sandbox's one SLA policy (Zendesk policies are per account).
DEFAULT_SLA_POLICY: Mapping[str, Mapping[str, int]] = {
    "first_reply_time": {"urgent": 60, "high": 240, "normal": 480, "low": 1440},
    "next_reply_time": {"urgent": 120, "high": 480, "normal": 960, "low": 2880},
    "total_resolution_time": {"urgent": 1440, "high": 4320, "normal": 10080, "low": 20160},
}
BOT_USER_ID = 1


def iso(moment: datetime | None) -> str | None:
    """Zendesk's timestamp text."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: Any) -> datetime | None:
    """A Zendesk timestamp back to an aware datetime (None if absent or malformed)."""
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ManualClock:
    """A settable clock for tests and the accelerated demo: `clock()` reads it, `advance()` moves it."""

    def __init__(self, start: datetime):
        self.now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, by: timedelta | float) -> datetime:
        """Move time forward by a timedelta or seconds."""
        with self._lock:
            self.now += by if isinstance(by, timedelta) else timedelta(seconds=by)
            return self.now


class ApiError(Exception):
    """An error answer in Zendesk's shape."""

    def __init__(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None):
        self.status = status
        self.body = dict(body)
        self.headers = dict(headers or {})
        super().__init__(f"{status} {body}")


def invalid(field_name: str, description: str) -> ApiError:
    """422 RecordInvalid with one detail, as Zendesk answers a refused value."""
    return ApiError(422, {"error": "RecordInvalid", "description": "Record validation errors",
                          "details": {field_name: [{"description": description, "error": "InvalidValue"}]}})


@dataclass
class StoredTicket:
    """One ticket: its public payload plus what Zendesk derives from its history."""

    data: dict[str, Any]
    seq: int
    comments: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    audits: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False


class ZendeskAccount:
    """Account state and Zendesk's update rules; mixed into the sandbox app."""

    lock: threading.RLock

    def setup_account(self, queue: seed.Queue, clock: Callable[[], datetime] | None, *, email: str,
                      sla_policy: Mapping[str, Mapping[str, int]] | None) -> None:
        """Load a seeded queue; `clock` defaults to a `ManualClock` at the queue's `now`."""
        self.clock: Callable[[], datetime] = clock or ManualClock(queue.now)
        self.sla_policy = sla_policy or DEFAULT_SLA_POLICY
        self.queue = queue
        self._seq = itertools.count(1)
        self._ids = itertools.count(1_000_000)
        self.users: dict[int, dict[str, Any]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.organizations: dict[int, dict[str, Any]] = {}
        self.memberships: list[dict[str, Any]] = []
        self.tickets: dict[int, StoredTicket] = {}
        self.field_ids = {f.key: f.id for f in queue.custom_fields}
        created = iso(queue.now - timedelta(days=400))
        self.users[BOT_USER_ID] = {"id": BOT_USER_ID, "name": "deskbot", "email": email, "role": "admin",
                                   "role_type": 4, "active": True, "suspended": False, "created_at": created}
        for g in queue.groups:
            self.groups[g.id] = {"id": g.id, "name": g.name, "description": g.description, "default": False,
                                 "deleted": False, "is_public": True, "created_at": created}
        for a in queue.agents:
            self.users[a.id] = {"id": a.id, "name": a.name, "email": a.email, "role": "agent", "role_type": 0,
                                "active": a.active, "suspended": False, "created_at": created,
                                "default_group_id": a.group_ids[0] if a.group_ids else None}
            for index, group_id in enumerate(a.group_ids):
                self.memberships.append({"id": next(self._ids), "user_id": a.id, "group_id": group_id,
                                         "default": index == 0, "created_at": created})
        for o in queue.organizations:
            self.organizations[o.id] = {"id": o.id, "name": o.name, "domain_names": [o.domain], "tags": o.tags}
        for r in queue.requesters:
            self.users[r.id] = {"id": r.id, "name": r.name, "email": r.email, "role": "end-user", "role_type": None,
                                "active": True, "suspended": False, "organization_id": r.organization_id,
                                "created_at": created}
        for t in sorted(queue.tickets, key=lambda t: (t.updated_at, t.id)):
            self._load(t)

    # --- shapes ----------------------------------------------------------------------------------------

    def ticket_fields(self) -> list[dict[str, Any]]:
        """System fields and the queue's custom fields, as `GET /ticket_fields` lists them."""
        kinds = {"text": "text", "dropdown": "tagger", "checkbox": "checkbox", "integer": "integer"}
        system = [{"id": 10 + i, "type": name, "title": title, "active": True, "removable": False}
                  for i, (name, title) in enumerate((("subject", "Subject"), ("description", "Description"),
                                                     ("status", "Status"), ("tickettype", "Type"),
                                                     ("priority", "Priority"), ("group", "Group"),
                                                     ("assignee", "Assignee")))]
        custom = [{"id": f.id, "type": kinds.get(f.type, "text"), "title": f.title, "active": True,
                   "removable": True, "custom_field_options": [{"name": o.title(), "value": o} for o in f.options]}
                  for f in self.queue.custom_fields]
        return system + custom

    def ticket_json(self, stored: StoredTicket, *, slas: bool = False) -> dict[str, Any]:
        """The ticket as the API returns it (with `slas` inside when that sideload was asked for)."""
        data = dict(stored.data)
        data["url"] = f"{self.api_base}/tickets/{data['id']}.json"
        if stored.deleted:
            data["status"] = "deleted"
        if slas:
            data["slas"] = {"policy_metrics": self.policy_metrics(stored)}
        return data

    @property
    def api_base(self) -> str:
        """This server's API root, so every URL it hands out points back at itself."""
        return f"{getattr(self, 'base_url', 'http://127.0.0.1')}/api/v2"

    def metric_set(self, stored: StoredTicket) -> dict[str, Any]:
        """The ticket's metric set, as the `metric_sets` sideload carries it."""
        m = stored.metrics
        created = parse(stored.data["created_at"])
        first = m.get("first_reply_at")
        minutes = None if first is None or created is None else int((first - created).total_seconds() // 60)
        return {"id": stored.data["id"] + 5_000_000, "ticket_id": stored.data["id"],
                "created_at": stored.data["created_at"], "updated_at": stored.data["updated_at"],
                "reply_time_in_minutes": {"calendar": minutes, "business": minutes},
                "replies": m.get("replies", 0), "reopens": m.get("reopens", 0),
                "assigned_at": iso(m.get("assigned_at")), "initially_assigned_at": iso(m.get("assigned_at")),
                "status_updated_at": iso(m.get("status_updated_at")), "solved_at": iso(m.get("solved_at")),
                "requester_updated_at": iso(m.get("requester_updated_at")),
                "assignee_updated_at": iso(m.get("assignee_updated_at")),
                "latest_comment_added_at": iso(m.get("latest_comment_added_at"))}

    def policy_metrics(self, stored: StoredTicket) -> list[dict[str, Any]]:
        """The SLA clocks of the sandbox policy: active while running, paused or achieved otherwise."""
        data, m = stored.data, stored.metrics
        priority = data.get("priority")
        if priority not in PRIORITIES or stored.deleted:
            return []  # no policy matches a ticket without priority
        now, status = self.clock(), data["status"]
        waiting = status in ("pending", "hold")
        created = parse(data["created_at"]) or now
        out = []

        def clock(metric: str, start: datetime, stage: str) -> None:
            target = self.sla_policy.get(metric, {}).get(priority)
            if target is not None:
                breach = start + timedelta(minutes=target)
                out.append({"metric": metric, "stage": stage, "breach_at": iso(breach) if stage == "active" else None,
                            "minutes": int((breach - now).total_seconds() // 60)})

        first = m.get("first_reply_at")
        clock("first_reply_time", created, "achieved" if first else "paused" if waiting else "active")
        customer, agent = m.get("requester_updated_at"), m.get("agent_replied_at")
        if first and customer and agent and customer > agent and status in ("new", "open"):
            clock("next_reply_time", customer, "active")
        if status in ("solved", "closed"):
            clock("total_resolution_time", created, "achieved")
        else:
            clock("total_resolution_time", created, "active")
        return out

    # --- loading and changing ---------------------------------------------------------------------------

    def _load(self, t: seed.SeedTicket) -> None:
        status = "hold" if t.status == "on_hold" else t.status
        data = {
            "id": t.id, "subject": t.subject, "raw_subject": t.subject, "description": t.description,
            "status": status, "priority": t.priority, "type": t.type, "tags": list(t.tags),
            "group_id": t.group_id, "assignee_id": t.assignee_id, "requester_id": t.requester_id,
            "submitter_id": t.requester_id, "organization_id": t.organization_id, "brand_id": 360000001,
            "custom_fields": [{"id": fid, "value": t.custom.get(key)} for key, fid in self.field_ids.items()],
            "via": {"channel": _CHANNELS.get(t.channel, t.channel), "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": iso(t.created_at), "updated_at": iso(t.updated_at),
            "generated_timestamp": int(t.updated_at.timestamp()), "is_public": True, "collaborator_ids": [],
            "follower_ids": [], "email_cc_ids": [], "external_id": None, "due_at": None, "problem_id": None,
            "has_incidents": False, "satisfaction_rating": None, "ticket_form_id": 360000002,
            "custom_status_id": None, "recipient": None,
        }
        data["fields"] = data["custom_fields"]
        stored = StoredTicket(data=data, seq=next(self._seq))
        for c in t.comments:
            stored.comments.append({"id": next(self._ids), "type": "Comment", "author_id": c.author_id,
                                    "body": c.body, "public": c.public, "created_at": iso(c.created_at)})
        agent_times = [c.created_at for c in t.comments if c.author == "agent" and c.public]
        stored.metrics = {"first_reply_at": t.first_responded_at, "assigned_at": t.assigned_at,
                          "status_updated_at": t.status_changed_at, "solved_at": t.solved_at,
                          "requester_updated_at": t.last_customer_update_at,
                          "assignee_updated_at": t.last_agent_update_at,
                          "agent_replied_at": max(agent_times) if agent_times else None,
                          "latest_comment_added_at": t.comments[-1].created_at if t.comments else None,
                          "replies": len(agent_times)}
        self.tickets[t.id] = stored

    def live(self, ticket_id: int) -> StoredTicket:
        """A ticket that exists and is not deleted, else Zendesk's 404."""
        stored = self.tickets.get(int(ticket_id))
        if stored is None or stored.deleted:
            raise ApiError(404, {"error": "RecordNotFound", "description": "Not found"})
        return stored

    def touch(self, stored: StoredTicket) -> None:
        """Record a change: updated_at and generated_timestamp move, the export sees it again."""
        now = self.clock()
        stored.data["updated_at"] = iso(now)
        stored.data["generated_timestamp"] = int(now.timestamp())
        stored.seq = next(self._seq)

    def update_ticket(self, ticket_id: int, payload: Mapping[str, Any], *, author_id: int = BOT_USER_ID,
                      via: str = "api", bulk: bool = False) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        """Apply a `{"ticket": ...}` body like Zendesk: (ticket, audit, ignored keys) or ApiError."""
        with self.lock:
            stored = self.live(ticket_id)
            data = stored.data
            if data["status"] == "closed":
                raise invalid("status", "Status: closed prevents ticket update")
            stale = parse(payload.get("updated_stamp")) != parse(data["updated_at"])
            if payload.get("safe_update") and payload.get("updated_stamp") and stale:
                raise ApiError(409, {"error": "UpdateConflict",
                                     "description": "Safe Update prevented the update due to outdated ticket "
                                                    "data. Please fetch the latest ticket data and try again."})
            changes, ignored = self._validate(data, payload, bulk=bulk)
            events = self._change(stored, changes, author_id)
            comment = payload.get("comment")
            if isinstance(comment, Mapping) and (comment.get("body") or comment.get("html_body")):
                events.append(self._comment(stored, str(comment.get("body") or comment.get("html_body")),
                                            bool(comment.get("public", True)), int(comment.get("author_id")
                                                                                     or author_id)))
            audit = {"id": next(self._ids), "ticket_id": data["id"], "author_id": author_id,
                     "created_at": iso(self.clock()), "events": events, "via": {"channel": via},
                     "metadata": {"system": {"client": "deskbot"}, "custom": dict(payload.get("metadata") or {})}}
            if events:
                stored.audits.append(audit)
                self.touch(stored)
            return self.ticket_json(stored), audit, ignored

    _WRITABLE = ("subject", "status", "priority", "type", "group_id", "assignee_id", "tags", "custom_fields",
                 "additional_tags", "remove_tags", "due_at", "external_id", "requester_id", "organization_id")
    _CONTROL = ("id", "comment", "safe_update", "updated_stamp", "metadata")

    def _validate(self, data: Mapping[str, Any], payload: Mapping[str, Any], *, bulk: bool
                  ) -> tuple[dict[str, Any], list[str]]:
        changes = {k: v for k, v in payload.items() if k in self._WRITABLE}
        ignored = [k for k in payload if k not in self._WRITABLE and k not in self._CONTROL]
        if not bulk:  # the tag add/remove keys belong to the bulk form; single updates use /tags
            ignored += [k for k in ("additional_tags", "remove_tags") if changes.pop(k, None) is not None]
        if "status" in changes and changes["status"] not in STATUS_ORDER:
            raise invalid("status", f"Status: {changes['status']} is not a valid status")
        if changes.get("priority") not in (None, *PRIORITIES):
            raise invalid("priority", f"Priority: {changes['priority']} is not valid")
        if changes.get("type") not in (None, *TYPES):
            raise invalid("type", f"Type: {changes['type']} is not valid")
        group_id = changes.get("group_id", data.get("group_id"))
        if changes.get("group_id") is not None and int(changes["group_id"]) not in self.groups:
            raise invalid("group_id", f"Group: {changes['group_id']} does not exist")
        assignee = changes.get("assignee_id", data.get("assignee_id"))
        if "assignee_id" in changes and assignee is not None:
            user = self.users.get(int(assignee))
            if user is None or user["role"] not in ("agent", "admin") or not user["active"]:
                raise invalid("assignee_id", "Assignee is not an agent who can be assigned tickets")
            groups = [m["group_id"] for m in self.memberships if m["user_id"] == int(assignee)]
            if group_id is None and groups:
                changes["group_id"] = group_id = groups[0]  # Zendesk picks the agent's default group
            if group_id is not None and int(group_id) not in groups:
                raise invalid("assignee_id", f"Assignee {user['name']} is not a member of the group "
                                             f"{self.groups[int(group_id)]['name']}")
        elif "group_id" in changes and assignee is not None and changes["group_id"] is not None:
            members = {m["user_id"] for m in self.memberships if m["group_id"] == int(changes["group_id"])}
            if int(assignee) not in members:
                changes["assignee_id"] = None  # moving to another group unassigns, as in Zendesk
        return changes, ignored

    def _change(self, stored: StoredTicket, changes: Mapping[str, Any], author_id: int) -> list[dict[str, Any]]:
        data, m, now = stored.data, stored.metrics, self.clock()
        events: list[dict[str, Any]] = []
        tags = list(data["tags"])
        if "tags" in changes:
            tags = sorted(set(changes["tags"] or ()))
        tags = sorted(set(tags) | set(changes.get("additional_tags") or ()))
        tags = [t for t in tags if t not in set(changes.get("remove_tags") or ())]
        updates = {k: v for k, v in changes.items() if k not in ("tags", "additional_tags", "remove_tags")}
        if tags != data["tags"]:
            updates["tags"] = tags
        for name, value in updates.items():
            if name == "custom_fields":
                current = {f["id"]: f for f in data["custom_fields"]}
                for item in value or ():
                    current[int(item["id"])] = {"id": int(item["id"]), "value": item.get("value")}
                value = list(current.values())
            if data.get(name) == value:
                continue
            events.append({"id": next(self._ids), "type": "Change", "field_name": name, "value": value,
                           "previous_value": data.get(name)})
            data[name] = value
            if name == "assignee_id" and value is not None:
                m["assigned_at"] = now
            if name == "status":
                m["status_updated_at"] = now
                if value == "solved":
                    m["solved_at"] = now
        data["fields"] = data["custom_fields"]
        if author_id != BOT_USER_ID and author_id == data.get("assignee_id") and events:
            m["assignee_updated_at"] = now
        return events

    def _comment(self, stored: StoredTicket, body: str, public: bool, author_id: int) -> dict[str, Any]:
        now, m = self.clock(), stored.metrics
        comment = {"id": next(self._ids), "type": "Comment", "author_id": author_id, "body": body,
                   "public": public, "created_at": iso(now)}
        stored.comments.append(comment)
        m["latest_comment_added_at"] = now
        author = self.users.get(author_id, {})
        if author.get("role") == "end-user":
            m["requester_updated_at"] = now
        elif public and author_id != BOT_USER_ID:
            m["first_reply_at"] = m.get("first_reply_at") or now
            m["agent_replied_at"] = now
            m["replies"] = m.get("replies", 0) + 1
            if author_id == stored.data.get("assignee_id"):
                m["assignee_updated_at"] = now
        return {"type": "Comment", **comment}

    def change_tags(self, ticket_id: int, tags: Iterable[str], how: str) -> list[str]:
        """PUT adds, POST replaces, DELETE removes; returns the ticket's tags afterwards."""
        with self.lock:
            stored = self.live(ticket_id)
            if stored.data["status"] == "closed":
                raise invalid("status", "Status: closed prevents ticket update")
            key = {"add": "additional_tags", "set": "tags", "remove": "remove_tags"}[how]
            events = self._change(stored, {key: list(tags)}, BOT_USER_ID)
            if events:
                stored.audits.append({"id": next(self._ids), "ticket_id": ticket_id, "author_id": BOT_USER_ID,
                                      "created_at": iso(self.clock()), "events": events, "via": {"channel": "api"}})
                self.touch(stored)
            return list(stored.data["tags"])

    # --- helpers for tests and the demo -----------------------------------------------------------------

    def add_ticket(self, subject: str = "Help", *, requester_id: int | None = None, **fields: Any) -> int:
        """Create a ticket now (as a customer would); returns its id."""
        with self.lock:
            now = self.clock()
            requester = requester_id or next(u["id"] for u in self.users.values() if u["role"] == "end-user")
            ticket_id = max(self.tickets, default=0) + 1
            neutral = {"status": fields.pop("status", "new"), "priority": fields.pop("priority", None),
                       "type": fields.pop("type", None), "channel": fields.pop("channel", "web"),
                       "tags": list(fields.pop("tags", [])), "group_id": fields.pop("group_id", None),
                       "assignee_id": fields.pop("assignee_id", None), "custom": fields.pop("custom", {})}
            created = fields.pop("created_at", now)
            body = fields.pop("description", f"{subject}. Please help.")
            comments = [seed.SeedComment("customer", requester, body, created)]
            self._load(seed.SeedTicket(id=ticket_id, subject=subject, description=body, requester_id=requester,
                                       organization_id=self.users[requester].get("organization_id"),
                                       created_at=created, updated_at=created, comments=comments,
                                       last_customer_update_at=created, **neutral))
            if fields:
                self.tickets[ticket_id].data.update(fields)
            self.touch(self.tickets[ticket_id])
            return ticket_id

    def human_update(self, ticket_id: int, *, agent_id: int | None = None, **fields: Any) -> dict[str, Any]:
        """An agent changes fields in the Zendesk UI (bypasses the bot's safe-update stamp)."""
        if "status" in fields and fields["status"] == "on_hold":
            fields["status"] = "hold"
        author = agent_id or next(u["id"] for u in self.users.values() if u["role"] == "agent")
        ticket, _, _ = self.update_ticket(ticket_id, fields, author_id=author, via="web")
        return ticket

    def customer_reply(self, ticket_id: int, body: str = "Any news?") -> None:
        """The requester writes again: a public comment that reopens a pending or solved ticket."""
        with self.lock:
            stored = self.live(ticket_id)
            reopen = {"status": "open"} if stored.data["status"] in ("pending", "solved") else {}
            self.update_ticket(ticket_id, {**reopen, "comment": {"body": body, "public": True}},
                               author_id=stored.data["requester_id"], via="email")

    def agent_reply(self, ticket_id: int, body: str = "Thanks, looking into it.", *, agent_id: int | None = None,
                    public: bool = True, status: str | None = "pending") -> None:
        """An agent answers (by default publicly, leaving the ticket pending on the customer)."""
        with self.lock:
            stored = self.live(ticket_id)
            author = agent_id or stored.data.get("assignee_id") or next(
                u["id"] for u in self.users.values() if u["role"] == "agent")
            payload: dict[str, Any] = {"comment": {"body": body, "public": public}}
            if status:
                payload["status"] = status
            self.update_ticket(ticket_id, payload, author_id=author, via="web")

    def delete_ticket(self, ticket_id: int) -> None:
        """Soft-delete a ticket: it leaves the API and shows in the export as `deleted`."""
        with self.lock:
            stored = self.live(ticket_id)
            stored.deleted = True
            self.touch(stored)

    def comments(self, ticket_id: int) -> list[dict[str, Any]]:
        """Every comment on a ticket, public and private, oldest first."""
        with self.lock:
            return [dict(c) for c in self.tickets[int(ticket_id)].comments]

    def private_notes(self, ticket_id: int) -> list[str]:
        """Bodies of the ticket's private comments (what the bot wrote as notes)."""
        return [c["body"] for c in self.comments(ticket_id) if not c["public"]]

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """The ticket's current payload, for assertions."""
        with self.lock:
            return self.ticket_json(self.tickets[int(ticket_id)])

    def audits(self, ticket_id: int) -> list[dict[str, Any]]:
        """Audits written on a ticket since the sandbox started."""
        with self.lock:
            return list(self.tickets[int(ticket_id)].audits)
