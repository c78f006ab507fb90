"""Freshdesk writes: one `TicketChange` becomes at most one read, one PUT and one private note.

Freshdesk has no safe update and replaces `tags` whole, so both are done by
reading the ticket immediately before the PUT: tags are merged into what is
there now (a tag a human just added survives), and `expected_updated_at` is
checked against what the bot last saw. A change is skipped (not failed) when a
human changed a field that decides whether the action is still wanted; see
`CONFLICT_FIELDS` and docs/freshdesk.md.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.connectors.base import ApplyResult, TicketChange
from bot.connectors.freshdesk_http import FreshdeskHttp
from bot.connectors.freshdesk_mapping import (
    CODE_BY_PRIORITY,
    PLATFORM,
    TicketFields,
    html_to_text,
    note_html,
    note_marker,
    parse_time,
)
from bot.errors import AuthError, ConnectorError, InvalidRequest, Unavailable
from bot.model import Ticket

# A human changing one of these since the bot's read means the plan may no longer hold.
CONFLICT_FIELDS = ("status", "priority", "group_id", "responder_id", "agent_responded_at")


def projection(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The conflict-relevant values of a ticket record (stats only when the record has them)."""
    values = {name: raw.get(name) for name in CONFLICT_FIELDS[:-1]}
    if isinstance(raw.get("stats"), Mapping):
        values["agent_responded_at"] = raw["stats"].get("agent_responded_at")
    return values


@dataclass
class _Baseline:
    versions: set[datetime]
    values: dict[str, Any]


class Baselines:
    """What the bot last saw of each ticket (bounded LRU), to tell human changes from its own."""

    def __init__(self, limit: int = 20_000):
        self.limit = limit
        self._items: OrderedDict[int, _Baseline] = OrderedDict()

    def seen(self, raw: Mapping[str, Any]) -> None:
        """A read: this version is now the reference for plans made from it."""
        updated = parse_time(raw.get("updated_at"))
        self._put(int(raw["id"]), _Baseline({updated} if updated else set(), projection(raw)))

    def wrote(self, ticket_id: int, raw: Mapping[str, Any], written: Iterable[str],
              accepted: Iterable[datetime] = ()) -> None:
        """The bot's own write: earlier plans stay valid unless a field it did not write changed too."""
        previous = self._items.get(ticket_id)
        values = projection(raw)
        versions = set(accepted)
        if previous is not None:
            values = {**previous.values, **values}  # a PUT answer carries no stats
            if all(previous.values[k] == values[k] for k in previous.values if k not in written):
                versions |= previous.versions
        updated = parse_time(raw.get("updated_at"))
        self._put(ticket_id, _Baseline(versions | ({updated} if updated else set()), values))

    def get(self, ticket_id: int) -> _Baseline | None:
        """The reference for a ticket, if the bot has one."""
        return self._items.get(ticket_id)

    def _put(self, ticket_id: int, baseline: _Baseline) -> None:
        self._items[ticket_id] = baseline
        self._items.move_to_end(ticket_id)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)


def conflict(current: Mapping[str, Any], expected: datetime, baseline: _Baseline | None,
             desired: Mapping[str, Any]) -> str | None:
    """Why the planned change no longer applies, or None when it still does.

    A field already holding the value the change writes is no conflict: a human
    did the same, or it is our own earlier attempt whose answer was lost.
    """
    updated = parse_time(current.get("updated_at"))
    if updated is None or updated <= expected:
        return None
    if desired and all(current.get(name) == value for name, value in desired.items()):
        return None
    if baseline is None or expected not in baseline.versions:
        return f"changed at {updated:%Y-%m-%dT%H:%M:%SZ}, after the plan's read and no snapshot to compare"
    now = projection(current)
    changed = [f"{name} {baseline.values.get(name)!r} -> {now[name]!r}" for name in now
               if name in baseline.values and baseline.values[name] != now[name]
               and not (name in desired and desired[name] == now[name])]
    return ", ".join(changed) or None


def merge_tags(current: Sequence[str], add: frozenset[str], remove: frozenset[str]) -> list[str]:
    """Current tags (a human's included), in their order, plus `add`, minus `remove`."""
    merged = [tag for tag in current if tag not in remove]
    merged += sorted(tag for tag in add if tag not in merged and tag not in remove)
    return merged


_SPACE = re.compile(r"\s+")


def _same_text(a: str, b: str) -> bool:
    return _SPACE.sub(" ", a).strip() == _SPACE.sub(" ", b).strip()


