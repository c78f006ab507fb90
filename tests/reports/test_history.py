"""Ticket history beside the state store: transitions survive the mirror forgetting solved tickets."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.errors import StateError
from bot.model import Status
from bot.reports.history import HistoryStore, record_snapshot
from bot.reports.records import Change, from_snapshot, merge_snapshots
from bot.state.memory import MemoryStore
from bot.state.migrations import LATEST
from bot.state.sqlite import SqliteStore

from .helpers import NOW, H, ticket

D = timedelta(days=1)


@pytest.fixture
def store(tmp_path):
    opened = SqliteStore(str(tmp_path / "state" / "deskbot.sqlite3"))
    yield opened
    opened.close()


def test_a_solved_ticket_keeps_its_history_after_the_mirror_drops_it(store) -> None:
    new = ticket(1, created_at=NOW - 5 * H, updated_at=NOW - 5 * H, group="Billing", raw={"huge": "x" * 1000},
                 description="d" * 5000)
    store.upsert_tickets([new])
    assert record_snapshot(store, [new], NOW - 4 * H) == 1
    assert record_snapshot(store, [new], NOW - 3 * H) == 0, "an unchanged snapshot adds nothing"
    assigned = replace(new, status=Status.OPEN, assignee="Ana", assignee_id=3, updated_at=NOW - 3 * H,
                       status_changed_at=NOW - 3 * H)
    solved = replace(assigned, status=Status.SOLVED, solved_at=NOW - 2 * H, updated_at=NOW - 90 * timedelta(minutes=1))
    record_snapshot(store, [assigned], NOW - 150 * timedelta(minutes=1))
    record_snapshot(store, [solved], NOW - H)
    store.remove_tickets([solved.key])
    assert store.mirror() == {}
    (kept,) = HistoryStore.for_store(store).records(NOW - D)
    assert kept.ticket.status is Status.SOLVED and kept.ticket.raw == {} and len(kept.ticket.description) == 2000
    assert kept.changes == (
        Change(NOW - 5 * H, Status.NEW, "Billing", None),
        Change(NOW - 3 * H, Status.OPEN, "Billing", "Ana"),
        Change(NOW - 2 * H, Status.SOLVED, "Billing", "Ana"),
    )
    assert kept.solved_between(NOW - D, NOW) == NOW - 2 * H


def test_a_reopened_ticket_shows_the_reopen(store) -> None:
    solved = ticket(2, created_at=NOW - 2 * D, status=Status.SOLVED, solved_at=NOW - D, updated_at=NOW - D)
    record_snapshot(store, [solved], NOW - D + H)
    reopened = replace(solved, status=Status.OPEN, solved_at=None, status_changed_at=NOW - 2 * H,
                       updated_at=NOW - 2 * H)
    record_snapshot(store, [reopened], NOW)
    (kept,) = HistoryStore.for_store(store).records(NOW - 3 * D)
    assert [c.status for c in kept.changes] == [Status.NEW, Status.SOLVED, Status.OPEN]
    assert kept.reopened_between(NOW - D, NOW) == NOW - 2 * H


def test_history_lives_in_the_store_file_without_touching_its_schema(store, tmp_path) -> None:
    record_snapshot(store, [ticket(3, created_at=NOW - H)], NOW)
    path = store.path
    store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == LATEST
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"history_tickets", "history_changes", "history_meta", "tickets", "audit"} <= tables
    reopened = SqliteStore(path)
    try:
        assert HistoryStore(path).since() == NOW, "recording began at the first snapshot"
        assert [r.key for r in HistoryStore(path).records(NOW - D)] == ["zendesk:3"]
    finally:
        reopened.close()


def test_records_leave_out_tickets_resolved_before_the_window(store) -> None:
    old = ticket(4, created_at=NOW - 40 * D, status=Status.SOLVED, solved_at=NOW - 30 * D)
    recent = ticket(5, created_at=NOW - 40 * D, status=Status.SOLVED, solved_at=NOW - 3 * D)
    still_open = ticket(6, created_at=NOW - 60 * D)
    record_snapshot(store, [old, recent, still_open], NOW)
    keys = [r.key for r in HistoryStore.for_store(store).records(NOW - 7 * D)]
    assert keys == ["zendesk:5", "zendesk:6"]


def test_tickets_unchanged_past_the_retention_are_pruned(store) -> None:
    history = HistoryStore.for_store(store)
    ancient = ticket(7, created_at=NOW - 200 * D, status=Status.CLOSED, solved_at=NOW - 190 * D)
    ancient_open = ticket(8, created_at=NOW - 200 * D, status=Status.OPEN, status_changed_at=NOW - 101 * D)
    history.record([ancient, ancient_open], NOW - 100 * D)  # 90 days after the solve: kept
    assert [r.key for r in history.records(NOW - 365 * D)] == ["zendesk:7", "zendesk:8"]
    assert history.prune(before=NOW - 120 * D) == 1
    assert [r.key for r in history.records(NOW - 365 * D)] == ["zendesk:8"]


def test_recording_prunes_by_itself_once_a_day(store) -> None:
    history = HistoryStore.for_store(store)
    history.record([ticket(7, created_at=NOW - 200 * D, status=Status.CLOSED, solved_at=NOW - 190 * D)], NOW - 80 * D)
    history.record([ticket(8, created_at=NOW - H)], NOW)  # 190 days after the solve: past the 120-day retention
    assert [r.key for r in history.records(NOW - 365 * D)] == ["zendesk:8"]


def test_a_memory_store_keeps_one_history_for_its_lifetime() -> None:
    memory = MemoryStore()
    record_snapshot(memory, [ticket(9, created_at=NOW - H)], NOW)
    assert HistoryStore.for_store(memory) is HistoryStore.for_store(memory)
    assert [r.key for r in HistoryStore.for_store(memory).records(NOW - D)] == ["zendesk:9"]


def test_the_fresher_mirror_snapshot_extends_a_record(store) -> None:
    first = ticket(10, created_at=NOW - 5 * H, updated_at=NOW - 5 * H)
    record_snapshot(store, [first], NOW - 4 * H)
    newer = replace(first, status=Status.PENDING, status_changed_at=NOW - H, updated_at=NOW - H)
    fresh = ticket(11, created_at=NOW - 2 * H, status=Status.OPEN, status_changed_at=NOW - 2 * H)
    merged = {r.key: r for r in merge_snapshots(HistoryStore.for_store(store).records(NOW - D), [newer, fresh], NOW)}
    assert [c.status for c in merged["zendesk:10"].changes] == [Status.NEW, Status.PENDING]
    assert merged["zendesk:10"].ticket is newer
    assert merged["zendesk:11"] == from_snapshot(fresh, NOW)


def test_an_unwritable_history_says_which_file_and_what_to_do(tmp_path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(StateError, match=r"report history in .*not-a-dir/x.sqlite3: cannot open"):
        HistoryStore(str(blocker / "x.sqlite3"))


def test_an_open_record_gone_from_the_mirror_is_closed_at_its_last_update() -> None:
    deleted = ticket(12, created_at=NOW - 5 * H, updated_at=NOW - 3 * H, status=Status.OPEN)
    elsewhere = ticket(13, created_at=NOW - 5 * H)
    elsewhere = replace(elsewhere, platform="freshdesk")  # a helpdesk the mirror does not cover: left alone
    still = ticket(14, created_at=NOW - H)
    merged = {r.key: r for r in merge_snapshots([from_snapshot(deleted, NOW - 2 * H), from_snapshot(elsewhere, NOW)],
                                                [still], NOW)}
    gone = merged["zendesk:12"]
    assert gone.ticket.status is Status.CLOSED and gone.changes[-1] == Change(NOW - 3 * H, Status.CLOSED)
    assert gone.state_at(NOW - 4 * H).open and not gone.state_at(NOW).open
    assert merged["freshdesk:13"].ticket.status is Status.NEW
