"""A fake Freshdesk (API v2 subset) that behaves like the real one, for tests, the demo and trying rules.

It serves bare JSON arrays/objects, `Link: <...>; rel="next"` pagination with
its own host, the 30-day default window without `updated_since`, 400 past page
300, Basic auth (API key as user, 401 with Freshdesk's body), field-level 400
validation, 415 without JSON, and `X-Ratelimit-*` headers on every answer with
a per-minute credit budget (each include costs one more credit; 429 with
`Retry-After` once spent). Time comes from an injected `clock`, so tests and an
accelerated demo can move it; state and the humans' moves are in
`bot.sandbox.freshdesk_state`.

    app = FreshdeskSandbox(clock=clock)
    app.load_queue(seed.generate(7))
    with serve(app) as server:   # FRESHDESK_URL=server.url
        app.customer_reply(12)
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from bot.sandbox.freshdesk_state import Clock, FreshdeskAccount, parse_time
from bot.sandbox.server import Fault, SandboxApp, json_response

__all__ = ["FreshdeskSandbox"]

LIST_INCLUDES = {"stats", "requester", "description", "company"}
VIEW_INCLUDES = {"stats", "requester", "company", "conversations"}
ORDER_BY = {"created_at", "due_by", "updated_at", "status"}
WRITABLE = {"subject", "status", "priority", "responder_id", "group_id", "tags", "type", "custom_fields",
            "due_by", "fr_due_by", "description"}


def invalid(field: str, message: str, code: str = "invalid_value", status: int = 400) -> Response:
    """Freshdesk's validation error body for one field."""
    return json_response({"description": "Validation failed",
                          "errors": [{"field": field, "message": message, "code": code}]}, status)


class FreshdeskSandbox(FreshdeskAccount, SandboxApp):
    """The fake account served over HTTP like `{domain}.freshdesk.com/api/v2`."""

    def __init__(self, *, api_key: str = "sandbox-api-key", clock: Clock | None = None, rate_limit: int = 700,
                 page_wall: int = 300, custom_statuses: Mapping[int, str] | None = None,
                 required_for_closure: tuple[str, ...] = ()):
        SandboxApp.__init__(self)
        self.setup_account(clock, custom_statuses, required_for_closure)
        self.api_key, self.rate_limit, self.page_wall = api_key, rate_limit, page_wall
        # Scripted interleavings for tests: `before(request)` runs first (e.g. a human edits a ticket) and may
        # answer instead; `after(request, response)` may replace the answer (e.g. a 502 after the write).
        self.before: list[Callable[[Request], Response | None]] = []
        self.after: list[Callable[[Request, Response], Response | None]] = []
        self._window, self._used = -1, 0

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
            ("GET", r"/api/v2/ticket_fields", lambda: json_response(self.ticket_fields())),
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
            since = parse_time(args["updated_since"])
            if since is None:
                return invalid("updated_since", "It should be in the 'valid date time' format")
            chosen = [t for t in self.tickets.values() if parse_time(t["updated_at"]) >= since]
        else:  # like Freshdesk: only tickets created in the last 30 days
            floor = self.now() - timedelta(days=30)
            chosen = [t for t in self.tickets.values() if parse_time(t["created_at"]) >= floor]
        chosen = [t for t in chosen if not t["spam"] and not t["deleted"]]
        chosen.sort(key=lambda t: (t.get(order_by) or "", t["id"]), reverse=order_type == "desc")
        return self._page(request, [self.public(t, includes, listing=True) for t in chosen])

    def _show_ticket(self, ticket_id: int, includes: list[str]) -> Response:
        ticket = self.tickets.get(ticket_id)
        if ticket is None or ticket["deleted"]:
            return Response(b"", status=404)
        if any(i not in VIEW_INCLUDES for i in includes):
            return invalid("include", f"It should be one of these values: {','.join(sorted(VIEW_INCLUDES))}")
        return json_response(self.public(ticket, includes))

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
        return json_response(self.public(ticket, []))

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
