"""Recording fakes for the runner's edges: a helpdesk connector and a notifier, plus a ticket factory.

They behave like the real thing where the runner depends on it (fresh reads,
batched writes, a change feed with cursors, typed errors) and record every
call, so tests assert on what the bot did rather than on how.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.connectors.base import ApplyResult, CallCounter, ChangePage, TicketChange
from bot.model import Agent, Directory, Group, Priority, Status, Ticket

T0 = datetime(2024, 6, 10, 9, 0, tzinfo=UTC)


def make_ticket(id: int = 1, platform: str = "zendesk", **overrides: Any) -> Ticket:
    """A plausible open ticket; override any field by name."""
    base: dict[str, Any] = dict(
        platform=platform, id=id, subject=f"Ticket {id}", status=Status.OPEN, priority=Priority.NORMAL,
        created_at=T0, updated_at=T0, url=f"https://example.test/tickets/{id}", group_id=10, group="Support",
        requester="Ada Customer", requester_email="ada@example.test",
    )
    base.update(overrides)
    return Ticket(**base)


def directory() -> Directory:
    """Two teams with two agents each, one of them unavailable."""
    return Directory(
        agents=(
            Agent("zendesk", 101, "Alice", "alice@example.test", frozenset({10})),
            Agent("zendesk", 102, "Bob", "bob@example.test", frozenset({10})),
            Agent("zendesk", 201, "Carol", "carol@example.test", frozenset({20})),
            Agent("zendesk", 202, "Dan", "dan@example.test", frozenset({20}), available=False),
        ),
        groups=(Group("zendesk", 10, "Support"), Group("zendesk", 20, "Billing")),
    )


class FakeConnector:
    """An in-memory helpdesk: tickets by id, a change feed, `apply` that really changes them."""

    def __init__(self, tickets: Sequence[Ticket] = (), platform: str = "zendesk",
                 directory_: Directory | None = None):
        self.platform = platform
        self.calls = CallCounter()
        self.feed_lag = timedelta(0)  # the feed hands out every change at once; tests may set a lag
        self.store: dict[int, Ticket] = {t.id: t for t in tickets}
        self.feed: list[Ticket] = list(tickets)
        self.deleted: list[int] = []
        self.applied: list[TicketChange] = []
        self.apply_batches: list[list[TicketChange]] = []
        self.notes: dict[int, list[str]] = {}
        self.note_keys: dict[int, list[str]] = {}
        self.fail_next: list[Exception] = []
        self.lose_response_next = 0  # apply, then raise as if the response was lost
        self._directory = directory_ or directory()
        self.clock = lambda: T0

    # -- test controls --------------------------------------------------------
    def change(self, ticket_id: int, **fields: Any) -> Ticket:
        """A human edits a ticket in the helpdesk; it shows up in the feed."""
        ticket = dataclasses.replace(self.store[ticket_id], **fields)
        self.store[ticket_id] = ticket
        self.feed.append(ticket)
        return ticket

    def add(self, ticket: Ticket) -> None:
        """A new ticket arrives."""
        self.store[ticket.id] = ticket
        self.feed.append(ticket)

    def delete(self, ticket_id: int) -> None:
        """A ticket is deleted."""
        self.store.pop(ticket_id, None)
        self.deleted.append(ticket_id)

    # -- Connector ------------------------------------------------------------
    def fetch_changes(self, cursor: str | None, *, backfill_all: bool = False) -> Iterator[ChangePage]:
        """Everything after the cursor position in the feed, in pages of 50."""
        self.calls.add("fetch")
        self._maybe_fail()
        start = int(cursor or 0)
        items = self.feed[start:]
        deleted, self.deleted = tuple(self.deleted), []
        if not items:
            yield ChangePage((), str(start), True, deleted)
            return
        for offset in range(0, len(items), 50):
            chunk = items[offset:offset + 50]
            end = start + offset + len(chunk)
            last = end >= len(self.feed)
            yield ChangePage(tuple(chunk), str(end), last, deleted if last else ())

    def get_tickets(self, ids: Sequence[int]) -> list[Ticket]:
        """Fresh copies, one call per 100 ids."""
        for _ in range(0, max(len(ids), 1), 100):
            self.calls.add("get_tickets")
        self._maybe_fail()
        return [self.store[i] for i in ids if i in self.store]

    def directory(self, *, refresh: bool = False) -> Directory:
        """The fixed directory."""
        if refresh:
            self.calls.add("directory")
        return self._directory

    def apply(self, changes: Sequence[TicketChange]) -> list[ApplyResult]:
        """Apply changes for real; grouped like a platform's bulk call."""
        self.calls.add("apply")
        self.apply_batches.append(list(changes))
        self._maybe_fail()
        results = []
        for change in changes:
            ticket = self.store.get(change.ticket_id)
            if ticket is None:
                results.append(ApplyResult(change.ticket_id, change.key, False, "ticket not found"))
                continue
            ticket = self._write(ticket, change)
            self.applied.append(change)
            results.append(ApplyResult(change.ticket_id, change.key, True, ticket=ticket))
        if self.lose_response_next:
            self.lose_response_next -= 1
            from bot.errors import Unavailable
            raise Unavailable("read timed out (response lost)", platform=self.platform)
        return results

    def _write(self, ticket: Ticket, change: TicketChange) -> Ticket:
        fields: dict[str, Any] = {}
        if change.assignee_id is not None:
            fields["assignee_id"] = change.assignee_id
            agent = self._directory.agent_by_id(change.assignee_id)
            fields["assignee"] = agent.name if agent else None
        if change.unassign:
            fields["assignee_id"] = None
            fields["assignee"] = None
        if change.group_id is not None:
            fields["group_id"] = change.group_id
            group = self._directory.group_by_id(change.group_id)
            fields["group"] = group.name if group else None
        if change.priority is not None:
            fields["priority"] = change.priority
        if change.status is not None:
            fields["status"] = change.status
        tags = (set(ticket.tags) | set(change.add_tags)) - set(change.remove_tags)
        if tags != set(ticket.tags):
            fields["tags"] = frozenset(tags)
        if change.note is not None:
            self.notes.setdefault(ticket.id, []).append(change.note)
            self.note_keys.setdefault(ticket.id, []).append(change.key)
        fields["updated_at"] = self.clock()
        updated = dataclasses.replace(ticket, **fields)
        self.store[ticket.id] = updated
        self.feed.append(updated)
        return updated

    def has_note(self, ticket_id: int, key: str) -> bool:
        """Whether a note carrying this action key was written (crash recovery reads this)."""
        return key in self.note_keys.get(ticket_id, [])

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)


class FakeNotifier:
    """Records every message it is asked to send; can be told to fail."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail_next: list[Exception] = []
        self._ts = 1000

    def send(self, message: Any) -> str:
        """Record the message and answer a Slack-like ts."""
        if self.fail_next:
            raise self.fail_next.pop(0)
        self._ts += 1
        self.sent.append(message if isinstance(message, dict) else {"message": message})
        return f"{self._ts}.000100"
