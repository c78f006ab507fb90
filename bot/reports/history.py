"""Ticket history for reports, kept beside the state store in the same SQLite file.

The state store mirrors only open tickets; reports also need tickets solved
last week and the backlog as it was four weeks ago. Each cycle the runner hands
every ticket it fetched to `record_snapshot(store, tickets, now)`; this module
keeps each ticket's latest snapshot (without the raw payload) and one row per
change of status, group or assignee, so any past backlog can be recounted.
No API call is ever made for a report.

Tables (created on demand, never touching the store's own schema version):
`history_tickets` (latest snapshot and last state per ticket),
`history_changes` (the transitions), `history_meta` (when recording began).
Tickets with no change for longer than the retention (120 days) are pruned
daily; open ones among them are still in the mirror.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.errors import StateError
from bot.model import EMPTY, Status, Ticket
from bot.reports.records import Change, TicketRecord, changes_since
from bot.state.codec import from_text, ticket_from_json, ticket_to_json, to_text
from bot.state.sqlite import connect

RETENTION = timedelta(days=120)
_DESCRIPTION_CHARS = 2000  # enough for grouping by terms; full texts stay in the helpdesk
_CHUNK = 500
_PRUNE_EVERY = timedelta(days=1)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS history_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history_tickets (
    key TEXT PRIMARY KEY, platform TEXT NOT NULL, created_at TEXT, resolved INTEGER NOT NULL,
    last_status TEXT NOT NULL, last_group TEXT, last_assignee TEXT, last_change_at TEXT NOT NULL,
    last_seq INTEGER NOT NULL, fingerprint TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_tickets_created ON history_tickets (created_at);
CREATE INDEX IF NOT EXISTS history_tickets_last_change ON history_tickets (last_change_at);
CREATE INDEX IF NOT EXISTS history_tickets_open ON history_tickets (resolved);
CREATE TABLE IF NOT EXISTS history_changes (
    key TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, status TEXT NOT NULL, grp TEXT,
    assignee TEXT, PRIMARY KEY (key, seq)
)
"""


