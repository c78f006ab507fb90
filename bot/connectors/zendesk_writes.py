"""Writing `TicketChange`s to Zendesk in as few calls as its API allows, without clobbering humans.

Every change of an `apply()` goes through `PUT /tickets/update_many` with a
`tickets` list of per-ticket bodies, at most 100 per job: the fields, the tags
to add and remove (`additional_tags`/`remove_tags`, so a tag a human just set
survives), the private note (`comment.public: false`), and `safe_update` with
the `updated_stamp` of the copy the decision was made on. Then the jobs are
polled, all unfinished ones in one `job_statuses/show_many` call per round,
until each completes or fails, and each ticket's result in the job becomes
that change's `ApplyResult`. n changes cost ceil(n/100) update_many calls plus
the polls Zendesk needs to finish the jobs.

A ticket whose safe update Zendesk refused (someone changed it after the read)
comes back as a `conflict` result: nothing was written, and the executor leaves
the action open, so the next cycle re-reads the ticket, drops the action if a
human changed a field it writes, and writes it again otherwise.

zenpy sends exactly this body: `client.tickets.update([Ticket, ...])` PUTs
`{"tickets": [...]}` to update_many with each Ticket's dirty attributes, so no
raw session call is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from zenpy.lib.api_objects import Comment
from zenpy.lib.api_objects import Ticket as ZenpyTicket

from bot.connectors.base import ApplyResult, TicketChange
from bot.connectors.zendesk_http import platform_message
from bot.connectors.zendesk_mapping import NAME_BY_STATUS, format_time
from bot.errors import AuthError, ConnectorError

if TYPE_CHECKING:
    from bot.connectors.zendesk import ZendeskConnector

log = logging.getLogger("bot.connectors.zendesk")

BULK_LIMIT = 100  # tickets per update_many job, and job ids per job_statuses/show_many
_DONE = ("completed", "failed", "killed")
_CONFLICT = "UpdateConflict"
_GONE = "RecordNotFound"


@dataclass
class _Job:
    """One update_many job and the changes it carries."""

    id: str
    changes: list[tuple[int, TicketChange]]
    polls: int = 0
    status: Mapping[str, Any] = field(default_factory=dict)


class ZendeskWriter:
    """Performs one `apply()` call for a `ZendeskConnector`."""

    def __init__(self, connector: ZendeskConnector):
        self.connector = connector
        self.client = connector.client

    def apply(self, changes: Sequence[TicketChange]) -> list[ApplyResult]:
        """One result per change, in order; only an authentication failure raises.

        A ticket appears once per job (Zendesk's order within a job is its own), so a second change to the
        same ticket goes in a later round, submitted after the first round's jobs finished.
        """
        results: list[ApplyResult | None] = [None] * len(changes)
        for layer in _layers(changes):
            jobs = []
            for start in range(0, len(layer), BULK_LIMIT):
                job = self._submit([(i, changes[i]) for i in layer[start:start + BULK_LIMIT]], results)
                if job:
                    jobs.append(job)
            self._await(jobs, results)
        return [r if r is not None else _failed(c, "not attempted") for r, c in zip(results, changes, strict=True)]

    def _submit(self, chunk: list[tuple[int, TicketChange]], results: list[ApplyResult | None]) -> _Job | None:
        tickets = [zenpy_ticket(change) for _, change in chunk]
        # A lost answer may hide a queued job: repeating it would add its notes twice, so only note-free jobs retry.
        idempotent = all(change.note is None for _, change in chunk)
        try:
            self.connector.call(lambda: self.client.tickets.update(tickets), idempotent=idempotent)
        except AuthError:
            raise
        except ConnectorError as error:
            for index, change in chunk:
                results[index] = _failed(change, f"bulk update of {len(chunk)} tickets failed: {error}")
            return None
        status = (self.connector.session.last_json or {}).get("job_status") or {}
        job = _Job(id=str(status.get("id")), changes=chunk, status=status)
        log.info("Zendesk update_many job %s queued for %d tickets", job.id, len(chunk))
        return job

    def _await(self, jobs: list[_Job], results: list[ApplyResult | None]) -> None:
        """Poll the unfinished jobs, all of them per round (show_many), until each completes or fails."""
        pending = [job for job in jobs if not self._finish(job, results)]
        while pending:
            self.connector.sleep(self.connector.config.job_poll_interval)
            for start in range(0, len(pending), BULK_LIMIT):
                self._poll(pending[start:start + BULK_LIMIT])
            for job in list(pending):
                job.polls += 1
                if self._finish(job, results) or job.status.get("status") == "unknown":
                    pending.remove(job)
                elif job.polls >= self.connector.config.job_poll_limit:
                    job.status = {"status": "unknown", "message": f"still {job.status.get('status')} after "
                                  f"{job.polls} polls"}
                    self._finish(job, results, force=True)
                    pending.remove(job)

    def _poll(self, jobs: list[_Job]) -> None:
        """One status call for these jobs: `job_statuses/{id}` for one, `job_statuses/show_many` for several."""
        try:
            if len(jobs) == 1:
                self.connector.call(lambda: self.client.job_status(id=jobs[0].id))
                statuses = [(self.connector.session.last_json or {}).get("job_status") or {}]
            else:
                self.connector.call(lambda: self.client.job_status(ids=[job.id for job in jobs]))
                statuses = list((self.connector.session.last_json or {}).get("job_statuses") or ())
        except AuthError:
            raise
        except ConnectorError as error:
            for job in jobs:
                job.status = {"status": "unknown", "message": str(error)}
            return
        by_id = {str(s.get("id")): s for s in statuses if isinstance(s, Mapping)}
        for job in jobs:
            job.status = by_id.get(job.id) or {"status": "unknown", "message": "Zendesk no longer lists the job"}

    def _finish(self, job: _Job, results: list[ApplyResult | None], force: bool = False) -> bool:
        """Map a finished job's per-ticket results onto the changes; False while it is still running."""
        state = str(job.status.get("status") or "")
        if state not in _DONE and state != "unknown" and not force:
            return False
        by_id = {int(r["id"]): r for r in job.status.get("results") or () if isinstance(r, Mapping) and
                 r.get("id") is not None}
        for index, change in job.changes:
            item = by_id.get(change.ticket_id)
            if item is None:
                why = job.status.get("message") or state
                results[index] = _failed(change, f"Zendesk job {job.id} gave no result for ticket "
                                                 f"{change.ticket_id} ({why}); it may or may not be applied")
            elif item.get("error") == _CONFLICT:
                results[index] = ApplyResult(
                    change.ticket_id, change.key, ok=False, conflict=True,
                    error=f"ticket {change.ticket_id} changed since deskbot read it (safe update refused in job "
                          f"{job.id}); nothing written, the next cycle re-reads it and decides again")
            elif item.get("error") == _GONE:  # deleted since the read: nothing left to act on
                results[index] = ApplyResult(change.ticket_id, change.key, ok=False, skipped=True,
                                             error="ticket no longer exists")
            elif item.get("success") is False or item.get("error") or item.get("errors"):
                said = item.get("details") or item.get("error") or item.get("errors")
                results[index] = _failed(change, f"Zendesk refused ticket {change.ticket_id} in job {job.id}: "
                                                 f"{_text(said)}")
            else:
                results[index] = ApplyResult(change.ticket_id, change.key, ok=True)
        return True


def _layers(changes: Sequence[TicketChange]) -> list[list[int]]:
    """Indexes of the changes in rounds where each ticket appears at most once, in order."""
    layers: list[list[int]] = []
    tickets: list[set[int]] = []
    for index, change in enumerate(changes):
        for layer, ids in zip(layers, tickets, strict=True):
            if change.ticket_id not in ids:
                layer.append(index)
                ids.add(change.ticket_id)
                break
        else:
            layers.append([index])
            tickets.append({change.ticket_id})
    return layers


def ticket_fields(change: TicketChange) -> dict[str, Any]:
    """The ticket attributes a change writes, private note included (tags are separate)."""
    fields: dict[str, Any] = {}
    if change.unassign:
        fields["assignee_id"] = None
    elif change.assignee_id is not None:
        fields["assignee_id"] = change.assignee_id
    if change.group_id is not None:
        fields["group_id"] = change.group_id
    if change.priority is not None:
        fields["priority"] = change.priority.value
    if change.status is not None:
        fields["status"] = NAME_BY_STATUS[change.status]
    if change.note:
        fields["comment"] = Comment(body=change.note, public=False)
    return fields


def zenpy_ticket(change: TicketChange) -> ZenpyTicket:
    """A zenpy Ticket whose dirty attributes are exactly the change's per-ticket update_many body."""
    ticket = ZenpyTicket(id=change.ticket_id)
    values = ticket_fields(change)
    if change.add_tags:
        values["additional_tags"] = sorted(change.add_tags)
    if change.remove_tags:
        values["remove_tags"] = sorted(change.remove_tags)
    stamp = _stamp(change.expected_updated_at)
    if stamp:
        values.update(safe_update=True, updated_stamp=stamp)
    if change.key:
        values["metadata"] = {"deskbot_key": change.key}  # lands in the audit's metadata.custom
    for name, value in values.items():
        setattr(ticket, name, value)  # setattr marks the attribute dirty, so zenpy sends it (even None)
    return ticket


def _stamp(value: Any) -> str | None:
    if value is None:
        return None
    return format_time(value) if isinstance(value, datetime) else str(value)


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        return platform_message({"details": value}) or str(value)
    return str(value)


def _failed(change: TicketChange, error: str) -> ApplyResult:
    return ApplyResult(change.ticket_id, change.key, ok=False, error=error)
