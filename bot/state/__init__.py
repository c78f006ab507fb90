"""What the runner remembers between cycles and across restarts, behind one small interface.

The store holds connector cursors, the mirror of open tickets (so time-based
rules need no API call), the engine's memory and each ticket's next check, the
action intents that make helpdesk writes exactly-once, the Slack outbox and
thread ids, round-robin positions, the runner lease and the audit log.
`SqliteStore` is the default (one WAL file); `MemoryStore` serves tests and
one-shot commands; a PostgreSQL store implements the same `StateStore`.

Intent lifecycle (one row per `PlannedAction.key`)::

    planned --claim--> claimed --> done | failed | skipped
       |                  |  (crash: resolved by reading the ticket)
       +------------------+--> expired   (too old to act on safely)
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from bot.connectors.base import CursorStore
from bot.model import EMPTY, Firing, Plan, Ticket
from bot.notifiers.base import Outbox, OutboxEntry

DEFAULT_STATE_PATH = "./deskbot-state/deskbot.sqlite3"


class IntentState(enum.StrEnum):
    """Where one planned action stands."""

    PLANNED = "planned"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        """Planned or claimed: the executor still owes this action an outcome."""
        return self in (IntentState.PLANNED, IntentState.CLAIMED)


class Mode(enum.StrEnum):
    """Whether actions are performed (live) or only recorded (dry_run)."""

    LIVE = "live"
    DRY_RUN = "dry_run"


@dataclass(frozen=True, slots=True)
class Intent:
    """A recorded planned action and its progress; `resolved` is the concrete write once claimed."""

    key: str
    ticket_key: str
    platform: str
    ticket_id: int
    rule: str
    kind: str
    target: str
    params: Mapping[str, Any]
    state: IntentState
    planned_at: datetime
    updated_at: datetime
    reason: str = ""
    attempts: int = 0
    seen: Mapping[str, Any] = field(default_factory=dict)
    resolved: Mapping[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log: an action planned, performed, skipped or failed."""

    at: datetime
    mode: str
    rule: str
    ticket_key: str
    kind: str
    key: str
    result: str
    detail: str = ""
    id: int = 0


@dataclass(frozen=True, slots=True)
class Lease:
    """Who may act on this store, until when."""

    owner: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RecordedPlan:
    """What `record_plan` stored: the intents it created and those that already existed."""

    new_intents: tuple[Intent, ...] = ()
    existing_keys: tuple[str, ...] = ()
    enqueued: tuple[str, ...] = ()
    audit_ids: tuple[int, ...] = field(default_factory=tuple)


