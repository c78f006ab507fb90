"""A fake Freshdesk (API v2 subset) that behaves like the real one, for tests, the demo and trying rules.

It serves bare JSON arrays/objects, `Link: <...>; rel="next"` pagination with
its own host, the 30-day default window without `updated_since`, 400 past page
300, Basic auth (API key as user, 401 with Freshdesk's body), field-level 400
validation, 415 without JSON, and `X-Ratelimit-*` headers on every answer with
a per-minute credit budget (each include costs one more credit; 429 with
`Retry-After` once spent). Time comes from an injected `clock`, so tests and an
accelerated demo can move it. `load_queue(bot.sandbox.seed.generate())` fills it.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from bot.sandbox.seed import Queue
from bot.sandbox.server import Fault, SandboxApp, json_response

Clock = Callable[[], datetime]
# seconds to first response and to resolution by priority code, like a default SLA policy
DEFAULT_SLA = {4: (3600, 4 * 3600), 3: (4 * 3600, 24 * 3600), 2: (8 * 3600, 72 * 3600), 1: (24 * 3600, 120 * 3600)}
CUSTOM_STATUSES = {6: "Waiting on Customer", 7: "Waiting on Third Party"}
LIST_INCLUDES = {"stats", "requester", "description", "company"}
VIEW_INCLUDES = {"stats", "requester", "company", "conversations"}
ORDER_BY = {"created_at", "due_by", "updated_at", "status"}
WRITABLE = {"subject", "status", "priority", "responder_id", "group_id", "tags", "type", "custom_fields",
            "due_by", "fr_due_by", "description"}
_SEED_STATUS = {"new": 2, "open": 2, "pending": 3, "solved": 4, "closed": 5}
_SEED_PRIORITY = {None: 2, "low": 1, "normal": 2, "high": 3, "urgent": 4}
_SEED_SOURCE = {"email": 1, "web": 2, "api": 2, "phone": 3, "chat": 7}


def stamp(moment: datetime | None) -> str | None:
    """Freshdesk's timestamp text, to the second."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def invalid(field: str, message: str, code: str = "invalid_value", status: int = 400) -> Response:
    """Freshdesk's validation error body for one field."""
    return json_response({"description": "Validation failed",
                          "errors": [{"field": field, "message": message, "code": code}]}, status)


