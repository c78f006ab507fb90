"""The state store keeps everything the runner needs across restarts, atomically, or says it cannot."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from bot.errors import StateError
from bot.model import Firing, Plan, PlannedAction, Priority, RuleMatch, Status, Target
from bot.notifiers.base import Alert, Thread
from bot.state import IntentState, Mode, StateStore
from bot.state.memory import MemoryStore
from bot.state.sqlite import SqliteStore
from tests.fakes import T0, make_ticket


@pytest.fixture(params=["sqlite", "memory"])
def store(request, tmp_path) -> StateStore:
    s = (
        SqliteStore(str(tmp_path / "state" / "deskbot.sqlite3"), clock=lambda: T0)
        if request.param == "sqlite"
        else MemoryStore(clock=lambda: T0)
    )
    yield s
    s.close()


def action(ticket_id=1, rule="route", kind="assign", target=Target.HELPDESK, occurrence=1, **params):
    key = f"{rule}/zendesk:{ticket_id}/{kind}/{occurrence}"
    return PlannedAction(
        key,
        f"zendesk:{ticket_id}",
        "zendesk",
        ticket_id,
        rule,
        kind,
        target,
        params or {"agent_id": 101},
        "because",
    )


def plan_of(*actions, memory=None, next_check=None):
    matches = tuple(RuleMatch(a.ticket_key, a.rule, (a,), a.reason, 1) for a in actions)
    mem = memory if memory is not None else {(a.rule, a.ticket_key): Firing(True, 1, T0) for a in actions}
    return Plan(matches, mem, next_check or {})


def test_store_satisfies_the_protocol(store):
    assert isinstance(store, StateStore)


def test_cursors_persist_across_reopen(tmp_path):
    path = str(tmp_path / "s.sqlite3")
    first = SqliteStore(path)
    first.set_cursor("zendesk:tickets", "abc")
    first.set_cursor("zendesk:tickets", "def")
    first.close()
    again = SqliteStore(path)
    assert again.get_cursor("zendesk:tickets") == "def"
    assert again.get_cursor("freshdesk:tickets") is None


def test_mirror_round_trips_every_ticket_field(store):
    ticket = make_ticket(
        7,
        tags=frozenset({"vip", "refund"}),
        priority=Priority.URGENT,
        status=Status.PENDING,
        custom={"order": "A-1"},
        assignee_id=101,
        assignee="Alice",
        last_customer_update_at=T0 + timedelta(minutes=5),
    )
    store.upsert_tickets([ticket])
    assert store.mirror() == {"zendesk:7": ticket}
    assert store.tickets(["zendesk:7", "zendesk:8"]) == {"zendesk:7": ticket}


def test_mirror_filters_by_platform_and_forgets_removed_tickets(store):
    store.upsert_tickets([make_ticket(1), make_ticket(2), make_ticket(3, platform="freshdesk")])
    store.remove_tickets(["zendesk:2"])
    assert sorted(store.mirror()) == ["freshdesk:3", "zendesk:1"]
    assert list(store.mirror("freshdesk")) == ["freshdesk:3"]


def test_due_index_lists_only_tickets_whose_next_check_has_come(store):
    store.upsert_tickets([make_ticket(1), make_ticket(2), make_ticket(3)])
    store.record_plan(
        Plan(next_check_at={"zendesk:1": T0 + timedelta(minutes=5), "zendesk:2": T0 + timedelta(hours=1)}),
        now=T0,
        mode=Mode.LIVE,
        evaluated=["zendesk:1", "zendesk:2", "zendesk:3"],
    )
    assert store.due(T0) == []
    assert store.due(T0 + timedelta(minutes=5)) == ["zendesk:1"]
    assert store.due(T0 + timedelta(days=1)) == ["zendesk:1", "zendesk:2"]
    assert store.next_check_at("zendesk:3") is None


def test_a_ticket_update_keeps_its_next_check_until_it_is_re_evaluated(store):
    store.upsert_tickets([make_ticket(1)])
    store.record_plan(Plan(next_check_at={"zendesk:1": T0}), now=T0, mode=Mode.LIVE, evaluated=["zendesk:1"])
    store.upsert_tickets([make_ticket(1, subject="changed")])
    assert store.due(T0) == ["zendesk:1"]


def test_record_plan_stores_memory_intents_outbox_and_audit_together(store):
    assign = action(1)
    alert = action(1, rule="sla", kind="notify", target=Target.NOTIFIER, channel="#support", message="hi")
    store.upsert_tickets([make_ticket(1)])
    recorded = store.record_plan(
        plan_of(assign, alert), now=T0, mode=Mode.LIVE, seen={"zendesk:1": make_ticket(1)}
    )
    assert [i.key for i in recorded.new_intents] == [assign.key]
    assert recorded.enqueued == (alert.key,)
    assert store.memory() == {
        ("route", "zendesk:1"): Firing(True, 1, T0),
        ("sla", "zendesk:1"): Firing(True, 1, T0),
    }
    intent = store.intent(assign.key)
    assert intent.state is IntentState.PLANNED and intent.params == {"agent_id": 101}
    assert intent.seen["assignee_id"] is None
    [entry] = store.pending()
    assert entry.key == alert.key and entry.state == "pending" and not entry.ambiguous
    assert entry.alert.channel == "#support" and entry.alert.message == "hi" and entry.alert.created_at == T0
    assert [(a.key, a.result) for a in store.audit_log()] == [(assign.key, "planned"), (alert.key, "queued")]


def test_recording_the_same_action_twice_keeps_one_intent_and_one_alert(store):
    assign = action(1)
    alert = action(1, rule="sla", kind="notify", target=Target.NOTIFIER, channel="#support")
    store.record_plan(plan_of(assign, alert), now=T0, mode=Mode.LIVE)
    again = store.record_plan(plan_of(assign, alert), now=T0, mode=Mode.LIVE)
    assert again.new_intents == () and again.existing_keys == (assign.key,) and again.enqueued == ()
    assert len(store.intents()) == 1 and len(store.outbox()) == 1


def test_dry_run_records_audit_and_its_own_memory_but_no_intent_or_alert(store):
    store.record_plan(
        plan_of(action(1), action(1, kind="notify", target=Target.NOTIFIER)), now=T0, mode=Mode.DRY_RUN
    )
    assert store.intents() == [] and store.outbox() == []
    assert [a.result for a in store.audit_log()] == ["dry_run", "dry_run"]
    assert store.memory(mode=Mode.LIVE) == {}
    assert ("route", "zendesk:1") in store.memory(mode=Mode.DRY_RUN)


def test_memory_can_be_read_for_a_few_tickets(store):
    store.record_plan(plan_of(action(1), action(2), action(3)), now=T0, mode=Mode.LIVE)
    assert set(store.memory(["zendesk:2"])) == {("route", "zendesk:2")}


def test_intent_lifecycle_claim_then_finish_with_audit(store):
    a = action(1)
    store.record_plan(plan_of(a), now=T0, mode=Mode.LIVE)
    claimed = store.claim(a.key, now=T0, resolved={"assignee_id": 102}, rotation=("zendesk:10", "102"))
    assert (
        claimed.state is IntentState.CLAIMED
        and claimed.attempts == 1
        and claimed.resolved == {"assignee_id": 102}
    )
    assert store.rotation("zendesk:10") == "102"
    assert [i.key for i in store.open_intents("zendesk", "helpdesk")] == [a.key]
    done = store.finish(a.key, IntentState.DONE, now=T0, detail="assigned to Bob")
    assert done.state is IntentState.DONE
    assert store.open_intents() == []
    with pytest.raises(StateError, match="not planned"):
        store.claim(a.key, now=T0, resolved={})
    assert store.audit_log(ticket_key="zendesk:1")[-1].result == "done"


def test_a_released_intent_is_planned_again_and_counts_its_attempt(store):
    a = action(1)
    store.record_plan(plan_of(a), now=T0, mode=Mode.LIVE)
    store.claim(a.key, now=T0, resolved={"assignee_id": 101})
    released = store.release(a.key, now=T0, error="auth failed")
    assert (
        released.state is IntentState.PLANNED and released.attempts == 1 and released.error == "auth failed"
    )


def test_a_failing_plan_records_nothing_at_all(store):
    store.upsert_tickets([make_ticket(1)])
    with pytest.raises(RuntimeError), store.transaction():
        store.record_plan(plan_of(action(1)), now=T0, mode=Mode.LIVE)
        raise RuntimeError("crash between recording and commit")
    assert store.intents() == [] and store.memory() == {} and store.audit_log() == []


def test_lease_keeps_a_second_runner_out_until_it_expires(store):
    ttl = timedelta(seconds=60)
    assert store.acquire_lease("host-a:1", now=T0, ttl=ttl)
    assert store.acquire_lease("host-b:2", now=T0 + timedelta(seconds=30), ttl=ttl) is None
    assert store.acquire_lease(
        "host-a:1", now=T0 + timedelta(seconds=30), ttl=ttl
    ).expires_at == T0 + timedelta(seconds=90)
    taken = store.acquire_lease("host-b:2", now=T0 + timedelta(seconds=91), ttl=ttl)
    assert taken.owner == "host-b:2"
    store.release_lease("host-a:1")
    assert store.lease().owner == "host-b:2"
    store.release_lease("host-b:2")
    assert store.lease() is None


def alert_of(key, ticket=1, channel="#ops"):
    return Alert(key=key, ticket_key=f"zendesk:{ticket}", rule="sla", channel=channel, message="m")


def test_outbox_queues_each_alert_key_once(store):
    assert store.enqueue([alert_of("k1"), alert_of("k2")]) == ["k1", "k2"]
    assert store.enqueue([alert_of("k1"), alert_of("k3")]) == ["k3"]
    assert [e.key for e in store.pending()] == ["k1", "k2", "k3"]
    assert store.get("k2").alert == alert_of("k2")


def test_outbox_retries_then_delivers_or_gives_up(store):
    store.enqueue([alert_of("k1"), alert_of("k2")])
    store.mark_sending(["k1", "k2"])
    store.mark_failed("k1", "503", T0 + timedelta(minutes=1), ambiguous=True)
    store.mark_sent("k2", "C1", "1.0001")
    [retry] = store.pending()
    assert (retry.key, retry.attempts, retry.retry_at, retry.ambiguous) == (
        "k1",
        1,
        T0 + timedelta(minutes=1),
        True,
    )
    store.mark_failed("k1", "channel_not_found", None)
    assert [(e.key, e.state) for e in store.outbox()] == [("k1", "dead"), ("k2", "sent")]
    assert store.get("k1").ambiguous, "ambiguity is sticky"
    assert (store.get("k2").channel, store.get("k2").ts) == ("C1", "1.0001")
    assert [a.result for a in store.audit_log()][-2:] == ["sent", "dead"]


def test_an_alert_left_sending_by_a_crash_comes_back_pending_and_ambiguous(store):
    store.enqueue([alert_of("k1")])
    store.mark_sending(["k1"])
    [entry] = store.pending()
    assert entry.state == "pending" and entry.ambiguous


def test_threads_map_tickets_to_their_open_messages(store):
    store.set_thread(Thread("zendesk:1", "C1", "9.1", ("a",)))
    store.set_thread(Thread("zendesk:1", "C1", "10.2", ("b",)))
    store.set_thread(Thread("zendesk:2", "C1", "10.2", ("b",)))
    store.set_thread(Thread("zendesk:1", "C2", "3.0", ("c",), resolved="solved", resolved_at=T0))
    assert store.thread_for("zendesk:1", "C1").ts == "10.2", "the latest, compared as numbers"
    assert store.thread_for("zendesk:1", "C2") is None
    assert [t.ts for t in store.open_threads("zendesk:1")] == ["10.2", "9.1"] or sorted(
        t.ts for t in store.open_threads("zendesk:1")
    ) == ["10.2", "9.1"]
    assert [t.ticket_key for t in store.message_threads("C1", "10.2")] == ["zendesk:1", "zendesk:2"]


def test_audit_log_filters_by_ticket_rule_and_time(store):
    store.record_plan(plan_of(action(1), action(2, rule="escalate")), now=T0, mode=Mode.LIVE)
    store.record_plan(plan_of(action(3)), now=T0 + timedelta(days=2), mode=Mode.LIVE)
    assert [a.ticket_key for a in store.audit_log(rule="route")] == ["zendesk:1", "zendesk:3"]
    assert [a.rule for a in store.audit_log(ticket_key="zendesk:2")] == ["escalate"]
    assert [a.ticket_key for a in store.audit_log(since=T0 + timedelta(days=1))] == ["zendesk:3"]


def test_confirmations_remember_the_confirmed_version(store):
    store.confirm_rule("mass-close", "abc", now=T0)
    store.confirm_rule("mass-close", "def", now=T0)
    assert store.confirmations() == {"mass-close": "def"}


def test_prune_forgets_finished_work_but_never_open_intents(store):
    done, open_ = action(1), action(2)
    store.record_plan(plan_of(done, open_), now=T0, mode=Mode.LIVE)
    store.finish(done.key, IntentState.DONE, now=T0)
    store.enqueue([alert_of("alert")])
    store.mark_sent("alert", "C1", "1.1")
    assert store.prune(before=T0 + timedelta(days=1)) >= 2
    assert [i.key for i in store.intents()] == [open_.key]
    assert store.outbox() == []


def test_a_full_disk_raises_state_error_and_loses_nothing_committed(tmp_path):
    store = SqliteStore(str(tmp_path / "s.sqlite3"))
    store.set_cursor("zendesk:tickets", "kept")
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [make_ticket(i, description="x" * 5000) for i in range(1, 50)]
    with pytest.raises(StateError, match=r"s\.sqlite3: cannot .*full.*free disk space"):
        store.upsert_tickets(big)
    assert store.mirror() == {}
    assert store.get_cursor("zendesk:tickets") == "kept"


def test_an_unwritable_location_is_a_state_error_saying_where(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StateError, match=r"file/deskbot\.sqlite3: cannot open"):
        SqliteStore(str(blocker / "deskbot.sqlite3"))


def test_a_file_from_a_newer_deskbot_is_refused(tmp_path):
    path = tmp_path / "s.sqlite3"
    SqliteStore(str(path)).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StateError, match="schema version 99, newer"):
        SqliteStore(str(path))


def test_the_file_uses_write_ahead_logging(tmp_path):
    store = SqliteStore(str(tmp_path / "s.sqlite3"))
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_changed_tickets_can_be_marked_due_as_they_enter_the_mirror(store):
    store.upsert_tickets([make_ticket(1), make_ticket(2)], due_at=T0)
    store.record_plan(Plan(), now=T0, mode=Mode.LIVE, evaluated=["zendesk:1", "zendesk:2"])
    assert store.due(T0 + timedelta(days=9)) == []
    store.upsert_tickets([make_ticket(2, subject="new reply")], due_at=T0)
    assert store.due(T0) == ["zendesk:2"]
    assert store.mark_due(T0, "zendesk") == 2
    assert sorted(store.due(T0)) == ["zendesk:1", "zendesk:2"]


def test_an_older_copy_of_a_ticket_arriving_late_never_replaces_the_newer_one(store):
    store.upsert_tickets([make_ticket(1, subject="new", updated_at=T0 + timedelta(minutes=5))])
    store.upsert_tickets([make_ticket(1, subject="old", updated_at=T0)])
    assert store.mirror()["zendesk:1"].subject == "new"
