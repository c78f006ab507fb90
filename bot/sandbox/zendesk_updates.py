"""How the fake Zendesk changes tickets: single and bulk updates, tags, jobs, and the humans' helpers.

Updates follow Zendesk's rules: a closed ticket refuses them (422), a stale
`safe_update` stamp conflicts (409), an assignee must belong to the group
(422), unknown keys are ignored and reported, and every effective change
writes an audit and moves `updated_at` and `generated_timestamp`. The helpers
(`human_update`, `customer_reply`, `agent_reply`, ...) play agents and
customers for tests and the demo.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from bot.sandbox import seed
from bot.sandbox.zendesk_state import (
    BOT_USER_ID,
    PRIORITIES,
    STATUS_ORDER,
    TYPES,
    ApiError,
    StoredTicket,
    ZendeskAccount,
    invalid,
    iso,
    parse,
)


class ZendeskUpdates(ZendeskAccount):
    """Zendesk's write rules and the helpers that play its users; mixed into the sandbox app."""

    jobs: dict[str, dict[str, Any]]
    job_polls: int
    job_seconds: float
    requests: list[Any]
    _job_failure: str | None

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

    # --- update_many jobs -----------------------------------------------------------------------------------

    def create_job(self, operations: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        """Queue an update_many job (at most 100 tickets); it runs as it is polled, or on its own in time."""
        if len(operations) > 100:
            raise ApiError(400, {"error": "TooManyValues", "description": "You have specified too many values "
                                                                         "(max 100)", "max_count": 100})
        job_id = "V3-" + uuid.uuid4().hex
        job = {"id": job_id, "url": f"{self.api_base}/job_statuses/{job_id}.json", "total": len(operations),
               "progress": None, "status": "queued", "message": None, "results": None, "_ops": operations,
               "_polls": 0, "_failure": self._job_failure, "_created": self.clock(),
               "_request": len(self.requests)}  # the update_many request's place in the log
        self._job_failure = None
        self.jobs[job_id] = job
        if self.job_polls <= 0:
            self._run_job(job)
        return public_job(job)

    def run_due_jobs(self) -> None:
        """Zendesk works through a job whether or not anyone polls it: run those queued `job_seconds` ago."""
        now = self.clock()
        for job in self.jobs.values():
            if job["status"] not in ("completed", "failed", "killed") and \
                    (now - job["_created"]).total_seconds() >= self.job_seconds:
                self._run_job(job)

    def job_writes(self, since: int = 0) -> dict[int, int]:
        """Tickets each update_many job (asked at request `since` or later) changed successfully, counted."""
        counts: dict[int, int] = {}
        for job in self.jobs.values():
            if job["_request"] >= since:
                for result in job["results"] or ():
                    if result.get("success"):
                        counts[result["id"]] = counts.get(result["id"], 0) + 1
        return counts

    def poll_job(self, job_id: str) -> dict[str, Any]:
        """One poll: queued -> working -> ... -> completed after `job_polls` polls."""
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, {"error": "RecordNotFound", "description": "Not found"})
        if job["status"] not in ("completed", "failed", "killed"):
            job["_polls"] += 1
            if job["_polls"] >= self.job_polls:
                self._run_job(job)
            else:
                job.update(status="working", progress=len(job["_ops"]) // 2,
                           message=f"Updating ticket #{job['_ops'][0][0]}" if job["_ops"] else None)
        return public_job(job)

    def _run_job(self, job: dict[str, Any]) -> None:
        """Apply a job's updates (bulk jobs always run as safe updates when given a stamp)."""
        if job["_failure"]:
            job.update(status="failed", message=job["_failure"], results=None, progress=0)
            return
        results = []
        for ticket_id, payload in job["_ops"]:
            try:
                self.update_ticket(ticket_id, payload, bulk=True)
                results.append({"id": ticket_id, "action": "update", "status": "Updated", "success": True})
            except ApiError as error:
                results.append({"id": ticket_id, "action": "update", "status": "Failed", "success": False,
                                "error": error.body.get("error"), "details": details_text(error.body)})
        job.update(status="completed", progress=job["total"], results=results,
                   message=f"Completed at {iso(self.clock())}")

    def fail_next_job(self, message: str = "Job failed: internal error") -> None:
        """Make the next update_many job end as `failed` with this message."""
        self._job_failure = message

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

    def system_update(self, ticket_id: int) -> None:
        """A change with no ticket event (e.g. an SLA recount): generated_timestamp moves, updated_at stays."""
        with self.lock:
            stored = self.live(ticket_id)
            updated_at = stored.data["updated_at"]
            self.touch(stored)
            stored.data["updated_at"] = updated_at

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


def public_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """A job as the API shows it (without the sandbox's bookkeeping)."""
    return {k: v for k, v in job.items() if not k.startswith("_")}


def details_text(body: Mapping[str, Any]) -> str:
    """The descriptions in an error body's `details`, as a job result reports them."""
    details = body.get("details")
    if isinstance(details, Mapping):
        return "; ".join(str(i.get("description")) for items in details.values() for i in items)
    return str(body.get("description") or body.get("error"))