class FreshdeskSandbox(SandboxApp):
    """The fake account: tickets, conversations, agents, groups, contacts, companies, ticket fields."""

    def __init__(self, *, api_key: str = "sandbox-api-key", clock: Clock | None = None, rate_limit: int = 700,
                 page_wall: int = 300, custom_statuses: Mapping[int, str] | None = None,
                 required_for_closure: tuple[str, ...] = ()):
        super().__init__()
        self.api_key, self.rate_limit, self.page_wall = api_key, rate_limit, page_wall
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
        # Scripted interleavings for tests: `before(request)` runs first (e.g. a human edits a ticket) and may
        # answer instead; `after(request, response)` may replace the answer (e.g. a 502 after the write).
        self.before: list[Callable[[Request], Response | None]] = []
        self.after: list[Callable[[Request, Response], Response | None]] = []
        self._next_id = {"ticket": 1, "contact": 9_000_001, "conversation": 1}
        self._window, self._used = -1, 0

    def now(self) -> datetime:
        """The sandbox's time, to the second like Freshdesk's timestamps."""
        return self.clock().astimezone(UTC).replace(microsecond=0)

    # -- seeding and test helpers ---------------------------------------------------------------------

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

    def add_ticket(self, **fields: Any) -> dict[str, Any]:
        """A ticket with Freshdesk-native fields (status 2, priority 1, source 2 unless given); returns it."""
        now = self.now()
        ticket_id = int(fields.pop("id", self._next_id["ticket"]))
        self._next_id["ticket"] = max(self._next_id["ticket"], ticket_id + 1)
        created = _parse(fields.pop("created_at", None) or stamp(now)) or now
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
        ticket["updated_at"] = stamp(_parse(ticket["updated_at"]))
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

    def human_update(self, ticket_id: int, **changes: Any) -> dict[str, Any]:
        """An agent edits the ticket in the Freshdesk UI (e.g. `tags=[...]`, `status=4`); bumps updated_at."""
        self._touch(self.tickets[ticket_id], changes)
        return self.tickets[ticket_id]

    def _conversation(self, ticket_id: int, body: str, *, incoming: bool, private: bool, source: int,
                      user_id: int | None) -> dict[str, Any]:
        now = stamp(self.now())
        item = {"id": self._next_id["conversation"], "body": f"<div>{html.escape(body)}</div>" if incoming
                else body, "body_text": body if incoming else re.sub(r"<[^>]+>", "", html.unescape(body)),
                "incoming": incoming, "private": private, "source": source, "user_id": user_id,
                "ticket_id": ticket_id, "to_emails": [], "attachments": [], "created_at": now, "updated_at": now}
        self._next_id["conversation"] += 1
        self.conversations.setdefault(ticket_id, []).append(item)
        return item

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
        for spec in queue.custom_fields:
            self.custom_fields[f"cf_{spec.key}"] = {"label": spec.title, "type": f"custom_{spec.type}",
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
                custom_fields={f"cf_{k}": v for k, v in seeded.custom.items()},
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

    # -- HTTP -----------------------------------------------------------------------------------------

    def _charge(self, cost: int) -> tuple[dict[str, str], Response | None]:
        """Spend credits of the current minute; a 429 once the account's budget is gone."""
        now = self.now()
        window = int(now.timestamp() // 60)
        if window != self._window:
            self._window, self._used = window, 0
        if self._used + cost > self.rate_limit:
            wait = 60 - int(now.timestamp()) % 60
            headers = self._rate_headers(0)
            headers["Retry-After"] = str(wait)
            return headers, json_response({"message": "You have exceeded the limit of requests per minute"},
                                          429, headers)
        self._used += cost
        return self._rate_headers(cost), None

    def _rate_headers(self, cost: int) -> dict[str, str]:
        return {"X-Ratelimit-Total": str(self.rate_limit), "X-Ratelimit-Remaining":
                str(max(0, self.rate_limit - self._used)), "X-Ratelimit-Used-CurrentRequest": str(cost)}

    def fault_response(self, fault: Fault) -> Response:
        """Injected faults carry the rate-limit headers like every real answer."""
        response = super().fault_response(fault)
        with self.lock:
            headers = self._rate_headers(0 if fault.status == 429 else 1)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user = base64.b64decode(header[6:]).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.api_key

    def handle(self, request: Request) -> Response:
        """Auth, credits, routing; every answer carries the rate-limit headers."""
        includes = [i for i in request.args.get("include", "").split(",") if i]
        headers, refusal = self._charge(1 + len(includes))
        if refusal is not None:
            return refusal
        answers = [hook(request) for hook in list(self.before)]
        response = next((answer for answer in answers if answer is not None), None)
        if response is None and not self._authorized(request):
            response = json_response({"code": "invalid_credentials",
                                      "message": "You have to be logged in to perform this action."}, 401)
        if response is None:
            response = self._route(request, includes)
        for hook in list(self.after):
            replaced = hook(request, response)
            response = response if replaced is None else replaced
        for name, value in headers.items():
            response.headers[name] = value
        return response

    def _route(self, request: Request, includes: list[str]) -> Response:
        path, method = request.path.rstrip("/"), request.method
        if method in ("PUT", "POST") and request.mimetype != "application/json":
            return json_response({"code": "invalid_content_type",
                                  "message": "Content-Type header should have application/json"}, 415)
        routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", r"/api/v2/tickets", lambda: self._list_tickets(request, includes)),
            ("GET", r"/api/v2/tickets/(\d+)", lambda i: self._show_ticket(int(i), includes)),
            ("PUT", r"/api/v2/tickets/(\d+)", lambda i: self._update_ticket(int(i), request)),
            ("POST", r"/api/v2/tickets/(\d+)/notes", lambda i: self._add_note(int(i), request)),
            ("GET", r"/api/v2/tickets/(\d+)/conversations",
             lambda i: self._page(request, self.conversations.get(int(i), []), int(i) in self.tickets)),
            ("GET", r"/api/v2/agents", lambda: self._page(request, [self._agent(a) for a in self.agents])),
            ("GET", r"/api/v2/agents/me", lambda: self._one(self.me in self.agents and self._agent(self.me))),
            ("GET", r"/api/v2/agents/(\d+)", lambda i: self._one(int(i) in self.agents and self._agent(int(i)))),
            ("GET", r"/api/v2/groups", lambda: self._page(request, [self._group(g) for g in self.groups])),
            ("GET", r"/api/v2/groups/(\d+)", lambda i: self._one(self.groups.get(int(i)))),
            ("GET", r"/api/v2/admin/groups/(\d+)/agents", lambda i: self._page(
                request, [self._agent(a) for a in self.groups.get(int(i), {}).get("agent_ids", [])
                          if a in self.agents], int(i) in self.groups)),
            ("GET", r"/api/v2/ticket_fields", lambda: json_response(self._ticket_fields())),
        ]
        allowed = []
        for verb, pattern, action in routes:
            match = re.fullmatch(pattern, path)
            if match:
                if verb == method:
                    return action(*match.groups())
                allowed.append(verb)
        if allowed:
            return json_response({"code": "method_not_allowed", "message": f"Allowed: {', '.join(allowed)}"}, 405)
        return Response(b"", status=404)

    def _one(self, record: Any) -> Response:
        return json_response(record) if record else Response(b"", status=404)

    def _page(self, request: Request, items: list[Any], exists: bool = True, default: int = 30) -> Response:
        """One page of a list, with a Link to the next (same query, next page) on our own host."""
        if not exists:
            return Response(b"", status=404)
        try:
            per_page, page = int(request.args.get("per_page", default)), int(request.args.get("page", 1))
        except ValueError:
            return invalid("per_page", "It should be a/an Positive Integer", "datatype_mismatch")
        if not 1 <= per_page <= 100:
            return invalid("per_page", "It should be a/an Positive Integer with a maximum value of 100")
        if page < 1 or page > self.page_wall:
            return invalid("page", f"You cannot access pages beyond {self.page_wall}; use updated_since")
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if len(items) > page * per_page:
            query = {**request.args.to_dict(), "page": str(page + 1)}
            headers["Link"] = f'<{self.base_url}{request.path}?{urlencode(query)}>; rel="next"'
        return json_response(chunk, headers=headers)

    def _list_tickets(self, request: Request, includes: list[str]) -> Response:
        args = request.args
        bad = [i for i in includes if i not in LIST_INCLUDES]
        if bad:
            return invalid("include", f"It should be one of these values: {','.join(sorted(LIST_INCLUDES))}")
        order_by, order_type = args.get("order_by", "created_at"), args.get("order_type", "desc")
        if order_by not in ORDER_BY or order_type not in ("asc", "desc"):
            return invalid("order_by" if order_by not in ORDER_BY else "order_type",
                           f"It should be one of these values: {','.join(sorted(ORDER_BY))}")
        if "updated_since" in args:
            since = _parse(args["updated_since"])
            if since is None:
                return invalid("updated_since", "It should be in the 'valid date time' format")
            chosen = [t for t in self.tickets.values() if _parse(t["updated_at"]) >= since]
        else:  # like Freshdesk: only tickets created in the last 30 days
            floor = self.now() - timedelta(days=30)
            chosen = [t for t in self.tickets.values() if _parse(t["created_at"]) >= floor]
        chosen = [t for t in chosen if not t["spam"] and not t["deleted"]]
        chosen.sort(key=lambda t: (t.get(order_by) or "", t["id"]), reverse=order_type == "desc")
        return self._page(request, [self._public(t, includes, listing=True) for t in chosen])

    def _public(self, ticket: dict[str, Any], includes: list[str], listing: bool = False) -> dict[str, Any]:
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

    def _show_ticket(self, ticket_id: int, includes: list[str]) -> Response:
        ticket = self.tickets.get(ticket_id)
        if ticket is None or ticket["deleted"]:
            return Response(b"", status=404)
        if any(i not in VIEW_INCLUDES for i in includes):
            return invalid("include", f"It should be one of these values: {','.join(sorted(VIEW_INCLUDES))}")
        return json_response(self._public(ticket, includes))

    def _update_ticket(self, ticket_id: int, request: Request) -> Response:
        ticket = self.tickets.get(ticket_id)
        if ticket is None or ticket["deleted"]:
            return Response(b"", status=404)
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return invalid("body", "Request body has invalid json format", "invalid_json")
        if not isinstance(body, dict):
            return invalid("body", "Request body has invalid json format", "invalid_json")
        errors = self._validate(ticket, body)
        if errors:
            return json_response({"description": "Validation failed", "errors": errors}, 400)
        if "custom_fields" in body:
            body = {**body, "custom_fields": {**ticket["custom_fields"], **body["custom_fields"]}}
        self._touch(ticket, body)
        return json_response(self._public(ticket, []))

    def _validate(self, ticket: dict[str, Any], body: dict[str, Any]) -> list[dict[str, str]]:
        errors = [{"field": k, "message": "Unexpected/invalid field in request", "code": "invalid_field"}
                  for k in body if k not in WRITABLE]
        statuses = [2, 3, 4, 5, *sorted(self.custom_statuses)]
        checks = [("status", lambda v: v in statuses, "It should be one of these values: "
                   + ",".join(map(str, statuses))),
                  ("priority", lambda v: v in (1, 2, 3, 4), "It should be one of these values: 1,2,3,4"),
                  ("responder_id", lambda v: v is None or v in self.agents, "There is no agent matching the "
                   "given responder_id"),
                  ("group_id", lambda v: v is None or v in self.groups, "There is no group matching the "
                   "given group_id"),
                  ("tags", lambda v: isinstance(v, list) and all(isinstance(t, str) for t in v),
                   "It should be a/an Array of String")]
        errors += [{"field": name, "message": message, "code": "invalid_value"}
                   for name, ok, message in checks if name in body and not ok(body[name])]
        if body.get("status") in (4, 5):
            values = {**ticket["custom_fields"], **(body.get("custom_fields") or {})}
            errors += [{"field": name, "message": "It should be a/an String", "code": "missing_field"}
                       for name in self.required_for_closure if values.get(name) in (None, "")]
        return errors

    def _add_note(self, ticket_id: int, request: Request) -> Response:
        ticket = self.tickets.get(ticket_id)
        if ticket is None or ticket["deleted"]:
            return Response(b"", status=404)
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return invalid("body", "Request body has invalid json format", "invalid_json")
        if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not body["body"]:
            return invalid("body", "It should be a/an String", "missing_field")
        note = self._conversation(ticket_id, body["body"], incoming=bool(body.get("incoming", False)),
                                  private=bool(body.get("private", True)), source=2,
                                  user_id=body.get("user_id") or self.me)
        self._touch(ticket, {})
        return json_response(note, 201)

    def _agent(self, agent_id: int) -> dict[str, Any]:
        return dict(self.agents[agent_id])  # like the recorded list answer: no group_ids

    def _group(self, group_id: int) -> dict[str, Any]:
        return {k: v for k, v in self.groups[group_id].items() if k != "agent_ids"}  # absent from lists

    def _ticket_fields(self) -> list[dict[str, Any]]:
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
