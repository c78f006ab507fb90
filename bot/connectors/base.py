"""What every helpdesk connector offers the runner, whatever the platform.

A connector reads changes incrementally (`fetch_changes`, one page at a time so
the caller can persist the cursor after each page), re-reads tickets in batches
(`get_tickets`), reads the agent/group `directory`, and writes `TicketChange`s
back in as few calls as the platform allows (`apply`: Zendesk's per-ticket
update_many bodies, Freshdesk one ticket at a time). It maps payloads to
`bot.model.Ticket` at the boundary, declares how far behind now its change
feed can be (`feed_lag`), and raises `bot.errors.ConnectorError`
subclasses, never SDK exceptions. Adding a helpdesk = one module implementing
`Connector` plus one line in `bot/connectors/__init__.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from bot.model import Directory, Priority, Status, Ticket


@dataclass(frozen=True, slots=True)
class ChangePage:
    """One page of the change feed and the cursor to resume after it."""

    tickets: tuple[Ticket, ...]
    cursor: str | None
    end_of_stream: bool
    deleted_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TicketChange:
    """The writes to make on one ticket; unset fields are left alone.

    `key` is the executor's idempotency key (also put in the private note's
    metadata where the platform allows). `expected_updated_at`, when set, asks
    for a safe update: the platform refuses if a human changed the ticket since.
    """

    ticket_id: int
    key: str = ""
    assignee_id: int | None = None
    group_id: int | None = None
    priority: Priority | None = None
    status: Status | None = None
    add_tags: frozenset[str] = frozenset()
    remove_tags: frozenset[str] = frozenset()
    note: str | None = None
    unassign: bool = False
    expected_updated_at: Any = None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """The outcome of one `TicketChange`.

    `skipped`: not written on purpose (already in place, or a human changed what it writes).
    `conflict`: the platform refused a safe update because the ticket changed since it was read;
    nothing was written, and the change should be decided again on a fresh copy.
    """

    ticket_id: int
    key: str
    ok: bool
    error: str | None = None
    ticket: Ticket | None = None
    skipped: bool = False
    conflict: bool = False


@dataclass
class CallCounter:
    """How many HTTP calls a connector made, by endpoint kind, so cycles can be measured."""

    by_kind: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, n: int = 1) -> None:
        """Count `n` calls of one kind."""
        with self._lock:
            self.by_kind[kind] = self.by_kind.get(kind, 0) + n

    @property
    def total(self) -> int:
        """All calls so far."""
        return sum(self.by_kind.values())

    def snapshot(self) -> dict[str, int]:
        """A copy, for before/after comparisons."""
        with self._lock:
            return dict(self.by_kind)


@runtime_checkable
class Connector(Protocol):
    """A helpdesk, as the runner uses it."""

    platform: str
    calls: CallCounter
    # How far behind now the change feed can be: a sync that starts at t serves every change made before
    # t - feed_lag, and maybe not the later ones (Zendesk's export hides the last minute).
    feed_lag: timedelta

    def fetch_changes(self, cursor: str | None, *, backfill_all: bool = False) -> Iterator[ChangePage]:
        """Pages of tickets changed since `cursor` (None: first run, open tickets only)."""
        ...

    def get_tickets(self, ids: Sequence[int]) -> list[Ticket]:
        """Fresh copies of these tickets, batched; missing ones are left out."""
        ...

    def directory(self, *, refresh: bool = False) -> Directory:
        """Agents, groups and memberships, cached and refreshed on a slow interval."""
        ...

    def apply(self, changes: Sequence[TicketChange]) -> list[ApplyResult]:
        """Perform the changes in as few calls as the platform allows; one result per change, in order."""
        ...


class CursorStore(Protocol):
    """Where a connector's resume point lives between runs (the runner's state store)."""

    def get_cursor(self, name: str) -> str | None:
        """The saved cursor for this feed, if any."""
        ...

    def set_cursor(self, name: str, cursor: str) -> None:
        """Persist the cursor after a page was processed."""
        ...


class MemoryCursorStore:
    """A `CursorStore` in a dict, for tests and one-shot commands."""

    def __init__(self, initial: Mapping[str, str] | None = None):
        self.cursors: dict[str, str] = dict(initial or {})

    def get_cursor(self, name: str) -> str | None:
        """The saved cursor for this feed, if any."""
        return self.cursors.get(name)

    def set_cursor(self, name: str, cursor: str) -> None:
        """Remember the cursor."""
        self.cursors[name] = cursor


def sync(connector: Connector, store: CursorStore, *, backfill_all: bool = False) -> Iterator[ChangePage]:
    """Yield pages of changes, persisting the cursor after the caller handled each page.

    The cursor is saved only when the consumer asks for the next page, i.e.
    after it processed the previous one, so a crash mid-page re-reads that page
    rather than skipping it.
    """
    name = f"{connector.platform}:tickets"
    for page in connector.fetch_changes(store.get_cursor(name), backfill_all=backfill_all):
        yield page
        if page.cursor:
            store.set_cursor(name, page.cursor)
