"""Writing `TicketChange`s to Zendesk in as few calls as its API allows, without clobbering humans.

Identical changes to several tickets go through `update_many` (100 per job)
and their job statuses are polled until completed or failed. A lone change is
one `PUT /tickets/{id}` (a safe update when `expected_updated_at` is given;
on 409 the ticket is re-read and the write retried once), plus the tag
endpoints, which add and remove single tags instead of replacing the list a
human may just have edited.
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
from bot.connectors.zendesk_mapping import NAME_BY_STATUS, STATUS_BY_NAME, format_time
from bot.errors import AuthError, Conflict, ConnectorError
from bot.model import Status

if TYPE_CHECKING:
    from bot.connectors.zendesk import ZendeskConnector

log = logging.getLogger("bot.connectors.zendesk")

BULK_LIMIT = 100
_DONE = ("completed", "failed", "killed")


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
        """One result per change, in order; only an authentication failure raises."""
        results: list[ApplyResult | None] = [None] * len(changes)
        jobs: list[_Job] = []
        singles: list[int] = []
        for bucket in _buckets(changes):
            if len(bucket) == 1:
                singles.append(bucket[0])
                continue
            for start in range(0, len(bucket), BULK_LIMIT):
                chunk = [(i, changes[i]) for i in bucket[start:start + BULK_LIMIT]]
                job = self._submit(chunk, results)
                if job:
                    jobs.append(job)
        for index in singles:  # while Zendesk works through the jobs
            results[index] = self._single(changes[index])
        self._await(jobs, results)
        return [r if r is not None else ApplyResult(c.ticket_id, c.key, ok=False, error="not attempted")
                for r, c in zip(results, changes, strict=True)]

    # --- bulk --------------------------------------------------------------------------------------------

    def _submit(self, chunk: list[tuple[int, TicketChange]], results: list[ApplyResult | None]) -> _Job | None:
        tickets = [zenpy_ticket(change, bulk=True) for _, change in chunk]
        try:
            self.connector.call(lambda: self.client.tickets.update(tickets), idempotent=chunk[0][1].note is None)
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
        """Poll every unfinished job, one round per poll interval, until each completes or fails."""
        pending = [job for job in jobs if not self._finish(job, results)]
        while pending:
            self.connector.sleep(self.connector.config.job_poll_interval)
            for job in list(pending):
                try:
                    self.connector.call(lambda job=job: self.client.job_status(id=job.id))
                    job.status = (self.connector.session.last_json or {}).get("job_status") or {}
                except AuthError:
                    raise
                except ConnectorError as error:
                    job.status = {"status": "unknown", "message": str(error)}
                job.polls += 1
                if self._finish(job, results) or job.status.get("status") == "unknown":
                    pending.remove(job)
                elif job.polls >= self.connector.config.job_poll_limit:
                    job.status = {"status": "unknown", "message": f"still {job.status.get('status')} after "
                                  f"{job.polls} polls"}
                    self._finish(job, results, force=True)
                    pending.remove(job)

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
            elif item.get("success") is False or item.get("error") or item.get("errors"):
                said = item.get("details") or item.get("error") or item.get("errors")
                results[index] = _failed(change, f"Zendesk refused ticket {change.ticket_id} in job {job.id}: "
                                                 f"{_text(said)}")
            else:
                results[index] = ApplyResult(change.ticket_id, change.key, ok=True)
        return True

    # --- one ticket ----------------------------------------------------------------------------------------

    def _single(self, change: TicketChange) -> ApplyResult:
        """PUT the fields (and note), then add and remove tags; `ticket` is left None on purpose.

        A write's answer has no sideloads or metrics, so a `Ticket` built from it would carry empty
        clocks; the change moves the ticket's generated_timestamp, so the next export brings it whole.
        """
        try:
            skipped = False
            if ticket_fields(change):
                skipped = self._update(change)
            if change.add_tags and not skipped:
                self._tags(self.client.tickets.add_tags, change.ticket_id, change.add_tags)
            if change.remove_tags and not skipped:
                self._tags(self.client.tickets.delete_tags, change.ticket_id, change.remove_tags)
            return ApplyResult(change.ticket_id, change.key, ok=True, skipped=skipped)
        except AuthError:
            raise
        except _LeftToHuman as error:
            return ApplyResult(change.ticket_id, change.key, ok=False, skipped=True, error=str(error))
        except ConnectorError as error:
            return _failed(change, f"ticket {change.ticket_id}: {error}")

    def _update(self, change: TicketChange) -> bool:
        """PUT the change (safe when a stamp is known); on 409 re-read, then retry once. True: already done."""
        try:
            self._put(change, _stamp(change.expected_updated_at))
            return False
        except Conflict:
            current = self.connector.get_ticket_raw(change.ticket_id)
            if is_satisfied(change, current):
                log.info("ticket %s already has deskbot's change (%s); nothing to write", change.ticket_id,
                         change.key)
                return True
            moved = _moved_by_someone(change, current)
            if moved:
                raise _LeftToHuman(f"ticket {change.ticket_id}: {moved} changed by someone else since deskbot "
                                   "read it; left as they set it, the next cycle re-evaluates it")
            log.info("ticket %s changed since it was read; retrying once on its new state", change.ticket_id)
            try:
                self._put(change, str(current.get("updated_at")))
                return False
            except Conflict as again:
                raise Conflict(f"ticket {change.ticket_id} changed again while deskbot retried ({again.status}); "
                               "left as the human set it, the next cycle re-evaluates it",
                               status=again.status, platform=again.platform)

    def _put(self, change: TicketChange, stamp: str | None) -> None:
        ticket = zenpy_ticket(change, stamp=stamp)
        self.connector.call(lambda: self.client.tickets.update(ticket), idempotent=change.note is None)

    def _tags(self, method: Any, ticket_id: int, tags: frozenset[str]) -> None:
        self.connector.call(lambda: method(ticket_id, sorted(tags)))


class _LeftToHuman(Exception):
    """After a conflict: a human changed a field this write sets, so it must not be overwritten."""


def _moved_by_someone(change: TicketChange, current: Mapping[str, Any]) -> str | None:
    """The written fields whose values on the fresh ticket differ from what the decision saw."""
    now = {
        "assignee_id": current.get("assignee_id"),
        "group_id": current.get("group_id"),
        "priority": str(current.get("priority") or "normal"),
        "status": STATUS_BY_NAME.get(str(current.get("status") or "open"), Status.OPEN).value,
    }
    moved = [name.removesuffix("_id") for name, seen in change.expected.items() if name in now and now[name] != seen]
    return ", ".join(moved) or None


def _buckets(changes: Sequence[TicketChange]) -> list[list[int]]:
    """Indexes of changes that one bulk call can carry (same change, distinct tickets), in order."""
    buckets: list[list[int]] = []
    tickets: list[set[int]] = []
    for index, change in enumerate(changes):
        for bucket, ids in zip(buckets, tickets, strict=True):
            if change.ticket_id not in ids and changes[bucket[0]].same_change_as(change):
                bucket.append(index)
                ids.add(change.ticket_id)
                break
        else:
            buckets.append([index])
            tickets.append({change.ticket_id})
    return buckets


def ticket_fields(change: TicketChange) -> dict[str, Any]:
    """The ticket attributes a change writes (tags go through their own endpoints when single)."""
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


def zenpy_ticket(change: TicketChange, *, stamp: str | None = None, bulk: bool = False) -> ZenpyTicket:
    """A zenpy Ticket whose dirty attributes are exactly what the change writes."""
    ticket = ZenpyTicket(id=change.ticket_id)
    values = ticket_fields(change)
    if bulk:  # the bulk form adds and removes tags itself; safe updates are per ticket
        stamp = _stamp(change.expected_updated_at)
        if change.add_tags:
            values["additional_tags"] = sorted(change.add_tags)
        if change.remove_tags:
            values["remove_tags"] = sorted(change.remove_tags)
    if stamp:
        values.update(safe_update=True, updated_stamp=stamp)
    if change.key:
        values["metadata"] = {"deskbot_key": change.key}  # lands in the audit's metadata.custom
    for name, value in values.items():
        setattr(ticket, name, value)  # setattr marks the attribute dirty, so zenpy sends it (even None)
    return ticket


def is_satisfied(change: TicketChange, raw: Mapping[str, Any]) -> bool:
    """True when the ticket already looks the way the change wants (a note never counts as done)."""
    if change.note:
        return False
    for name, value in ticket_fields(change).items():
        if raw.get(name) != value:
            return False
    tags = set(raw.get("tags") or ())
    return change.add_tags <= tags and not (change.remove_tags & tags)


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
