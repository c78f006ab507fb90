"""A fake Zendesk Support API on 127.0.0.1, with the real shapes, limits and failure modes.

Implements the subset deskbot uses: the cursor-based incremental ticket
export with sideloads, search export, tickets show / show_many / update /
update_many (per-ticket bodies or one body for `ids`; jobs that move queued
-> working -> completed over successive polls, read one by one or with
job_statuses/show_many), the tag endpoints, users, groups, group memberships and
ticket fields. Every response carries rate-limit headers; the account limit
and the export's 10/min are enforced on the injectable server clock, so the
demo can run accelerated and tests never wait. Faults come from `SandboxApp`.

    app = ZendeskSandbox(seed.generate(7), clock=ManualClock(now))
    with serve(app) as server:   # ZENDESK_URL=server.url
        app.human_update(12, priority="urgent")
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from bot.sandbox import seed
from bot.sandbox.server import Fault, SandboxApp, json_response
from bot.sandbox.zendesk_paging import decode_cursor, decode_index, encode_cursor, encode_index, search_matches
from bot.sandbox.zendesk_state import BOT_USER_ID, ApiError, ManualClock
from bot.sandbox.zendesk_updates import ZendeskUpdates

__all__ = ["ManualClock", "ZendeskSandbox"]

_ID = r"(\d+)(?:\.json)?"
_END = r"(?:\.json)?$"


class ZendeskSandbox(ZendeskUpdates, SandboxApp):
    """The fake Zendesk: state from `bot.sandbox.seed`, HTTP like `{subdomain}.zendesk.com/api/v2`."""

    def __init__(
        self,
        queue: seed.Queue | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        email: str = "deskbot@support.example",
        api_token: str | None = "sandbox-api-token",
        oauth_token: str | None = None,
        rate_limit: int = 400,
        export_limit: int = 10,
        hide_recent: timedelta | None = None,
        too_recent: timedelta = timedelta(minutes=1),
        job_polls: int = 2,
        job_seconds: float = 10.0,
        sla_policy: Mapping[str, Mapping[str, int]] | None = None,
    ):
        SandboxApp.__init__(self)
        self.email, self.api_token, self.oauth_token = email, api_token, oauth_token
        self.setup_account(queue or seed.generate(), clock, email=email, sla_policy=sla_policy)
        self.rate_limit = rate_limit
        self.export_limit = export_limit
        self.hide_recent = hide_recent  # Zendesk hides the last minute of changes from the export
        self.too_recent = too_recent  # a start_time newer than this is a 422
        self.job_polls = job_polls  # a job completes on this poll of its status...
        self.job_seconds = job_seconds  # ...or this long after it was queued, polled or not
        self.jobs: dict[str, dict[str, Any]] = {}
        self._job_failure: str | None = None
        self._calls: deque[datetime] = deque()
        self._exports: deque[datetime] = deque()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("GET", re.compile(r"/api/v2/incremental/tickets/cursor" + _END), self._export),
            ("GET", re.compile(r"/api/v2/search/export" + _END), self._search_export),
            ("GET", re.compile(r"/api/v2/tickets/show_many" + _END), self._show_many),
            ("PUT", re.compile(r"/api/v2/tickets/update_many" + _END), self._update_many),
            ("*", re.compile(r"/api/v2/tickets/(\d+)/tags" + _END), self._tags),
            ("GET", re.compile(r"/api/v2/tickets/(\d+)/comments" + _END), self._comments),
            ("GET", re.compile(r"/api/v2/tickets/" + _ID + "$"), self._show),
            ("PUT", re.compile(r"/api/v2/tickets/" + _ID + "$"), self._update),
            ("GET", re.compile(r"/api/v2/job_statuses/show_many" + _END), self._job_statuses),
            ("GET", re.compile(r"/api/v2/job_statuses/([\w-]+?)" + _END), self._job_status),
            ("GET", re.compile(r"/api/v2/users/me" + _END), self._me),
            ("GET", re.compile(r"/api/v2/users" + _END), self._users),
            ("GET", re.compile(r"/api/v2/groups" + _END), self._groups),
            ("GET", re.compile(r"/api/v2/group_memberships" + _END), self._memberships),
            ("GET", re.compile(r"/api/v2/ticket_fields" + _END), self._ticket_fields),
        ]

    # --- plumbing --------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Authenticate, count against the limits, route, and stamp rate-limit headers on the answer."""
        try:
            self._authenticate(request)
            self._spend(request)
            self.run_due_jobs()
            response = self._route(request)
        except ApiError as error:
            response = json_response(error.body, error.status, error.headers)
        response.headers.update(self.rate_headers())
        return response

    def _route(self, request: Request) -> Response:
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match and method in ("*", request.method):
                return handler(request, *match.groups())
        raise ApiError(404, {"error": "InvalidEndpoint", "description": "Not found"})

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer" and self.oauth_token and value == self.oauth_token:
            return
        if scheme == "Basic" and self.api_token:
            try:
                user, _, secret = base64.b64decode(value).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, secret = "", ""
            if user == f"{self.email}/token" and secret == self.api_token:
                return
        raise ApiError(401, {"error": "Couldn't authenticate you"})

    def _spend(self, request: Request) -> None:
        """The account's per-minute limit and the export's own, on the server clock; 429 when exceeded."""
        now = self.clock()
        for window in (self._calls, self._exports):
            while window and now - window[0] >= timedelta(minutes=1):
                window.popleft()
        if len(self._calls) >= self.rate_limit:
            raise self._limited(self._calls, now, "APIRateLimitExceeded")
        if "/incremental/" in request.path:
            if len(self._exports) >= self.export_limit:
                raise self._limited(self._exports, now, "TooManyRequests")
            self._exports.append(now)
        self._calls.append(now)

    def _limited(self, window: deque[datetime], now: datetime, error: str) -> ApiError:
        wait = max(1, int((window[0] + timedelta(minutes=1) - now).total_seconds() + 0.999))
        return ApiError(429, {"error": error, "description": "Number of allowed API requests per minute exceeded"},
                        {"Retry-After": str(wait)})

    def rate_headers(self) -> dict[str, str]:
        """Every spelling Zendesk has used for the account limit, remaining calls and reset."""
        remaining = max(0, self.rate_limit - len(self._calls))
        reset = 60
        if self._calls:
            reset = max(1, int((self._calls[0] + timedelta(minutes=1) - self.clock()).total_seconds()))
        return {"X-Rate-Limit": str(self.rate_limit), "X-Rate-Limit-Remaining": str(remaining),
                "ratelimit-limit": str(self.rate_limit), "ratelimit-remaining": str(remaining),
                "ratelimit-reset": str(reset)}

    def fault_response(self, fault: Fault) -> Response:
        """Injected faults in Zendesk's shapes: JSON 429/409, HTML 5xx (unless the fault brings a body)."""
        if fault.body is None:
            status = fault.status or 500
            if status >= 500:
                fault.body, fault.content_type = (f"<html><body><h1>{status} Service Unavailable</h1>"
                                                  "</body></html>"), "text/html"
            else:
                fault.body = json.dumps({
                    429: {"error": "APIRateLimitExceeded",
                          "description": "Number of allowed API requests per minute exceeded"},
                    409: {"error": "UpdateConflict", "description": "Safe Update prevented the update due to "
                                                                    "outdated ticket data."},
                    401: {"error": "Couldn't authenticate you"},
                    403: {"error": "Forbidden", "description": "You do not have access to this page."},
                }.get(status, {"error": "RecordInvalid", "description": f"injected {status}"}))
        response = super().fault_response(fault)
        response.headers.update(self.rate_headers())
        return response

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            raise ApiError(400, {"error": "InvalidJSON", "description": "The request body is not valid JSON"})
        return body if isinstance(body, dict) else {}

    @staticmethod
    def _includes(request: Request) -> set[str]:
        return {p.strip() for p in request.args.get("include", "").split(",") if p.strip()}

    # --- reading tickets ----------------------------------------------------------------------------------

    def _export(self, request: Request) -> Response:
        args, now = request.args, self.clock()
        per_page = min(int(args.get("per_page", 1000)), 1000)
        include = self._includes(request)
        if ("cursor" in args) == ("start_time" in args):
            raise ApiError(400, {"error": "InvalidPaginationParameter",
                                 "description": "Provide either a start_time or a cursor, not both"})
        if "cursor" in args:
            after = decode_cursor(args["cursor"])
            candidates = [t for t in self.tickets.values() if t.seq > after]
        else:
            start = int(args["start_time"])
            if start > (now - self.too_recent).timestamp():
                raise ApiError(422, {"error": "InvalidValue",
                                     "description": "Too recent start_time. Use a start_time older than 1 minute"})
            after = 0
            candidates = [t for t in self.tickets.values() if t.data["generated_timestamp"] >= start]
        if args.get("exclude_deleted") == "true":
            candidates = [t for t in candidates if not t.deleted]
        candidates.sort(key=lambda t: t.seq)
        if self.hide_recent is not None:
            # Changes are ordered, so the hidden ones are a tail: stop before the first of them.
            horizon = (now - self.hide_recent).timestamp()
            cut = next((i for i, t in enumerate(candidates) if t.data["generated_timestamp"] > horizon),
                       len(candidates))
            candidates = candidates[:cut]
        page = candidates[:per_page]
        end = len(candidates) <= per_page
        body: dict[str, Any] = {"tickets": [self.ticket_json(t, slas="slas" in include) for t in page],
                                **self.sideloads(page, include), "before_url": None, "before_cursor": None,
                                "end_of_stream": end}
        if page or "cursor" in args:
            cursor = encode_cursor(page[-1].seq if page else after,
                                   page[-1].data["generated_timestamp"] if page else int(now.timestamp()))
            params = {"cursor": cursor, "per_page": per_page, **({"include": ",".join(sorted(include))}
                                                                  if include else {})}
            body["after_cursor"] = cursor
            body["after_url"] = f"{self.api_base}/incremental/tickets/cursor.json?" + urlencode(params)
        else:  # nothing since start_time: no cursor yet, the client keeps its start_time
            body["after_cursor"] = body["after_url"] = None
        return json_response(body)

    def _search_export(self, request: Request) -> Response:
        query = request.args.get("query", "")
        size = min(int(request.args.get("page[size]", 100)), 1000)
        start = decode_index(request.args.get("page[after]"))
        matches = [t for t in sorted(self.tickets.values(), key=lambda t: t.data["id"])
                   if not t.deleted and search_matches(t.data, query)]
        page = matches[start:start + size]
        more = start + size < len(matches)
        after = encode_index(start + size) if more else None
        next_url = None
        if more:
            next_url = f"{self.api_base}/search/export.json?" + urlencode(
                {"query": query, "filter[type]": "ticket", "page[size]": size, "page[after]": after})
        return json_response({"results": [{**self.ticket_json(t), "result_type": "ticket"} for t in page],
                              "facets": None, "meta": {"has_more": more, "after_cursor": after,
                                                       "before_cursor": None},
                              "links": {"next": next_url, "prev": None}})

    def _show_many(self, request: Request) -> Response:
        ids = [int(i) for i in request.args.get("ids", "").split(",") if i.strip()]
        if len(ids) > 100:
            raise ApiError(400, {"error": "TooManyValues", "description": "You have specified too many values "
                                                                         "(max 100)", "max_count": 100})
        include = self._includes(request)
        found = [self.tickets[i] for i in dict.fromkeys(ids) if i in self.tickets and not self.tickets[i].deleted]
        return json_response({"tickets": [self.ticket_json(t, slas="slas" in include) for t in found],
                              **self.sideloads(found, include), "next_page": None, "previous_page": None,
                              "count": len(found)})

    def _show(self, request: Request, ticket_id: str) -> Response:
        stored = self.live(int(ticket_id))
        include = self._includes(request)
        return json_response({"ticket": self.ticket_json(stored, slas="slas" in include),
                              **self.sideloads([stored], include)})

    def _comments(self, request: Request, ticket_id: str) -> Response:
        self.live(int(ticket_id))
        items = self.comments(int(ticket_id))
        return json_response({"comments": items, "next_page": None, "previous_page": None, "count": len(items)})

    # --- writing tickets ----------------------------------------------------------------------------------

    def _update(self, request: Request, ticket_id: str) -> Response:
        payload = self._body(request).get("ticket")
        if not isinstance(payload, dict):
            raise ApiError(400, {"error": {"title": "Invalid attribute", "message": "ticket parameter is missing"}})
        ticket, audit, ignored = self.update_ticket(int(ticket_id), payload)
        headers = {"x-zendesk-api-warn": json.dumps({"ignored": ignored})} if ignored else {}
        return json_response({"ticket": ticket, "audit": audit}, headers=headers)

    def _tags(self, request: Request, ticket_id: str) -> Response:
        how = {"PUT": "add", "POST": "set", "DELETE": "remove"}.get(request.method)
        if how is None:
            return json_response({"tags": list(self.live(int(ticket_id)).data["tags"])})
        tags = self._body(request).get("tags") or []
        return json_response({"tags": self.change_tags(int(ticket_id), [str(t) for t in tags], how)})

    def _update_many(self, request: Request) -> Response:
        body = self._body(request)
        ids = [int(i) for i in request.args.get("ids", "").split(",") if i.strip()]
        if ids and isinstance(body.get("ticket"), dict):
            operations = [(i, dict(body["ticket"])) for i in ids]
        elif isinstance(body.get("tickets"), list):
            operations = [(int(t.get("id") or 0), {k: v for k, v in t.items() if k != "id"})
                          for t in body["tickets"] if isinstance(t, dict)]
        else:
            raise ApiError(400, {"error": {"title": "Invalid attribute",
                                           "message": "give ids with a ticket, or a tickets list"}})
        return json_response({"job_status": self.create_job(operations)})

    def _job_status(self, request: Request, job_id: str) -> Response:
        return json_response({"job_status": self.poll_job(job_id)})

    def _job_statuses(self, request: Request) -> Response:
        """`show_many?ids=a,b`: one poll of each listed job, unknown ids left out; at most 100 ids, like tickets'."""
        ids = [i for i in request.args.get("ids", "").split(",") if i.strip()]
        if not ids:
            raise ApiError(400, {"error": "InvalidValue", "description": "ids is required"})
        if len(ids) > 100:
            raise ApiError(400, {"error": "TooManyValues", "description": "You have specified too many values "
                                                                         "(max 100)", "max_count": 100})
        return json_response({"job_statuses": [self.poll_job(i) for i in ids if i in self.jobs]})

    # --- people ---------------------------------------------------------------------------------------------

    def _me(self, request: Request) -> Response:
        return json_response({"user": self.users[BOT_USER_ID]})

    def _users(self, request: Request) -> Response:
        roles = set(request.args.getlist("role[]") or request.args.getlist("role"))
        users = [u for u in self.users.values() if not roles or u["role"] in roles]
        return self._list(request, "users", users)

    def _groups(self, request: Request) -> Response:
        return self._list(request, "groups", [g for g in self.groups.values() if not g["deleted"]])

    def _memberships(self, request: Request) -> Response:
        return self._list(request, "group_memberships", self.memberships)

    def _ticket_fields(self, request: Request) -> Response:
        return self._list(request, "ticket_fields", self.ticket_fields())

    def _list(self, request: Request, key: str, items: list[dict[str, Any]]) -> Response:
        """Cursor pagination when `page[size]` is given, else offset pagination (100 per page)."""
        path = f"{self.api_base}/{key}.json"
        extra = [("role[]", r) for r in request.args.getlist("role[]")]
        if "page[size]" in request.args:
            size = min(int(request.args["page[size]"]), 100)
            start = decode_index(request.args.get("page[after]"))
            more = start + size < len(items)
            after = encode_index(start + size) if more else None
            next_url = f"{path}?" + urlencode([*extra, ("page[size]", size), ("page[after]", after)]) if more else None
            return json_response({key: items[start:start + size],
                                  "meta": {"has_more": more, "after_cursor": after, "before_cursor": None},
                                  "links": {"next": next_url, "prev": None}})
        per_page = min(int(request.args.get("per_page", 100)), 100)
        number = int(request.args.get("page", 1))
        start = (number - 1) * per_page
        more = start + per_page < len(items)
        next_url = f"{path}?" + urlencode([*extra, ("page", number + 1), ("per_page", per_page)]) if more else None
        return json_response({key: items[start:start + per_page], "next_page": next_url, "previous_page": None,
                              "count": len(items)})


