"""The SQLite store's side records: lease, Slack outbox and threads, audit log, confirmations, pruning.

Kept apart from `sqlite.py` (mirror, memory, intents) so each module stays
small; `SqliteStore` mixes this in and supplies `_conn`, `_run`, `_rows` and
`transaction`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from bot.state import AuditEntry, Lease, OutboxEntry
from bot.state.codec import dumps, from_text, to_text

_OUTBOX_COLUMNS = ("id, key, channel, payload, state, attempts, created_at, next_attempt_at, ticket_key, "
                   "rule, sent_at, ts, error")


class JournalMixin:
    """Lease, outbox, threads, audit and confirmations on the store's SQLite connection."""

    _conn: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[None]:  # supplied by SqliteStore
        raise NotImplementedError

    def _run(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    # -- lease -------------------------------------------------------------------
    def acquire_lease(self, owner: str, *, now: datetime, ttl: timedelta,
                      name: str = "runner") -> Lease | None:
        """Take or renew the lease; None while another live owner holds it."""
        with self.transaction():
            rows = self._conn.execute("SELECT owner, expires_at FROM leases WHERE name = ?",
                                      (name,)).fetchall()
            if rows and rows[0][0] != owner and (from_text(rows[0][1]) or now) > now:
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

    # -- outbox and threads --------------------------------------------------------
    def enqueue(self, key: str, payload: Mapping[str, Any], *, now: datetime, channel: str | None = None,
                ticket_key: str | None = None, rule: str | None = None) -> bool:
        """Queue an alert once per key; False if that key was already queued."""
        at = to_text(now)
        cursor = self._run(
            "INSERT OR IGNORE INTO outbox (key, channel, ticket_key, rule, payload, state, attempts, "
            "created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            (key, channel, ticket_key, rule, dumps(payload), at, at))
        return bool(cursor.rowcount)

    def pending(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        """Alerts due for a delivery attempt, oldest first."""
        rows = self._rows(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state = 'pending' "
                          "AND next_attempt_at <= ? ORDER BY id LIMIT ?", (to_text(now), limit))
        return [_outbox(r) for r in rows]

    def outbox(self, state: str | None = None) -> list[OutboxEntry]:
        """Every outbox entry (optionally in one state), oldest first."""
        if state is None:
            rows = self._rows(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY id")
        else:
            rows = self._rows(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state = ? ORDER BY id", (state,))
        return [_outbox(r) for r in rows]

    def mark_sent(self, entry_id: int, *, now: datetime, ts: str | None = None) -> None:
        """Delivery confirmed."""
        self._run("UPDATE outbox SET state = 'sent', sent_at = ?, ts = ?, attempts = attempts + 1, "
                  "error = NULL WHERE id = ?", (to_text(now), ts, entry_id))

    def mark_retry(self, entry_id: int, *, now: datetime, error: str, retry_at: datetime) -> None:
        """Delivery failed for now; try again at `retry_at`."""
        self._run("UPDATE outbox SET attempts = attempts + 1, error = ?, next_attempt_at = ? WHERE id = ?",
                  (error, to_text(retry_at), entry_id))

    def mark_dead(self, entry_id: int, *, now: datetime, error: str, state: str = "failed") -> None:
        """Delivery abandoned (permanent error), or folded into a digest (state='digested')."""
        self._run("UPDATE outbox SET state = ?, error = ?, sent_at = ? WHERE id = ?",
                  (state, error, to_text(now), entry_id))

    def thread(self, channel: str, ticket_key: str) -> str | None:
        """The Slack thread ts of a ticket's alerts in a channel."""
        rows = self._rows("SELECT ts FROM threads WHERE channel = ? AND ticket_key = ?",
                          (channel, ticket_key))
        return rows[0][0] if rows else None

    def set_thread(self, channel: str, ticket_key: str, ts: str) -> None:
        """Remember a ticket's Slack thread in a channel."""
        self._run("INSERT INTO threads (channel, ticket_key, ts) VALUES (?, ?, ?) "
                  "ON CONFLICT (channel, ticket_key) DO UPDATE SET ts = excluded.ts",
                  (channel, ticket_key, ts))

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
        """Forget finished intents, delivered alerts and memory of tickets gone before `before`."""
        cut = (to_text(before),)
        with self.transaction():
            n = self._conn.execute("DELETE FROM intents WHERE state NOT IN ('planned', 'claimed') "
                                   "AND updated_at < ?", cut).rowcount
            n += self._conn.execute("DELETE FROM outbox WHERE state != 'pending' AND created_at < ?",
                                    cut).rowcount
            n += self._conn.execute("DELETE FROM memory WHERE updated_at < ? AND ticket_key NOT IN "
                                    "(SELECT key FROM tickets)", cut).rowcount
        return n


def _audit_entries(rows: Iterator[tuple]) -> Iterator[AuditEntry]:
    for id, at, mode, rule, ticket_key, kind, key, result, detail in rows:
        yield AuditEntry(from_text(at), mode, rule, ticket_key, kind, key, result, detail,  # type: ignore[arg-type]
                         id)


def _outbox(row: tuple) -> OutboxEntry:
    (id, key, channel, payload, state, attempts, created_at, next_attempt_at, ticket_key, rule, sent_at, ts,
     error) = row
    return OutboxEntry(int(id), key, channel, json.loads(payload), state, int(attempts),
                       from_text(created_at), from_text(next_attempt_at),  # type: ignore[arg-type]
                       ticket_key, rule, from_text(sent_at), ts, error)
