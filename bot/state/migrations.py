"""Versioned schema of the SQLite store; a new version appends a script, never edits an old one.

The version lives in `PRAGMA user_version`, so `migrate()` applies exactly the
scripts a file has not seen, each in its own transaction. A file written by a
newer deskbot is refused rather than silently misread.
"""

from __future__ import annotations

import sqlite3

from bot.errors import StateError

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE cursors (name TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE tickets (
        key TEXT PRIMARY KEY, platform TEXT NOT NULL, id INTEGER NOT NULL, status TEXT NOT NULL,
        updated_at TEXT, next_check_at TEXT, data TEXT NOT NULL
    );
    CREATE INDEX tickets_due ON tickets (next_check_at) WHERE next_check_at IS NOT NULL;
    CREATE INDEX tickets_platform ON tickets (platform);
    CREATE TABLE memory (
        mode TEXT NOT NULL, rule TEXT NOT NULL, ticket_key TEXT NOT NULL, matching INTEGER NOT NULL,
        occurrence INTEGER NOT NULL, fired_at TEXT, updated_at TEXT NOT NULL,
        PRIMARY KEY (mode, rule, ticket_key)
    );
    CREATE INDEX memory_ticket ON memory (ticket_key);
    CREATE TABLE intents (
        key TEXT PRIMARY KEY, ticket_key TEXT NOT NULL, platform TEXT NOT NULL, ticket_id INTEGER NOT NULL,
        rule TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, params TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        planned_at TEXT NOT NULL, updated_at TEXT NOT NULL, seen TEXT NOT NULL DEFAULT '{}',
        resolved TEXT, error TEXT
    );
    CREATE INDEX intents_open ON intents (state, planned_at) WHERE state IN ('planned', 'claimed');
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, ticket_key TEXT NOT NULL,
        rule TEXT NOT NULL DEFAULT '', alert TEXT NOT NULL, state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        retry_at TEXT, error TEXT, ambiguous INTEGER NOT NULL DEFAULT 0, channel TEXT, ts TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL
    );
    CREATE INDEX outbox_open ON outbox (seq) WHERE state IN ('pending', 'sending');
    CREATE TABLE threads (
        ticket_key TEXT NOT NULL, channel TEXT NOT NULL, ts TEXT NOT NULL, root_keys TEXT NOT NULL,
        resolved TEXT, resolved_at TEXT, PRIMARY KEY (ticket_key, channel, ts)
    );
    CREATE INDEX threads_message ON threads (channel, ts);
    CREATE TABLE rotation (pool TEXT PRIMARY KEY, last_member TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TEXT NOT NULL);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, mode TEXT NOT NULL, rule TEXT NOT NULL,
        ticket_key TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, result TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_ticket ON audit (ticket_key, id);
    CREATE INDEX audit_rule ON audit (rule, id);
    CREATE INDEX audit_at ON audit (at);
    CREATE TABLE confirmations (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, confirmed_at TEXT NOT NULL);
    """,
    # 2: the last version of tickets that left the mirror, so a late, older copy cannot bring them back.
    """
    CREATE TABLE gone (key TEXT PRIMARY KEY, updated_at TEXT NOT NULL, removed_at TEXT NOT NULL);
    CREATE INDEX gone_removed ON gone (removed_at);
    """,
)

LATEST = len(MIGRATIONS)


def version(conn: sqlite3.Connection) -> int:
    """The schema version a database file is at (0: empty)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: str = "") -> int:
    """Bring the schema to the latest version; returns the version found before."""
    found = version(conn)
    if found > LATEST:
        raise StateError(
            f"state store {path or '(memory)'} has schema version {found}, newer than this deskbot "
            f"understands ({LATEST}); upgrade deskbot or point DESKBOT_STATE_PATH at another file"
        )
    for number in range(found + 1, LATEST + 1):
        script = MIGRATIONS[number - 1]
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in (s.strip() for s in script.split(";")):
                if statement:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found
