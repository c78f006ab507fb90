"""The executor performs each planned helpdesk write exactly once, or says precisely why not."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.errors import AuthError, StateError, Unavailable
from bot.executor import Executor, LeaseLost
from bot.model import Firing, Plan, PlannedAction, RuleMatch, Status, Target
from bot.state import IntentState, Mode
from bot.state.memory import MemoryStore
from tests.fakes import T0, FakeConnector, make_ticket

LATER = T0 + timedelta(minutes=1)


def act(ticket_id, kind, rule="route", occurrence=1, index=0, **params):
    target = Target.NOTIFIER if kind == "notify" else Target.HELPDESK
    return PlannedAction(f"{rule}/zendesk:{ticket_id}/{occurrence}/{index}:{kind}", f"zendesk:{ticket_id}",
                         "zendesk", ticket_id, rule, kind, target, params, "matched")


def plan(*actions):
    matches = tuple(RuleMatch(a.ticket_key, a.rule, (a,), a.reason, 1) for a in actions)
    return Plan(matches, {(a.rule, a.ticket_key): Firing(True, 1, T0) for a in actions})


@pytest.fixture
def world():
    tickets = [make_ticket(i) for i in range(1, 6)]
    connector = FakeConnector(tickets)
    store = MemoryStore(clock=lambda: T0)
    store.upsert_tickets(tickets)
    return store, connector, Executor(store, {"zendesk": connector})


def run(executor, store, *actions, now=T0, mode=Mode.LIVE):
    seen = store.mirror()
    return executor.execute(plan(*actions), now=now, mode=mode, seen=seen).get("zendesk")


def test_a_named_assignment_is_written_once_and_audited(world):
    store, connector, executor = world
    a = act(1, "assign", agent="bob@example.test")
    report = run(executor, store, a)
    assert report.done == [a.key]
    assert connector.store[1].assignee_id == 102
    assert store.intent(a.key).state is IntentState.DONE
    assert [e.result for e in store.audit_log(ticket_key="zendesk:1")] == ["planned", "done"]
    assert store.audit_log()[-1].detail == "assigned to Bob"
    run(executor, store, a)
    assert len(connector.applied) == 1, "the same action planned again is not performed again"


def test_round_robin_takes_turns_and_remembers_whose_turn_it_is(world):
    store, connector, executor = world
    run(executor, store, *(act(i, "assign", team="support", group="Support", strategy="round_robin")
                           for i in (1, 2, 3)))
    assert [connector.store[i].assignee for i in (1, 2, 3)] == ["Alice", "Bob", "Alice"]
    run(executor, store, act(4, "assign", team="support", group="Support", strategy="round_robin"))
    assert connector.store[4].assignee == "Bob"


def test_least_loaded_picks_the_agent_with_fewest_open_tickets(world):
    store, connector, executor = world
    store.upsert_tickets([make_ticket(90, assignee_id=101), make_ticket(91, assignee_id=101)])
    run(executor, store, act(1, "assign", team="support", group="Support", strategy="least_loaded"))
    assert connector.store[1].assignee == "Bob"


def test_unavailable_agents_are_passed_over_and_an_empty_team_leaves_the_ticket_in_its_queue(world):
    store, connector, executor = world
    run(executor, store, act(1, "assign", team="billing", group="Billing", strategy="round_robin",
                             members=["dan@example.test"]))
    assert (connector.store[1].group, connector.store[1].assignee) == ("Billing", None)
    assert "no available agent" in store.audit_log()[-1].detail


def test_identical_writes_to_many_tickets_go_in_one_batch(world):
    store, connector, executor = world
    run(executor, store, *(act(i, "add_tags", tags=["triaged"]) for i in (1, 2, 3)))
    assert len(connector.apply_batches) == 1 and len(connector.apply_batches[0]) == 3
    assert all("triaged" in connector.store[i].tags for i in (1, 2, 3))


def test_several_actions_on_one_ticket_become_one_write(world):
    store, connector, executor = world
    run(executor, store, act(1, "set_priority", index=0, priority="urgent"),
        act(1, "add_tags", index=1, tags=["vip"]), act(1, "add_note", index=2, body="escalated"))
    [[change]] = connector.apply_batches
    assert (change.priority.value, change.add_tags) == ("urgent", frozenset({"vip"}))
    assert change.note.startswith("escalated\n\n(deskbot ref ")
    assert change.key.endswith("2:add_note"), "the note carries its own action key"


def test_a_human_reassigning_between_evaluation_and_action_wins(world):
    store, connector, executor = world
    a = act(1, "assign", agent="bob@example.test")
    executor.record(plan(a), now=T0, mode=Mode.LIVE, seen=store.mirror())
    connector.change(1, assignee_id=201, assignee="Carol")
    report = executor.perform("zendesk", now=LATER)
    assert report.skipped == [a.key] and connector.applied == []
    assert "assignee changed by someone else" in store.intent(a.key).error
    assert executor.perform("zendesk", now=LATER).settled == 0, "skipped is final, not retried"


def test_a_ticket_solved_or_deleted_since_evaluation_is_left_alone(world):
    store, connector, executor = world
    solved, deleted = act(1, "set_priority", priority="high"), act(2, "set_priority", priority="high")
    executor.record(plan(solved, deleted), now=T0, mode=Mode.LIVE, seen=store.mirror())
    connector.change(1, status=Status.SOLVED)
    connector.delete(2)
    report = executor.perform("zendesk", now=LATER)
    assert sorted(report.skipped) == sorted([solved.key, deleted.key]) and connector.applied == []
    assert store.intent(solved.key).error == "ticket is solved now"
    assert store.intent(deleted.key).error == "ticket no longer exists"


def test_a_write_already_visible_on_the_ticket_is_done_without_calling_the_helpdesk(world):
    store, connector, executor = world
    connector.change(1, tags=frozenset({"vip"}))
    a = act(1, "add_tags", tags=["vip"])
    report = run(executor, store, a)
    assert report.done == [a.key] and connector.applied == []


def test_a_claim_left_by_a_crash_is_performed_once_when_the_ticket_does_not_show_it(world):
    store, connector, executor = world
    a = act(1, "assign", team="support", group="Support", strategy="round_robin")
    executor.record(plan(a), now=T0, mode=Mode.LIVE, seen=store.mirror())
    store.claim(a.key, now=T0, resolved={"assignee_id": 102, "group_id": 10}, rotation=("zendesk:support", "102"))
    # ...the process died here, before the write.
    report = Executor(store, {"zendesk": connector}).perform("zendesk", now=LATER)
    assert report.done == [a.key] and report.recovered == []
    assert connector.store[1].assignee == "Bob", "the recovered write is the one chosen before the crash"
    assert len(connector.applied) == 1


def test_a_write_whose_answer_was_lost_is_recognised_and_not_repeated(world):
    store, connector, executor = world
    a = act(1, "set_priority", priority="urgent")
    connector.lose_response_next = 1
    report = run(executor, store, a)
    assert report.unknown == [a.key] and isinstance(report.error, Unavailable)
    assert store.intent(a.key).state is IntentState.CLAIMED
    report = executor.perform("zendesk", now=LATER)
    assert report.recovered == [a.key] and len(connector.applied) == 1


def test_a_lost_answer_for_a_note_is_settled_by_the_note_marker(world):
    store, connector, executor = world
    a = act(1, "add_note", body="Escalated")
    connector.lose_response_next = 1
    run(executor, store, a)
    assert executor.perform("zendesk", now=LATER).recovered == [a.key]
    assert len(connector.notes[1]) == 1 and connector.notes[1][0].startswith("Escalated")


def test_refused_credentials_change_nothing_and_the_action_is_retried_later(world):
    store, connector, executor = world
    a = act(1, "set_priority", priority="high")
    executor.record(plan(a), now=T0, mode=Mode.LIVE, seen=store.mirror())
    original_apply = connector.apply

    def refuse_once(changes):
        connector.apply = original_apply
        raise AuthError("401: check ZENDESK_API_TOKEN", status=401)

    connector.apply = refuse_once
    report = executor.perform("zendesk", now=T0)
    assert isinstance(report.error, AuthError)
    assert store.intent(a.key).state is IntentState.PLANNED
    assert executor.perform("zendesk", now=LATER).done == [a.key]


def test_an_action_naming_an_unknown_agent_fails_with_a_message_saying_so(world):
    store, _connector, executor = world
    a = act(1, "assign", agent="nobody@example.test")
    report = run(executor, store, a)
    assert report.failed == [a.key]
    assert store.intent(a.key).error == "agent 'nobody@example.test' is not an agent in zendesk"


def test_an_action_too_old_to_be_useful_expires_instead_of_firing_late(world):
    store, connector, executor = world
    a = act(1, "set_priority", priority="urgent")
    executor.record(plan(a), now=T0, mode=Mode.LIVE, seen=store.mirror())
    report = executor.perform("zendesk", now=T0 + timedelta(hours=3))
    assert report.expired == [a.key] and connector.applied == []
    assert "too late to act" in store.intent(a.key).error


def test_dry_run_writes_nothing_and_audits_the_plan(world):
    store, connector, executor = world
    run(executor, store, act(1, "set_priority", priority="urgent"), act(1, "notify", channel="#x"),
        mode=Mode.DRY_RUN)
    assert connector.calls.total == 0 and store.intents() == [] and store.outbox() == []
    assert [e.result for e in store.audit_log()] == ["dry_run", "dry_run"]


def test_alerts_go_to_the_outbox_not_to_the_helpdesk(world):
    store, connector, executor = world
    n = act(1, "notify", channel="#support", message="waiting")
    assert run(executor, store, n) is None
    assert [e.key for e in store.pending()] == [n.key] and connector.calls.total == 0


def test_when_the_store_cannot_record_no_ticket_is_changed(world):
    store, connector, executor = world
    store._conn.execute(f"PRAGMA max_page_count = {store._conn.execute('PRAGMA page_count').fetchone()[0]}")
    big = [act(i, "add_note", index=n, body="x" * 4000) for i in (1, 2, 3) for n in range(10)]
    with pytest.raises(StateError):
        run(executor, store, *big)
    assert connector.calls.total == 0


def test_a_runner_that_lost_its_lease_does_not_write(world):
    store, connector, _ = world
    executor = Executor(store, {"zendesk": connector}, guard=lambda: False)
    with pytest.raises(LeaseLost):
        run(executor, store, act(1, "set_priority", priority="urgent"))
    assert connector.applied == []
