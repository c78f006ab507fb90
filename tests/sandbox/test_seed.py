"""The shared queue generator: deterministic, realistic, platform-neutral, JSON round-trip."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bot.model import Priority, Status
from bot.sandbox import seed

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)


def test_same_seed_and_now_give_the_same_queue():
    assert seed.generate(3, now=NOW).to_json() == seed.generate(3, now=NOW).to_json()


def test_different_seeds_give_different_queues():
    assert seed.generate(3, now=NOW).to_json() != seed.generate(4, now=NOW).to_json()


def test_the_queue_has_the_four_teams_and_staffed_groups():
    queue = seed.generate(now=NOW)
    assert [g.name for g in queue.groups] == ["Billing", "Technical", "Accounts", "Escalations"]
    for group in queue.groups:
        assert queue.members(group.id), f"{group.name} has no active agent"
    assert any(len(a.group_ids) > 1 for a in queue.agents), "someone belongs to two groups"


def test_values_use_the_neutral_vocabulary():
    queue = seed.generate(tickets=300, now=NOW)
    for ticket in queue.tickets:
        assert Status(ticket.status)
        assert ticket.priority is None or Priority(ticket.priority)
        assert ticket.type in (None, *seed.TYPES)
        assert ticket.channel in seed.CHANNELS


def test_a_live_queue_is_mostly_unsolved_work_with_some_history():
    statuses = Counter(t.status for t in seed.generate(tickets=300, now=NOW).tickets)
    unsolved = statuses["new"] + statuses["open"] + statuses["pending"] + statuses["on_hold"]
    assert unsolved > statuses["solved"] + statuses["closed"] > 0
    assert set(statuses) == set(seed.STATUSES)


def test_times_are_consistent_and_in_the_past():
    queue = seed.generate(tickets=300, now=NOW)
    for t in queue.tickets:
        assert t.created_at <= t.updated_at <= NOW
        assert t.created_at >= NOW - timedelta(days=21, minutes=5)
        if t.first_responded_at:
            assert t.created_at < t.first_responded_at <= NOW
        assert t.comments[0].author == "customer" and t.comments[0].created_at == t.created_at
        if t.status in ("pending", "on_hold", "solved", "closed"):
            assert t.first_responded_at, "a ticket waiting on the customer was answered"
        if t.status in ("solved", "closed"):
            assert t.solved_at


def test_assignees_belong_to_the_ticket_group_and_references_resolve():
    queue = seed.generate(tickets=300, now=NOW)
    agents = {a.id: a for a in queue.agents}
    requesters = {r.id for r in queue.requesters}
    for t in queue.tickets:
        assert t.requester_id in requesters
        if t.assignee_id:
            assert t.group_id in agents[t.assignee_id].group_ids


def test_vip_customers_get_the_vip_tag_and_enterprise_plan():
    queue = seed.generate(tickets=300, now=NOW)
    vip_orgs = {o.id for o in queue.organizations if "vip" in o.tags}
    vip_tickets = [t for t in queue.tickets if t.organization_id in vip_orgs]
    assert vip_tickets
    assert all("vip" in t.tags and t.custom["plan"] == "enterprise" and t.custom["vip"] for t in vip_tickets)


def test_json_round_trip_through_a_file(tmp_path):
    queue = seed.generate(tickets=40, now=NOW)
    path = tmp_path / "queue.json"
    queue.dump(path)
    loaded = seed.load(path)
    assert loaded == queue
    assert loaded.tickets[0].created_at.tzinfo is not None


def test_a_hand_written_file_may_omit_optional_keys():
    text = """{"now": "2024-06-10T12:00:00Z",
      "groups": [{"id": 1, "name": "Billing"}],
      "agents": [{"id": 2, "name": "Ana", "email": "ana@x.example", "group_ids": [1]}],
      "requesters": [{"id": 3, "name": "Ben", "email": "ben@y.example"}],
      "tickets": [{"id": 9, "subject": "Refund", "description": "Please", "status": "open",
                   "priority": null, "type": null, "channel": "email", "requester_id": 3,
                   "created_at": "2024-06-10T10:00:00Z", "updated_at": "2024-06-10T11:00:00Z",
                   "comments": [{"author": "customer", "author_id": 3, "body": "Please",
                                 "created_at": "2024-06-10T10:00:00Z"}]}]}"""
    queue = seed.Queue.from_json(text)
    assert queue.tickets[0].updated_at == datetime(2024, 6, 10, 11, tzinfo=UTC)
    assert queue.tickets[0].comments[0].public is True
    assert queue.members(1)[0].name == "Ana"


def test_a_typo_in_a_file_is_reported_with_the_known_fields():
    with pytest.raises(ValueError, match=r"SeedGroup has no field\(s\) \['nmae'\]"):
        seed.Queue.from_json('{"groups": [{"id": 1, "nmae": "Billing"}]}')


def test_escalations_is_staffed_by_one_senior_from_each_team_plus_its_own():
    queue = seed.generate(now=NOW)
    escalations = queue.group_named("Escalations")
    home_groups = {a.group_ids[0] for a in queue.members(escalations.id)}
    assert home_groups == {g.id for g in queue.groups}


@pytest.mark.parametrize("per_group", [0, 1])
def test_tiny_teams_still_make_a_consistent_queue(per_group):
    queue = seed.generate(tickets=30, agents_per_group=per_group, now=NOW)
    assert len(queue.agents) == 4 * per_group
    assert all(t.assignee_id is None for t in queue.tickets) if per_group == 0 else queue.tickets