class HistoryStore:
    """Ticket records in one SQLite file (the state store's, by default)."""

    def __init__(self, path: str, *, timeout: float = 5.0, retention: timedelta = RETENTION):
        self.path = path
        self.retention = retention
        self._lock = threading.RLock()
        self._pruned_at: datetime | None = None
        try:
            self._conn = connect(path, timeout)
            with self._transaction("create the history tables"):
                for statement in _SCHEMA.split(";"):
                    self._conn.execute(statement)
        except (sqlite3.Error, OSError) as error:
            raise self._error("open", error) from None

    def __repr__(self) -> str:
        return f"HistoryStore({self.path!r})"

    @classmethod
    def for_store(cls, store: Any) -> HistoryStore:
        """The history beside a state store (one per store object; a `:memory:` store gets its own)."""
        found = _BESIDE.get(store)
        if found is None:
            found = cls(getattr(store, "path", ":memory:"))
            _BESIDE[store] = found
        return found

    def close(self) -> None:
        """Release the connection."""
        with self._lock:
            self._conn.close()

    # -- writing -------------------------------------------------------------
    def record(self, tickets: Iterable[Ticket], now: datetime) -> int:
        """Store these snapshots (open or resolved) and any change they show; returns changes added."""
        slim = {t.key: _slim(t) for t in tickets}
        added = 0
        with self._transaction("record ticket history"):
            if self._meta("since") is None:
                self._conn.execute("INSERT INTO history_meta (key, value) VALUES ('since', ?)", (to_text(now),))
            for keys in _chunks(list(slim)):
                known = {row[0]: row[1:] for row in self._conn.execute(
                    "SELECT key, last_status, last_group, last_assignee, last_change_at, last_seq, fingerprint "
                    f"FROM history_tickets WHERE key IN ({','.join('?' * len(keys))})", keys)}
                for key in keys:
                    added += self._record_one(slim[key], known.get(key), now)
        if self._pruned_at is None or now - self._pruned_at >= _PRUNE_EVERY:
            self.prune(before=now - self.retention)
            self._pruned_at = now
        return added

    def _record_one(self, ticket: Ticket, known: tuple | None, now: datetime) -> int:
        data = ticket_to_json(ticket)
        fingerprint = hashlib.sha256(data.encode()).hexdigest()[:32]
        last, seq = None, 0
        if known is not None:
            status, group, assignee, at, seq, old_fingerprint = known
            if old_fingerprint == fingerprint:
                return 0
            last = Change(from_text(at), Status(status), group, assignee)  # type: ignore[arg-type]
        new = changes_since(last, ticket, now)
        for change in new:
            seq += 1
            self._conn.execute("INSERT INTO history_changes (key, seq, at, status, grp, assignee) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (ticket.key, seq, to_text(change.at),
                                                              change.status.value, change.group, change.assignee))
        state = new[-1] if new else last
        assert state is not None
        self._conn.execute(
            "INSERT INTO history_tickets (key, platform, created_at, resolved, last_status, last_group, "
            "last_assignee, last_change_at, last_seq, fingerprint, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at, resolved = excluded.resolved, "
            "last_status = excluded.last_status, last_group = excluded.last_group, "
            "last_assignee = excluded.last_assignee, last_change_at = excluded.last_change_at, "
            "last_seq = excluded.last_seq, fingerprint = excluded.fingerprint, data = excluded.data",
            (ticket.key, ticket.platform, to_text(ticket.created_at), int(not state.open), state.status.value,
             state.group, state.assignee, to_text(state.at), seq, fingerprint, data))
        return len(new)

    def prune(self, *, before: datetime) -> int:
        """Forget tickets whose last change is before `before`; returns how many.

        An open ticket untouched that long is still in the mirror, which the
        reports read as well, so only its early transitions are lost.
        """
        cut = (to_text(before),)
        with self._transaction("prune ticket history"):
            self._conn.execute("DELETE FROM history_changes WHERE key IN (SELECT key FROM history_tickets "
                               "WHERE last_change_at < ?)", cut)
            return self._conn.execute("DELETE FROM history_tickets WHERE last_change_at < ?", cut).rowcount

    # -- reading -------------------------------------------------------------
    def since(self) -> datetime | None:
        """When recording began: earlier backlogs are not fully known."""
        return from_text(self._meta("since"))

    def records(self, since: datetime) -> list[TicketRecord]:
        """Tickets that were open at any time since `since` or created since then, with their changes."""
        where = "t.resolved = 0 OR t.last_change_at >= ? OR t.created_at >= ?"
        args = (to_text(since), to_text(since))
        changes: dict[str, list[Change]] = {}
        for key, at, status, group, assignee in self._rows(
                f"SELECT c.key, c.at, c.status, c.grp, c.assignee FROM history_changes c "
                f"JOIN history_tickets t ON t.key = c.key WHERE {where} ORDER BY c.key, c.seq", args):
            changes.setdefault(key, []).append(Change(from_text(at), Status(status), group, assignee))  # type: ignore[arg-type]
        return [TicketRecord(ticket_from_json(data), tuple(changes.get(key, ())))
                for key, data in self._rows(f"SELECT t.key, t.data FROM history_tickets t WHERE {where} "
                                            "ORDER BY t.key", args)]

    # -- plumbing ------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM history_meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as error:
                raise self._error("read ticket history", error) from None

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[None]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:
                raise self._error(doing, error) from None
            try:
                yield
                self._conn.execute("COMMIT")
            except BaseException as failure:
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                if isinstance(failure, sqlite3.Error):
                    raise self._error(doing, failure) from None
                raise

    def _error(self, doing: str, error: Exception) -> StateError:
        text = str(error)
        hint = "check the disk and file permissions"
        if "full" in text:
            hint = "free disk space on that volume, or point the state path at another"
        elif "locked" in text or "busy" in text:
            hint = "another process holds a write lock on it for too long"
        return StateError(f"report history in {self.path}: cannot {doing}: {text} ({hint})")


_BESIDE: weakref.WeakKeyDictionary[Any, HistoryStore] = weakref.WeakKeyDictionary()


def record_snapshot(store: Any, tickets: Iterable[Ticket], now: datetime) -> int:
    """Record what the runner fetched this cycle (open and resolved tickets) beside `store`."""
    return HistoryStore.for_store(store).record(tickets, now)


def _slim(ticket: Ticket) -> Ticket:
    """The snapshot worth keeping: no raw payload, no derived facts, a bounded description."""
    extra: dict[str, Any] = {"related": EMPTY} if hasattr(type(ticket), "related") else {}
    return replace(ticket, raw=EMPTY, description=ticket.description[:_DESCRIPTION_CHARS], **extra)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]