def main(argv: list[str] | None = None) -> None:
    """Serve a sandbox in the foreground: `python -m bot.sandbox.zendesk --port 8801`."""
    import argparse
    import threading
    from datetime import UTC

    from bot.sandbox.server import serve

    parser = argparse.ArgumentParser(prog="python -m bot.sandbox.zendesk", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the generated queue")
    parser.add_argument("--tickets", type=int, default=120, help="how many tickets to generate")
    parser.add_argument("--queue", help="load the queue from this JSON file (bot.sandbox.seed format) instead")
    parser.add_argument("--email", default="deskbot@support.example")
    parser.add_argument("--token", default="sandbox-api-token", help="the API token the sandbox accepts")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    queue = seed.load(args.queue) if args.queue else seed.generate(args.seed, tickets=args.tickets, now=now)
    app = ZendeskSandbox(queue, clock=lambda: datetime.now(UTC), email=args.email, api_token=args.token)
    server = serve(app, args.port)
    print(f"Zendesk sandbox with {len(queue.tickets)} tickets. Point deskbot at it with:\n"
          f"  export ZENDESK_URL={server.url} ZENDESK_SUBDOMAIN=sandbox ZENDESK_EMAIL={args.email} "
          f"ZENDESK_API_TOKEN={args.token}\nCtrl-C stops it.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