@runtime_checkable
class StateStore(CursorStore, Outbox, Protocol):
    """Everything the runner persists. Every write raises `bot.errors.StateError` when it cannot record."""

    path: str
    clock: Callable[[], datetime]

    # -- housekeeping --------------------------------------------------------
    def transaction(self) -> AbstractContextManager[None]:
        """Group writes atomically; nested calls join the outer transaction."""
        ...

    def close(self) -> None:
        """Release the file/connection."""
        ...

    def probe_write(self, now: datetime) -> None:
        """Prove the store can still write (health checks); raises StateError."""
        ...

    def get_meta(self, key: str) -> str | None:
        """A small named value (e.g. the last good rules fingerprint)."""
        ...

    def set_meta(self, key: str, value: str | None) -> None:
        """Set or (with None) delete a named value."""
        ...

    # -- cursors (bot.connectors.base.CursorStore) ----------------------------
    def get_cursor(self, name: str) -> str | None:
        """The saved resume point of a change feed."""
        ...

    def set_cursor(self, name: str, cursor: str) -> None:
        """Persist a feed's resume point after its page was processed."""
        ...

    # -- mirror of open tickets ----------------------------------------------
    def upsert_tickets(self, tickets: Iterable[Ticket], *, due_at: datetime | None = None) -> None:
        """Replace tickets in the mirror; with `due_at` they are due for evaluation then, else keep their check."""
        ...

    def mark_due(self, at: datetime, platform: str | None = None) -> int:
        """Make every mirrored ticket (of one helpdesk) due at `at`, e.g. after the rules changed."""
        ...

    def remove_tickets(self, keys: Iterable[str]) -> None:
        """Drop tickets from the mirror (solved, closed, deleted)."""
        ...

    def mirror(self, platform: str | None = None) -> dict[str, Ticket]:
        """Every mirrored ticket by key, optionally for one helpdesk."""
        ...

    def tickets(self, keys: Iterable[str]) -> dict[str, Ticket]:
        """The mirrored tickets among these keys."""
        ...

    def due(self, now: datetime, platform: str | None = None) -> list[str]:
        """Keys of mirrored tickets whose next check is at or before `now`."""
        ...

    def next_check_at(self, key: str) -> datetime | None:
        """When a ticket is due for re-evaluation, if ever."""
        ...

    # -- engine memory -------------------------------------------------------
    def memory(self, ticket_keys: Iterable[str] | None = None,
               mode: Mode = Mode.LIVE) -> dict[tuple[str, str], Firing]:
        """What each rule has fired per ticket (all, or for these tickets)."""
        ...

    # -- plans and intents ---------------------------------------------------
    def record_plan(self, plan: Plan, *, now: datetime, mode: Mode, evaluated: Iterable[str] = (),
                    seen: Mapping[str, Ticket] = EMPTY) -> RecordedPlan:
        """Atomically store memory, next checks, intents, outbox entries and audit lines of a plan."""
        ...

    def open_intents(self, platform: str | None = None, target: str | None = None) -> list[Intent]:
        """Planned or claimed intents, oldest first."""
        ...

    def intent(self, key: str) -> Intent | None:
        """One intent by action key."""
        ...

    def intents(self, state: IntentState | None = None) -> list[Intent]:
        """Intents, optionally in one state."""
        ...

    def claim(self, key: str, *, now: datetime, resolved: Mapping[str, Any],
              rotation: tuple[str, str] | None = None) -> Intent:
        """Mark an intent claimed with its concrete write (and round-robin step) before the write."""
        ...

    def finish(self, key: str, state: IntentState, *, now: datetime, detail: str = "",
               mode: Mode = Mode.LIVE) -> Intent:
        """Record an intent's outcome and its audit line."""
        ...

    def release(self, key: str, *, now: datetime, error: str) -> Intent:
        """Return a claimed intent to planned after a failure known to have changed nothing."""
        ...

    # -- round robin -----------------------------------------------------------
    def rotation(self, pool: str) -> str | None:
        """The member a round-robin pool handed out last."""
        ...

    # -- lease -----------------------------------------------------------------
    def acquire_lease(self, owner: str, *, now: datetime, ttl: timedelta, name: str = "runner",
                      steal_from: str | None = None) -> Lease | None:
        """Take or renew the lease; None while another live owner holds it (`steal_from`: one known dead)."""
        ...

    def lease(self, name: str = "runner") -> Lease | None:
        """The current lease holder, expired or not."""
        ...

    def release_lease(self, owner: str, name: str = "runner") -> None:
        """Give the lease up (graceful shutdown) if we hold it."""
        ...

    # -- outbox and threads: the whole `bot.notifiers.base.Outbox` protocol, plus: ----
    def outbox(self, state: str | None = None) -> list[OutboxEntry]:
        """Every outbox entry (optionally in one state) in enqueue order."""
        ...

    # -- audit ------------------------------------------------------------------
    def audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append audit lines."""
        ...

    def audit_log(self, *, ticket_key: str | None = None, rule: str | None = None,
                  since: datetime | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Audit lines, newest last, filtered."""
        ...

    # -- rule confirmations (blast-radius guard) ----------------------------------
    def counts(self) -> dict[str, Any]:
        """Sizes of the mirror, intents and outbox by state, for `deskbot status`."""
        ...

    def confirmations(self) -> dict[str, str]:
        """Rule name -> fingerprint an operator confirmed."""
        ...

    def confirm_rule(self, name: str, fingerprint: str, *, now: datetime) -> None:
        """Record that an operator confirmed a held rule version."""
        ...

    def prune(self, *, before: datetime) -> int:
        """Forget finished intents, sent alerts and memory of tickets gone before `before`."""
        ...


def open_store(path: str | None = None) -> StateStore:
    """The store at `path` (default ./deskbot-state/deskbot.sqlite3; ':memory:' for a throwaway one)."""
    from bot.state.memory import MemoryStore
    from bot.state.sqlite import SqliteStore

    if path == ":memory:":
        return MemoryStore()
    return SqliteStore(path or DEFAULT_STATE_PATH)


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Slices of at most `size` items (SQL parameter limits, API batch limits)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


__all__ = [
    "DEFAULT_STATE_PATH",
    "AuditEntry",
    "Intent",
    "IntentState",
    "Lease",
    "Mode",
    "RecordedPlan",
    "StateStore",
    "iter_chunks",
    "open_store",
]
