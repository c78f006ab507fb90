"""The SQLite store's side records: lease, Slack outbox and threads, audit log, confirmations, pruning.

Kept apart from `sqlite.py` (mirror, memory, intents) so each module stays
small; `SqliteStore` mixes this in and supplies `_conn`, `_run`, `_rows` and
`transaction`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from bot.notifiers.base import Alert, OutboxEntry, Thread
from bot.runtime.crash import crash_point
from bot.state import AuditEntry, Lease
from bot.state.codec import dumps, from_text, to_text

_OUTBOX_COLUMNS = "key, alert, seq, state, attempts, retry_at, error, ambiguous, channel, ts"
_THREAD_COLUMNS = "ticket_key, channel, ts, root_keys, resolved, resolved_at"


class JournalMixin:
    """Lease, outbox, threads, audit and confirmations on the store's SQLite connection."""

    _conn: sqlite3.Connection
    clock: Callable[[], datetime]

    def transaction(self) -> AbstractContextManager[None]:  # supplied by SqliteStore
        raise NotImplementedError

    def _run(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    # -- lease -------------------------------------------------------------------
    def acquire_lease(self, owner: str, *, now: datetime, ttl: timedelta, name: str = "runner",
                      steal_from: str | None = None) -> Lease | None:
        """Take or renew the lease; None while another live owner holds it (`steal_from`: one known dead)."""
        with self.transaction():
            rows = self._conn.execute("SELECT owner, expires_at FROM leases WHERE name = ?",
                                      (name,)).fetchall()
            if rows and rows[0][0] not in (owner, steal_from) and (from_text(rows[0][1]) or now) > now:
                return None
            expires = now + ttl
            self._conn.execute(
                "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) "
                "DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
                (name, owner, to_text(expires)))
            return Lease(owner, expires)

    def lease(self, name: str = "runner") -> Lease | None:
        """The current lease holder, expired or not."""
        rows = self._rows("SELECT owner, expires_at FROM leases WHERE name = ?", (name,))
        return Lease(rows[0][0], from_text(rows[0][1])) if rows else None  # type: ignore[arg-type]

    def release_lease(self, owner: str, name: str = "runner") -> None:
        """Give the lease up if we hold it."""
        self._run("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    # -- outbox and threads (bot.notifiers.base.Outbox) -------------------------------
    def enqueue(self, alerts: Sequence[Alert]) -> list[str]:
        """Add alerts not seen before (by key, whatever their state); return the keys added."""
        added: list[str] = []
        at = to_text(self.clock())
        with self.transaction():
            for alert in alerts:
                cursor = self._conn.execute(
                    "INSERT OR IGNORE INTO outbox (key, ticket_key, rule, alert, state, created_at, "
                    "updated_at) "
                    "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                    (alert.key, alert.ticket_key, alert.rule, dumps(alert.to_dict()), at, at))
                if cursor.rowcount:
                    added.append(alert.key)
                    self._audit_row(at, "live", alert.rule, alert.ticket_key, alert.kind, alert.key, "queued",
                                    alert.channel or alert.user or "")
        return added

    def pending(self) -> list[OutboxEntry]:
        """Entries in state pending or sending, in enqueue order (sending ones as ambiguous)."""
        rows = self._rows(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state IN ('pending', 'sending') "
                          "ORDER BY seq")
        return [_outbox(r, pending=True) for r in rows]

    def get(self, key: str) -> OutboxEntry | None:
        """The entry with this key, in any state."""
        rows = self._rows(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE key = ?", (key,))
        return _outbox(rows[0]) if rows else None

    def outbox(self, state: str | None = None) -> list[OutboxEntry]:
        """Every entry (optionally in one state) in enqueue order, for `status`, tests and the demo."""
        if state is None:
            rows = self._rows(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY seq")
        else:
            rows = self._rows(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state = ? ORDER BY seq", (state,))
        return [_outbox(r) for r in rows]

    def mark_sending(self, keys: Sequence[str]) -> None:
        """Record that a post of these entries starts now (a crash leaves them ambiguous)."""
        at = to_text(self.clock())
        with self.transaction():
            for key in keys:
                self._conn.execute("UPDATE outbox SET state = 'sending', updated_at = ? WHERE key = ?",
                                   (at, key))
        crash_point("before_post")

    def mark_sent(self, key: str, channel: str | None, ts: str | None) -> None:
        """Record a delivered entry and where its message lives."""
        crash_point("after_post")
        at = to_text(self.clock())
        with self.transaction():
            self._conn.execute("UPDATE outbox SET state = 'sent', channel = ?, ts = ?, retry_at = NULL, "
                               "updated_at = ? WHERE key = ?", (channel, ts, at, key))
            self._outbox_audit(key, at, "sent", channel or "")

    def mark_failed(self, key: str, error: str, retry_at: datetime | None, *,
                    ambiguous: bool = False) -> None:
        """Count a failed attempt: back to pending until `retry_at`, or dead when `retry_at` is None."""
        at = to_text(self.clock())
        with self.transaction():
            self._conn.execute(
                "UPDATE outbox SET state = ?, attempts = attempts + 1, retry_at = ?, error = ?, "
                "ambiguous = MAX(ambiguous, ?), updated_at = ? WHERE key = ?",
                ("dead" if retry_at is None else "pending", to_text(retry_at), error, int(ambiguous), at,
                 key))
            if retry_at is None:
                self._outbox_audit(key, at, "dead", error)

    def _outbox_audit(self, key: str, at: str | None, result: str, detail: str) -> None:
        rows = self._conn.execute("SELECT rule, ticket_key, alert FROM outbox WHERE key = ?",
                                  (key,)).fetchall()
        if rows:
            rule, ticket_key, alert = rows[0]
            self._audit_row(at, "live", rule, ticket_key, json.loads(alert).get("kind", "alert"), key, result,
                            detail)

    def thread_for(self, ticket_key: str, channel: str) -> Thread | None:
        """The ticket's unresolved thread in a channel, if any (the latest)."""
        rows = self._rows(f"SELECT {_THREAD_COLUMNS} FROM threads WHERE ticket_key = ? AND channel = ? "
                          "AND resolved IS NULL", (ticket_key, channel))
        threads = [_thread(r) for r in rows]
        return max(threads, key=lambda t: _ts_order(t.ts), default=None)

    def set_thread(self, thread: Thread) -> None:
        """Insert or replace a thread, keyed by (ticket_key, channel, ts)."""
        self._run(f"INSERT OR REPLACE INTO threads ({_THREAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                  (thread.ticket_key, thread.channel, thread.ts, json.dumps(list(thread.root_keys)),
                   thread.resolved, to_text(thread.resolved_at)))

    def open_threads(self, ticket_key: str) -> list[Thread]:
        """The ticket's unresolved threads, in every channel."""
        rows = self._rows(f"SELECT {_THREAD_COLUMNS} FROM threads WHERE ticket_key = ? AND resolved IS NULL "
                          "ORDER BY channel, ts", (ticket_key,))
        return [_thread(r) for r in rows]

    def message_threads(self, channel: str, ts: str) -> list[Thread]:
        """Every thread (resolved or not) opened by one message: one, or a digest's tickets."""
        rows = self._rows(f"SELECT {_THREAD_COLUMNS} FROM threads WHERE channel = ? AND ts = ? "
                          "ORDER BY ticket_key", (channel, ts))
        return [_thread(r) for r in rows]

    # -- audit --------------------------------------------------------------------
    def _audit_row(self, at: str | None, mode: str, rule: str, ticket_key: str, kind: str, key: str,
                   result: str, detail: str) -> None:
        self._conn.execute("INSERT INTO audit (at, mode, rule, ticket_key, kind, key, result, detail) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (at, mode, rule, ticket_key, kind, key, result, detail))

    def audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append audit lines."""
        with self.transaction():
            for e in entries:
                self._audit_row(to_text(e.at), e.mode, e.rule, e.ticket_key, e.kind, e.key, e.result,
                                e.detail)

    def audit_log(self, *, ticket_key: str | None = None, rule: str | None = None,
                  since: datetime | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Audit lines, newest last, filtered."""
        where, args = ["1 = 1"], []
        for column, value in (("ticket_key", ticket_key), ("rule", rule)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("at >= ?")
            args.append(to_text(since))
        rows = self._rows("SELECT id, at, mode, rule, ticket_key, kind, key, result, detail FROM audit WHERE "
                          + " AND ".join(where) + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return list(_audit_entries(reversed(rows)))

    # -- confirmations, stats, pruning ------------------------------------------------
    def confirmations(self) -> dict[str, str]:
        """Rule name -> fingerprint an operator confirmed."""
        return dict(self._rows("SELECT name, fingerprint FROM confirmations"))

    def confirm_rule(self, name: str, fingerprint: str, *, now: datetime) -> None:
        """Record that an operator confirmed a held rule version."""
        self._run("INSERT INTO confirmations (name, fingerprint, confirmed_at) VALUES (?, ?, ?) "
                  "ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint, "
                  "confirmed_at = excluded.confirmed_at", (name, fingerprint, to_text(now)))

    def counts(self) -> dict[str, Any]:
        """Sizes of the mirror, intents by state and outbox by state (for `deskbot status`)."""
        return {
            "mirror": dict(self._rows("SELECT platform, COUNT(*) FROM tickets GROUP BY platform")),
            "intents": dict(self._rows("SELECT state, COUNT(*) FROM intents GROUP BY state")),
            "outbox": dict(self._rows("SELECT state, COUNT(*) FROM outbox GROUP BY state")),
            "audit": self._rows("SELECT COUNT(*) FROM audit")[0][0],
        }

    def prune(self, *, before: datetime) -> int:
        """Forget finished intents, delivered alerts, and memory and last versions of tickets gone before `before`."""
        cut = (to_text(before),)
        with self.transaction():
            n = self._conn.execute("DELETE FROM intents WHERE state NOT IN ('planned', 'claimed') "
                                   "AND updated_at < ?", cut).rowcount
            n += self._conn.execute("DELETE FROM outbox WHERE state IN ('sent', 'dead') AND updated_at < ?",
                                    cut).rowcount
            n += self._conn.execute("DELETE FROM threads WHERE resolved_at < ?", cut).rowcount
            n += self._conn.execute("DELETE FROM memory WHERE updated_at < ? AND ticket_key NOT IN "
                                    "(SELECT key FROM tickets)", cut).rowcount
            n += self._conn.execute("DELETE FROM gone WHERE removed_at < ?", cut).rowcount
        return n


def _audit_entries(rows: Iterator[tuple]) -> Iterator[AuditEntry]:
    for id, at, mode, rule, ticket_key, kind, key, result, detail in rows:
        yield AuditEntry(from_text(at), mode, rule, ticket_key, kind, key, result, detail,  # type: ignore[arg-type]
                         id)


def _outbox(row: tuple, *, pending: bool = False) -> OutboxEntry:
    key, alert, seq, state, attempts, retry_at, error, ambiguous, channel, ts = row
    ambiguous = bool(ambiguous)
    if pending and state == "sending":  # the process died mid-post: it may have reached Slack
        state, ambiguous = "pending", True
    return OutboxEntry(key, Alert.from_dict(json.loads(alert)), int(seq), state, int(attempts),
                       from_text(retry_at), error, ambiguous, channel, ts)


def _thread(row: tuple) -> Thread:
    ticket_key, channel, ts, root_keys, resolved, resolved_at = row
    return Thread(ticket_key, channel, ts, tuple(json.loads(root_keys)), resolved, from_text(resolved_at))


def _ts_order(ts: str) -> tuple[int, int]:
    """Slack ts strings compared as numbers without going through float."""
    seconds, _, micros = ts.partition(".")
    return int(seconds or 0), int(micros or 0)
