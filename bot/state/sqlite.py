"""The default state store: one SQLite file in WAL mode, safe against a killed process.

Every write runs in a transaction (`BEGIN IMMEDIATE`, so two processes never
interleave a read-modify-write); `synchronous=FULL` makes a committed intent
survive even a power cut. Any SQLite failure (disk full, I/O error, locked)
becomes a `StateError` naming the file, because the runner must never change
a ticket it cannot remember changing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.errors import StateError
from bot.model import EMPTY, Firing, Plan, Target, Ticket
from bot.notifiers.base import Alert
from bot.state import (
    Intent,
    IntentState,
    Mode,
    RecordedPlan,
    iter_chunks,
)
from bot.state.codec import dumps, from_text, seen_fields, ticket_from_json, ticket_to_json, to_text
from bot.state.journal import JournalMixin
from bot.state.migrations import migrate

_CHUNK = 500  # stays below SQLite's bound-parameter limit



def connect(path: str, timeout: float) -> sqlite3.Connection:
    """An autocommit connection in WAL mode (the folder made if needed), shared by deskbot's SQLite tables."""
    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
    return conn

class SqliteStore(JournalMixin):
    """`StateStore` on one SQLite file (default ./deskbot-state/deskbot.sqlite3)."""

    def __init__(self, path: str, *, timeout: float = 5.0, clock: Callable[[], datetime] | None = None):
        self.path = path
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._depth = 0
        try:
            self._conn = connect(path, timeout)
            self._conn.execute("PRAGMA synchronous = FULL")
            migrate(self._conn, path)
        except (sqlite3.Error, OSError) as error:
            raise self._error("open", error)

    # -- plumbing ------------------------------------------------------------
    def _error(self, doing: str, error: Exception) -> StateError:
        """A StateError that says which file failed and what to do about it."""
        text = str(error)
        hint = "check the disk and file permissions"
        if "full" in text:
            hint = "free disk space on that volume, or point DESKBOT_STATE_PATH at another"
        elif "locked" in text or "busy" in text:
            hint = "another process holds a write lock on it for too long"
        elif "readonly" in text or "permission" in text.lower():
            hint = "make the file and its directory writable by deskbot"
        return StateError(f"state store {self.path}: cannot {doing}: {text} ({hint})")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes atomically; nested calls join the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:
                raise self._error("begin a transaction", error)
            self._depth = 1
            try:
                yield
            except BaseException as failure:
                self._depth = 0
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                if isinstance(failure, sqlite3.Error):
                    raise self._error("write", failure)
                raise
            self._depth = 0
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as error:
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise self._error("commit", error)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as error:
                raise self._error("read", error)

    def _run(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Execute one write inside the current transaction (or its own)."""
        with self.transaction():
            return self._conn.execute(sql, args)

    def close(self) -> None:
        """Release the file."""
        with self._lock:
            self._conn.close()

    def probe_write(self, now: datetime) -> None:
        """Prove the store can still write (health checks); raises StateError."""
        self.set_meta("health_probe_at", to_text(now))

    def get_meta(self, key: str) -> str | None:
        """A small named value."""
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str | None) -> None:
        """Set or (with None) delete a named value."""
        if value is None:
            self._run("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                      (key, value, value))

    # -- cursors ---------------------------------------------------------------
    def get_cursor(self, name: str) -> str | None:
        """The saved resume point of a change feed."""
        rows = self._rows("SELECT cursor FROM cursors WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def set_cursor(self, name: str, cursor: str) -> None:
        """Persist a feed's resume point."""
        now = to_text(self.clock())
        self._run("INSERT INTO cursors (name, cursor, updated_at) VALUES (?, ?, ?) "
                  "ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, "
                  "updated_at = excluded.updated_at",
                  (name, cursor, now))

    # -- mirror ----------------------------------------------------------------
    def upsert_tickets(self, tickets: Iterable[Ticket], *, due_at: datetime | None = None) -> None:
        """Replace these tickets in the mirror; `due_at` also marks them for evaluation then.

        A copy older than the version a ticket left the mirror with (solved, deleted) is ignored: a
        late, out-of-order feed item must not bring a finished ticket back.
        """
        due = to_text(due_at)
        tickets = list(tickets)
        with self.transaction():
            gone: dict[str, str] = {}
            for chunk in iter_chunks([t.key for t in tickets], _CHUNK):
                gone.update(self._conn.execute(f"SELECT key, updated_at FROM gone WHERE key IN ({_marks(chunk)})",
                                               chunk).fetchall())
            for t in tickets:
                version = to_text(t.updated_at)
                if t.key in gone:
                    if version is not None and version < gone[t.key]:
                        continue
                    self._conn.execute("DELETE FROM gone WHERE key = ?", (t.key,))  # back for real: reopened
                self._conn.execute(
                    "INSERT INTO tickets (key, platform, id, status, updated_at, data, next_check_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at, "
                    "data = excluded.data, next_check_at = COALESCE(?, next_check_at) "
                    "WHERE excluded.updated_at IS NULL OR tickets.updated_at IS NULL "
                    "OR excluded.updated_at >= tickets.updated_at",  # a late, older copy never wins
                    (t.key, t.platform, t.id, t.status.value, to_text(t.updated_at), ticket_to_json(t), due, due))

    def mark_due(self, at: datetime, platform: str | None = None) -> int:
        """Make every mirrored ticket (of one helpdesk) due at `at`: the rules changed."""
        sql, args = "UPDATE tickets SET next_check_at = ?", [to_text(at)]
        if platform is not None:
            sql += " WHERE platform = ?"
            args.append(platform)
        return self._run(sql, args).rowcount

    def remove_tickets(self, keys: Iterable[str]) -> None:
        """Drop tickets from the mirror, remembering the version each left with (see `upsert_tickets`)."""
        keys = list(keys)
        at = to_text(self.clock())
        with self.transaction():
            for chunk in iter_chunks(keys, _CHUNK):
                self._conn.execute("INSERT OR REPLACE INTO gone (key, updated_at, removed_at) SELECT key, updated_at, "
                                   f"? FROM tickets WHERE key IN ({_marks(chunk)}) AND updated_at IS NOT NULL",
                                   (at, *chunk))
                self._conn.execute(f"DELETE FROM tickets WHERE key IN ({_marks(chunk)})", chunk)

    def mirror(self, platform: str | None = None) -> dict[str, Ticket]:
        """Every mirrored ticket by key."""
        if platform is None:
            rows = self._rows("SELECT key, data FROM tickets ORDER BY key")
        else:
            rows = self._rows("SELECT key, data FROM tickets WHERE platform = ? ORDER BY key", (platform,))
        return {key: ticket_from_json(data) for key, data in rows}

    def tickets(self, keys: Iterable[str]) -> dict[str, Ticket]:
        """The mirrored tickets among these keys."""
        out: dict[str, Ticket] = {}
        for chunk in iter_chunks(list(keys), _CHUNK):
            sql = f"SELECT key, data FROM tickets WHERE key IN ({_marks(chunk)})"
            for key, data in self._rows(sql, chunk):
                out[key] = ticket_from_json(data)
        return out

    def due(self, now: datetime, platform: str | None = None) -> list[str]:
        """Keys of mirrored tickets whose next check is at or before `now`."""
        sql = "SELECT key FROM tickets WHERE next_check_at IS NOT NULL AND next_check_at <= ?"
        args: list[Any] = [to_text(now)]
        if platform is not None:
            sql += " AND platform = ?"
            args.append(platform)
        return [row[0] for row in self._rows(sql + " ORDER BY next_check_at", args)]

    def next_check_at(self, key: str) -> datetime | None:
        """When a ticket is due for re-evaluation."""
        rows = self._rows("SELECT next_check_at FROM tickets WHERE key = ?", (key,))
        return from_text(rows[0][0]) if rows else None

    # -- memory ----------------------------------------------------------------
    def memory(self, ticket_keys: Iterable[str] | None = None,
               mode: Mode = Mode.LIVE) -> dict[tuple[str, str], Firing]:
        """What each rule has fired per ticket."""
        sql = "SELECT rule, ticket_key, matching, occurrence, fired_at FROM memory WHERE mode = ?"
        if ticket_keys is None:
            rows = self._rows(sql, (mode.value,))
        else:
            rows = []
            for chunk in iter_chunks(list(ticket_keys), _CHUNK):
                rows += self._rows(sql + f" AND ticket_key IN ({_marks(chunk)})", (mode.value, *chunk))
        return {(r, k): Firing(bool(m), int(o), from_text(f)) for r, k, m, o, f in rows}

    # -- plans and intents -----------------------------------------------------
    def record_plan(self, plan: Plan, *, now: datetime, mode: Mode, evaluated: Iterable[str] = (),
                    seen: Mapping[str, Ticket] = EMPTY) -> RecordedPlan:
        """Atomically store memory, next checks, intents, outbox entries and audit lines of a plan."""
        at = to_text(now)
        new: list[Intent] = []
        existing: list[str] = []
        enqueued: list[str] = []
        with self.transaction():
            for key in evaluated:
                nxt = plan.next_check_at.get(key)
                self._conn.execute("UPDATE tickets SET next_check_at = ? WHERE key = ?", (to_text(nxt), key))
            for (rule, ticket_key), firing in plan.memory.items():
                self._conn.execute(
                    "INSERT INTO memory (mode, rule, ticket_key, matching, occurrence, fired_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (mode, rule, ticket_key) DO UPDATE SET "
                    "matching = excluded.matching, occurrence = excluded.occurrence, "
                    "fired_at = excluded.fired_at, updated_at = excluded.updated_at",
                    (mode.value, rule, ticket_key, int(firing.matching), firing.occurrence,
                     to_text(firing.fired_at), at))
            for action in plan.actions:
                if mode is Mode.DRY_RUN:
                    self._audit_row(at, mode.value, action.rule, action.ticket_key, action.kind, action.key,
                                    "dry_run", action.reason)
                    continue
                if action.target == Target.NOTIFIER:
                    alerts = Alert.from_action(action).deliveries()
                    enqueued += self.enqueue([replace(a, created_at=now) for a in alerts])
                    continue
                ticket = seen.get(action.ticket_key)
                cursor = self._conn.execute(
                    "INSERT OR IGNORE INTO intents (key, ticket_key, platform, ticket_id, rule, kind, "
                    "target, params, reason, state, attempts, planned_at, updated_at, seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'planned', 0, ?, ?, ?)",
                    (action.key, action.ticket_key, action.platform, action.ticket_id, action.rule,
                     action.kind, action.target.value, dumps(action.params), action.reason, at, at,
                     dumps(seen_fields(ticket) if ticket else {})))
                if cursor.rowcount:
                    self._audit_row(at, mode.value, action.rule, action.ticket_key, action.kind, action.key,
                                    "planned", action.reason)
                    new.append(self._intent_row(action.key))
                else:
                    existing.append(action.key)
        return RecordedPlan(tuple(new), tuple(existing), tuple(enqueued))

    def _intent_row(self, key: str) -> Intent:
        rows = self._conn.execute(f"SELECT {_INTENT_COLUMNS} FROM intents WHERE key = ?", (key,)).fetchall()
        return _intent(rows[0])

    def open_intents(self, platform: str | None = None, target: str | None = None) -> list[Intent]:
        """Planned or claimed intents, oldest first."""
        sql = f"SELECT {_INTENT_COLUMNS} FROM intents WHERE state IN ('planned', 'claimed')"
        args: list[Any] = []
        if platform is not None:
            sql += " AND platform = ?"
            args.append(platform)
        if target is not None:
            sql += " AND target = ?"
            args.append(target)
        return [_intent(r) for r in self._rows(sql + " ORDER BY planned_at, key", args)]

    def intent(self, key: str) -> Intent | None:
        """One intent by action key."""
        rows = self._rows(f"SELECT {_INTENT_COLUMNS} FROM intents WHERE key = ?", (key,))
        return _intent(rows[0]) if rows else None

    def intents(self, state: IntentState | None = None) -> list[Intent]:
        """Intents, optionally in one state."""
        if state is None:
            rows = self._rows(f"SELECT {_INTENT_COLUMNS} FROM intents ORDER BY planned_at, key")
        else:
            rows = self._rows(f"SELECT {_INTENT_COLUMNS} FROM intents WHERE state = ? "
                              "ORDER BY planned_at, key", (state.value,))
        return [_intent(r) for r in rows]

    def claim(self, key: str, *, now: datetime, resolved: Mapping[str, Any],
              rotation: tuple[str, str] | None = None) -> Intent:
        """Mark an intent claimed with its concrete write (and round-robin step) before the write."""
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE intents SET state = 'claimed', attempts = attempts + 1, resolved = ?, updated_at = ? "
                "WHERE key = ? AND state IN ('planned', 'claimed')", (dumps(resolved), to_text(now), key))
            if not cursor.rowcount:
                raise StateError(f"cannot claim action {key}: it is not planned "
                                 "(already finished or unknown)")
            if rotation is not None:
                pool, member = rotation
                self._conn.execute(
                    "INSERT INTO rotation (pool, last_member, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (pool) DO UPDATE SET last_member = excluded.last_member, "
                    "updated_at = excluded.updated_at",
                    (pool, member, to_text(now)))
            return self._intent_row(key)

    def finish(self, key: str, state: IntentState, *, now: datetime, detail: str = "",
               mode: Mode = Mode.LIVE) -> Intent:
        """Record an intent's outcome and its audit line."""
        if state.is_open:
            raise ValueError("finish() takes a final state")
        with self.transaction():
            self._conn.execute("UPDATE intents SET state = ?, updated_at = ?, error = ? WHERE key = ?",
                               (state.value, to_text(now), detail or None, key))
            intent = self._intent_row(key)
            self._audit_row(to_text(now), mode.value, intent.rule, intent.ticket_key, intent.kind, key,
                            state.value, detail)
            return intent

    def release(self, key: str, *, now: datetime, error: str) -> Intent:
        """Return a claimed intent to planned after a failure known to have changed nothing."""
        with self.transaction():
            self._conn.execute("UPDATE intents SET state = 'planned', updated_at = ?, error = ? "
                               "WHERE key = ?", (to_text(now), error, key))
            return self._intent_row(key)

    def rotation(self, pool: str) -> str | None:
        """The member a round-robin pool handed out last."""
        rows = self._rows("SELECT last_member FROM rotation WHERE pool = ?", (pool,))
        return rows[0][0] if rows else None



_INTENT_COLUMNS = ("key, ticket_key, platform, ticket_id, rule, kind, target, params, state, planned_at, "
                   "updated_at, reason, attempts, seen, resolved, error")


def _marks(items: Sequence[Any]) -> str:
    return ", ".join("?" * len(items))


def _intent(row: tuple) -> Intent:
    (key, ticket_key, platform, ticket_id, rule, kind, target, params, state, planned_at, updated_at, reason,
     attempts, seen, resolved, error) = row
    return Intent(key, ticket_key, platform, int(ticket_id), rule, kind, target, json.loads(params),
                  IntentState(state), from_text(planned_at), from_text(updated_at),  # type: ignore[arg-type]
                  reason, int(attempts), json.loads(seen or "{}"), json.loads(resolved) if resolved else None,
                  error)