class FreshdeskWriter:
    """Performs `TicketChange`s; the connector owns the client, fields and baselines it uses."""

    def __init__(self, http: FreshdeskHttp, fields: Callable[[], TicketFields],
                 to_ticket: Callable[[Mapping[str, Any]], Ticket], baselines: Baselines,
                 view_params: Mapping[str, str] | None = None):
        self.http = http
        self.fields = fields
        self.to_ticket = to_ticket
        self.baselines = baselines
        self.view_params = dict(view_params or {"include": "stats,requester,company"})

    def apply(self, changes: Sequence[TicketChange]) -> list[ApplyResult]:
        """One result per change; a rejected change does not stop the others (a bad API key does)."""
        results = []
        for change in changes:
            try:
                results.append(self.apply_one(change))
            except AuthError:
                raise
            except ConnectorError as error:
                results.append(ApplyResult(change.ticket_id, change.key, ok=False, error=str(error)))
        return results

    def body(self, change: TicketChange) -> dict[str, Any]:
        """The flat PUT body for everything but tags."""
        body: dict[str, Any] = {}
        if change.unassign:
            body["responder_id"] = None
        elif change.assignee_id is not None:
            body["responder_id"] = change.assignee_id
        if change.group_id is not None:
            body["group_id"] = change.group_id
        if change.priority is not None:
            body["priority"] = CODE_BY_PRIORITY[change.priority]
        if change.status is not None:
            code = self.fields().code_for(change.status)
            if code is None:
                raise InvalidRequest(
                    f"Freshdesk has no status for '{change.status}': add a custom status whose name "
                    "contains 'hold' or 'waiting' (Admin > Ticket Fields > Status), or use pending",
                    platform=PLATFORM)
            body["status"] = code
        return body

    def apply_one(self, change: TicketChange) -> ApplyResult:
        """Read-check-write one ticket, then add its note."""
        body = self.body(change)
        expected = parse_time(change.expected_updated_at)
        path = f"/api/v2/tickets/{change.ticket_id}"
        ticket: Ticket | None = None  # None: the PUT answer lacks stats; the change feed brings the ticket
        if change.add_tags or change.remove_tags or expected is not None:
            outcome = self.http.retry.call(lambda: self._read_modify_write(change, body, expected))
            if isinstance(outcome, ApplyResult):
                return outcome
            ticket = outcome
        elif body:
            raw = self.http.request("ticket_update", "PUT", path, json=body).json()
            self.baselines.wrote(change.ticket_id, raw, body)
        if change.note is not None:
            self.add_note(change.ticket_id, change.note, change.key)
        return ApplyResult(change.ticket_id, change.key, ok=True, ticket=ticket)

    def _read_modify_write(self, change: TicketChange, body: dict[str, Any],
                           expected: datetime | None) -> Ticket | ApplyResult:
        """Read, check for a human's conflicting change, merge tags, write; retried as one unit."""
        path = f"/api/v2/tickets/{change.ticket_id}"
        current = self.http.request("ticket_show", "GET", path, params=self.view_params, retry=False).json()
        baseline = self.baselines.get(change.ticket_id)
        accepted: set[datetime] = set()
        if expected is not None:
            reason = conflict(current, expected, baseline, body)
            if reason:
                return ApplyResult(change.ticket_id, change.key, ok=False, skipped=True,
                                   error=f"skipped: ticket {change.ticket_id} changed since the plan ({reason})",
                                   ticket=self.to_ticket(current))
            accepted = {expected}
        body = dict(body)
        tags = list(current.get("tags") or [])
        merged = merge_tags(tags, change.add_tags, change.remove_tags)
        if merged != tags:
            body["tags"] = merged
        if not body:
            return self.to_ticket(current)
        raw = self.http.request("ticket_update", "PUT", path, json=body, retry=False).json()
        merged_raw = {**current, **raw}  # the PUT answer has no stats/requester/company includes
        self.baselines.wrote(change.ticket_id, merged_raw, body, accepted)
        return self.to_ticket(merged_raw)

    def add_note(self, ticket_id: int, text: str, key: str = "") -> None:
        """A private note; after an ambiguous failure (timeout, 5xx) it checks before posting again."""
        payload = {"body": note_html(text, key), "private": True}
        path = f"/api/v2/tickets/{ticket_id}/notes"
        state = {"ambiguous": False}

        def post() -> None:
            if state["ambiguous"] and self.has_note(ticket_id, key=key, text=text):
                return
            try:
                self.http.request("note_create", "POST", path, json=payload, retry=False)
            except Unavailable as error:
                state["ambiguous"] = state["ambiguous"] or getattr(error, "maybe_applied", False)
                raise

        self.http.retry.call(post)

    def has_note(self, ticket_id: int, *, key: str = "", text: str | None = None) -> bool:
        """True if the ticket carries a private note with this action key (or, without a key, this text)."""
        conversations = self.http.paginate("conversations_list", f"/api/v2/tickets/{ticket_id}/conversations",
                                           {"per_page": 100})
        wanted = note_marker(key) if key else html_to_text(note_html(text or ""))
        for item in conversations:
            if not isinstance(item, Mapping) or not item.get("private"):
                continue
            body = str(item.get("body_text") or html_to_text(str(item.get("body") or "")))
            if (wanted in body) if key else _same_text(body, wanted):
                return True
        return False
