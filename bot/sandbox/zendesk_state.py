"""The fake Zendesk account behind the sandbox: tickets and people in Zendesk's own shapes.

`ZendeskAccount` loads a `bot.sandbox.seed` queue and renders it as the API
does (status `hold`, `via.channel`, `custom_fields` by id,
`generated_timestamp`, metric sets, SLA policy metrics, sideloads). Update
rules and the humans' helpers are in `zendesk_updates`, HTTP in
`bot.sandbox.zendesk`; nothing here does I/O.
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

    # --- loading ---------------------------------------------------------------------------

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

    def sideloads(self, tickets: Iterable[StoredTicket], include: set[str]) -> dict[str, Any]:
        """The arrays `include=users,groups,organizations,metric_sets` adds next to the tickets."""
        tickets = list(tickets)
        out: dict[str, Any] = {}
        if "users" in include:
            ids = {t.data.get(k) for t in tickets for k in ("requester_id", "assignee_id", "submitter_id")}
            out["users"] = [self.users[i] for i in sorted(i for i in ids if i in self.users)]
        if "groups" in include:
            ids = {t.data.get("group_id") for t in tickets}
            out["groups"] = [self.groups[i] for i in sorted(i for i in ids if i in self.groups)]
        if "organizations" in include:
            ids = {t.data.get("organization_id") for t in tickets}
            out["organizations"] = [self.organizations[i] for i in sorted(i for i in ids if i in self.organizations)]
        if "metric_sets" in include:
            out["metric_sets"] = [self.metric_set(t) for t in tickets if not t.deleted]
        return out
