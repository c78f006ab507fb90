"""How a Zendesk ticket payload and its sideloads become deskbot's `Ticket` and `Directory`."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.connectors.zendesk_mapping import Sideloads, field_keys, to_directory, to_ticket
from bot.model import Agent, Directory, Priority, SlaDeadlines, Status

PAGE = {
    "tickets": [],
    "users": [{"id": 7, "name": "Ana Agent", "email": "ana@support.example", "role": "agent"},
              {"id": 9, "name": "Ben Buyer", "email": "ben@acme.example", "role": "end-user"}],
    "groups": [{"id": 3, "name": "Billing"}],
    "organizations": [{"id": 5, "name": "Acme Corp"}],
    "metric_sets": [{"ticket_id": 1042, "reply_time_in_minutes": {"calendar": 42, "business": 30},
                     "requester_updated_at": "2024-06-10T10:00:00Z", "assignee_updated_at": "2024-06-10T09:00:00Z",
                     "assigned_at": "2024-06-10T08:30:00Z", "status_updated_at": "2024-06-10T09:00:00Z",
                     "solved_at": None}],
}
RAW = {
    "id": 1042, "subject": "Refund", "status": "hold", "priority": None, "type": "incident",
    "created_at": "2024-06-10T08:00:00Z", "updated_at": "2024-06-10T10:00:00Z", "generated_timestamp": 1718013600,
    "description": "Please refund", "tags": ["billing", "vip"], "via": {"channel": "email", "source": {}},
    "group_id": 3, "assignee_id": 7, "requester_id": 9, "organization_id": 5,
    "custom_fields": [{"id": 360001, "value": "A-1001"}, {"id": 360099, "value": True}],
    "slas": {"policy_metrics": [
        {"metric": "first_reply_time", "stage": "achieved", "breach_at": None},
        {"metric": "next_reply_time", "stage": "active", "breach_at": "2024-06-10T12:00:00Z", "minutes": 42},
        {"metric": "total_resolution_time", "stage": "paused", "breach_at": "2024-06-12T12:00:00Z"},
    ]},
    "a_key_no_doc_lists": {"kept": True},
}


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 6, 10, hour, minute, tzinfo=UTC)


def sideloads() -> Sideloads:
    return Sideloads.from_page(PAGE, field_keys=field_keys({360001: "Order number"}),
                               agent_url="https://acme.zendesk.com/agent/tickets/")


def test_status_hold_is_on_hold_and_null_priority_is_normal():
    ticket = to_ticket(RAW, sideloads())
    assert ticket.status is Status.ON_HOLD
    assert ticket.priority is Priority.NORMAL


def test_names_come_from_the_sideloads():
    ticket = to_ticket(RAW, sideloads())
    assert (ticket.group, ticket.assignee, ticket.assignee_email) == ("Billing", "Ana Agent", "ana@support.example")
    assert (ticket.requester, ticket.requester_email, ticket.organization) == ("Ben Buyer", "ben@acme.example",
                                                                               "Acme Corp")
    assert ticket.url == "https://acme.zendesk.com/agent/tickets/1042"
    assert ticket.key == "zendesk:1042" and ticket.channel == "email" and ticket.type == "incident"


def test_custom_fields_are_named_by_title_else_by_id():
    assert dict(to_ticket(RAW, sideloads()).custom) == {"order_number": "A-1001", "field_360099": True}


def test_clocks_come_from_the_metric_set():
    ticket = to_ticket(RAW, sideloads())
    assert ticket.first_responded_at == at(8, 42)  # created + reply_time_in_minutes.calendar
    assert ticket.last_customer_update_at == at(10)
    assert ticket.last_agent_update_at == at(9)
    assert ticket.assigned_at == at(8, 30) and ticket.status_changed_at == at(9) and ticket.solved_at is None


def test_a_metric_set_inside_the_ticket_is_read_too():
    raw = {**RAW, "metric_set": {"reply_time_in_minutes": {"calendar": 5}}}
    assert to_ticket(raw, Sideloads()).first_responded_at == at(8, 5)


def test_without_metrics_the_customer_last_spoke_when_they_opened_the_ticket():
    ticket = to_ticket({"id": 1, "created_at": "2024-06-10T08:00:00Z"})
    assert ticket.last_customer_update_at == at(8) and ticket.first_responded_at is None


def test_only_active_sla_clocks_become_deadlines():
    assert to_ticket(RAW, sideloads()).sla == SlaDeadlines(next_reply_due_at=at(12))


def test_the_earliest_active_breach_wins_per_deadline():
    raw = {**RAW, "slas": {"policy_metrics": [
        {"metric": "first_reply_time", "stage": "active", "breach_at": "2024-06-10T15:00:00Z"},
        {"metric": "first_reply_time", "stage": "active", "breach_at": "2024-06-10T11:00:00Z"}]}}
    assert to_ticket(raw).sla.first_reply_due_at == at(11)


def test_raw_keeps_the_keys_deskbot_does_not_map_and_unknown_keys_do_not_fail():
    ticket = to_ticket({**RAW, "brand_id": 7, "external_id": None, "follower_ids": []}, sideloads())
    assert ticket.raw["a_key_no_doc_lists"] == {"kept": True} and ticket.raw["brand_id"] == 7
    # mapped keys live in typed fields only (a mirror of 100k tickets would hold each payload twice),
    # and empty values say nothing
    dropped = {"subject", "tags", "custom_fields", "via", "updated_at", "external_id", "follower_ids"}
    assert not dropped & set(ticket.raw)
    assert ticket.tags == frozenset({"billing", "vip"})


def test_a_bare_payload_maps_with_defaults():
    ticket = to_ticket({"id": "77", "status": "new", "priority": "urgent"})
    assert (ticket.id, ticket.status, ticket.priority, ticket.subject, ticket.group) == (
        77, Status.NEW, Priority.URGENT, "", None)


def test_directory_agents_fill_in_names_a_page_did_not_sideload():
    directory = Directory(agents=(Agent("zendesk", 8, "Cleo Cover", "cleo@support.example"),))
    side = Sideloads.from_page({}, directory=directory)
    assert to_ticket({"id": 1, "assignee_id": 8}, side).assignee == "Cleo Cover"


def test_field_keys_slug_titles_and_keep_colliding_ones_apart():
    assert field_keys({2: "Plan", 1: "Order number", 3: "plan!", 4: "???"}) == {
        1: "order_number", 2: "plan", 3: "plan_3", 4: "field_4"}


def test_directory_links_agents_and_groups_through_memberships():
    users = [{"id": 7, "name": "Ana", "email": "ana@x", "role": "agent", "active": True},
             {"id": 8, "name": "Al", "email": "al@x", "role": "admin", "active": True, "suspended": True},
             {"id": 9, "name": "Ben", "role": "end-user"}]
    groups = [{"id": 3, "name": "Billing"}, {"id": 4, "name": "Old", "deleted": True}]
    memberships = [{"user_id": 7, "group_id": 3}, {"user_id": 8, "group_id": 3}, {"user_id": 7, "group_id": 4}]
    directory = to_directory(users, groups, memberships)
    assert [a.name for a in directory.agents] == ["Ana", "Al"]
    assert directory.agent("ana@x").group_ids == frozenset({3})
    assert directory.group("billing").agent_ids == frozenset({7, 8})
    assert [a.name for a in directory.members(3)] == ["Ana"]  # Al is suspended
    assert directory.group("Old") is None
