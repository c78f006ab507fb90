"""Narrow Freshdesk parsing and mapping tests: recorded-shape payloads via `responses`, and pure functions."""

from __future__ import annotations

import base64
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
import responses

from bot.connectors.freshdesk import FreshdeskConnector, base_url_from_env
from bot.connectors.freshdesk_apply import merge_tags
from bot.connectors.freshdesk_cursor import Watermark
from bot.connectors.freshdesk_mapping import TicketFields, categorize_status, note_html, to_ticket
from bot.errors import ConnectorError, InvalidRequest, NotFound, PermissionDenied, RateLimited
from bot.model import Agent, Directory, Group, Priority, SlaDeadlines, Status
from bot.retry import RateBudget, RetryPolicy

BASE = "https://acme.freshdesk.com"
# The recorded list record of the facts sheet (section 2.2), with includes description, requester, stats.
RECORD = {
    "id": 57, "subject": "Refund not received", "status": 2, "priority": 3, "source": 1, "type": "Refund",
    "group_id": 48000000020, "responder_id": None, "requester_id": 48000000300, "company_id": None,
    "tags": ["billing"], "custom_fields": {"cf_order_no": "A-1001"}, "spam": False,
    "due_by": "2024-06-12T09:00:00Z", "fr_due_by": "2024-06-10T13:00:00Z", "nr_due_by": None,
    "is_escalated": False, "fr_escalated": True, "nr_escalated": False,
    "created_at": "2024-06-10T09:00:00Z", "updated_at": "2024-06-10T13:05:00Z",
    "description": "<div>Where is my <b>refund</b>?</div>", "description_text": "Where is my refund?",
    "requester": {"id": 48000000300, "name": "Rosa Rossi", "email": "rosa@example.com", "mobile": None,
                  "phone": None},
    "stats": {"first_responded_at": None, "agent_responded_at": None, "requester_responded_at": None,
              "status_updated_at": "2024-06-10T09:00:00Z", "pending_since": None, "resolved_at": None,
              "closed_at": None, "reopened_at": None},
    "cc_emails": [], "product_id": None, "some_future_key": {"x": 1},
}
DIRECTORY = Directory(
    agents=(Agent("freshdesk", 48000000007, "Ana Almeida", "ana@support.example"),),
    groups=(Group("freshdesk", 48000000020, "Billing", frozenset({48000000007})),),
)
FIELDS = TicketFields.from_payload([
    {"name": "status", "choices": {"2": ["Open", "Being Processed"], "6": ["Waiting on Third Party", "Awaiting"],
                                   "7": ["In Progress", "In Progress"], "8": ["Done - Shipped", "Done"]}},
    {"name": "priority", "choices": {"Low": 1}},
])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def connector(**options) -> FreshdeskConnector:
    return FreshdeskConnector(BASE, "k3y", retry=RetryPolicy(sleep=lambda s: None, rng=random.Random(1)),
                              budget=RateBudget(100, clock=lambda: 0.0, sleep=lambda s: None), **options)


# -- mapping ----------------------------------------------------------------------------------------------

def test_a_recorded_list_record_maps_to_the_neutral_ticket():
    ticket = to_ticket(RECORD, DIRECTORY, base_url=BASE)
    assert (ticket.platform, ticket.id, ticket.key) == ("freshdesk", 57, "freshdesk:57")
    assert (ticket.status, ticket.priority, ticket.channel, ticket.type) == (Status.NEW, Priority.HIGH, "email",
                                                                             "refund")
    assert (ticket.group, ticket.group_id, ticket.assignee) == ("Billing", 48000000020, None)
    assert (ticket.requester, ticket.requester_email) == ("Rosa Rossi", "rosa@example.com")
    assert ticket.description == "Where is my refund?" and ticket.url == f"{BASE}/a/tickets/57"
    assert dict(ticket.custom) == {"order_no": "A-1001", "fr_escalated": True, "nr_escalated": False,
                                   "is_escalated": False}
    assert ticket.sla == SlaDeadlines(first_reply_due_at=at("2024-06-10T13:00:00Z"), next_reply_due_at=None,
                                      resolution_due_at=at("2024-06-12T09:00:00Z"))
    assert ticket.last_customer_update_at == ticket.created_at == at("2024-06-10T09:00:00Z")
    assert ticket.raw["some_future_key"] == {"x": 1}  # unknown keys are kept, never fatal
    assert ticket.raw["fr_due_by"] == RECORD["fr_due_by"]  # the platform's own deadlines stay readable
    assert not {"subject", "stats", "custom_fields", "requester", "responder_id"} & set(ticket.raw)


def test_a_record_without_includes_still_maps():
    bare = {k: v for k, v in RECORD.items() if k not in ("stats", "requester", "description_text")}
    ticket = to_ticket(bare, Directory())
    assert ticket.description == "Where is my refund?" and ticket.group is None and ticket.requester is None
    assert ticket.first_responded_at is None and ticket.url == ""


@pytest.mark.parametrize(("code", "status"), [(2, Status.OPEN), (3, Status.PENDING), (4, Status.SOLVED),
                                              (5, Status.CLOSED), (6, Status.ON_HOLD), (7, Status.OPEN),
                                              (8, Status.SOLVED), (99, Status.OPEN)])
def test_status_codes_and_custom_statuses_map_to_categories(code, status):
    assert FIELDS.status(code) is status
    handled = {**RECORD, "status": code, "responder_id": 48000000007}
    assert to_ticket(handled, Directory(), fields=FIELDS).status is status


@pytest.mark.parametrize("handled", [
    {"responder_id": 48000000007},
    {"stats": {**RECORD["stats"], "agent_responded_at": "2024-06-10T10:00:00Z"}},
    {"stats": {**RECORD["stats"], "status_updated_at": "2024-06-10T11:00:00Z"}},
    {"stats": {**RECORD["stats"], "reopened_at": "2024-06-10T11:00:00Z"}},
    {"stats": None},
])
def test_an_open_ticket_is_new_until_an_agent_handles_it(handled):
    assert to_ticket(RECORD, Directory()).status is Status.NEW
    assert to_ticket({**RECORD, **handled}, Directory()).status is Status.OPEN


@pytest.mark.parametrize(("name", "status"), [("On Hold", Status.ON_HOLD), ("Waiting on Customer", Status.ON_HOLD),
                                              ("Awaiting parts", Status.ON_HOLD), ("Pending review", Status.PENDING),
                                              ("Closed - duplicate", Status.CLOSED), ("Escalated", Status.OPEN)])
def test_custom_status_names_pick_the_nearest_category(name, status):
    assert categorize_status(name) is status


def test_writing_a_category_uses_builtin_codes_then_the_first_matching_custom_status():
    assert [FIELDS.code_for(s) for s in Status] == [2, 2, 3, 6, 4, 5]
    assert TicketFields().code_for(Status.ON_HOLD) is None


@pytest.mark.parametrize(("code", "priority"), [(1, Priority.LOW), (2, Priority.NORMAL), (3, Priority.HIGH),
                                                (4, Priority.URGENT), (None, Priority.NORMAL)])
def test_priority_codes(code, priority):
    assert to_ticket({**RECORD, "priority": code}, Directory()).priority is priority


@pytest.mark.parametrize(("source", "channel"), [(1, "email"), (2, "web"), (3, "phone"), (7, "chat"),
                                                 (13, "whatsapp"), (42, "source_42"), (None, None)])
def test_source_codes_become_channel_names(source, channel):
    assert to_ticket({**RECORD, "source": source}, Directory()).channel == channel


def test_sla_deadlines_are_only_the_running_clocks():
    answered = {**RECORD, "stats": {**RECORD["stats"], "first_responded_at": "2024-06-10T10:00:00Z"},
                "nr_due_by": "2024-06-11T10:00:00Z"}
    assert to_ticket(answered, Directory()).sla == SlaDeadlines(None, at("2024-06-11T10:00:00Z"),
                                                                at("2024-06-12T09:00:00Z"))
    for paused_or_done in (3, 4, 5, 6):
        assert to_ticket({**RECORD, "status": paused_or_done}, Directory(), fields=FIELDS).sla == SlaDeadlines()


def test_stats_fill_the_reply_clocks():
    stats = {**RECORD["stats"], "first_responded_at": "2024-06-10T10:00:00Z",
             "agent_responded_at": "2024-06-10T11:00:00Z", "requester_responded_at": "2024-06-10T12:00:00Z",
             "closed_at": "2024-06-10T14:00:00Z"}
    ticket = to_ticket({**RECORD, "stats": stats}, Directory())
    assert (ticket.first_responded_at, ticket.last_agent_update_at, ticket.last_customer_update_at,
            ticket.solved_at) == (at("2024-06-10T10:00:00Z"), at("2024-06-10T11:00:00Z"),
                                  at("2024-06-10T12:00:00Z"), at("2024-06-10T14:00:00Z"))


def test_assignee_names_come_from_the_directory():
    ticket = to_ticket({**RECORD, "responder_id": 48000000007}, DIRECTORY)
    assert (ticket.assignee, ticket.assignee_email) == ("Ana Almeida", "ana@support.example")


def test_note_bodies_escape_html_keep_lines_and_carry_the_action_key():
    assert note_html("a < b & c\n\nd") == "<p>a &lt; b &amp; c</p><p><br></p><p>d</p>"
    assert note_html("hi", "VIP <rule>/freshdesk:7/add_note/1") == (
        "<p>hi</p><p>(deskbot: VIP &lt;rule&gt;/freshdesk:7/add_note/1)</p>")


def test_tag_merge_keeps_order_and_human_tags():
    assert merge_tags(["b", "human", "a"], frozenset({"c", "a"}), frozenset({"b"})) == ["human", "a", "c"]


# -- cursor -----------------------------------------------------------------------------------------------

def test_the_cursor_round_trips_and_is_opaque():
    second = at("2024-06-10T13:05:00Z")
    mark = Watermark().advance([(5, second), (6, second), (4, second - timedelta(seconds=5))], timedelta(seconds=1))
    assert mark.at == second and dict(mark.seen) == {5: second, 6: second}
    encoded = mark.encode()
    assert encoded.startswith("fd1.") and "2024" not in encoded
    assert Watermark.decode(encoded) == mark


def test_the_cursor_knows_which_versions_it_handed_out():
    second, one = at("2024-06-10T13:05:00Z"), timedelta(seconds=1)
    mark = Watermark().advance([(5, second)], one)
    assert not mark.is_new(5, second, one)
    assert mark.is_new(6, second, one), "another ticket in the same second"
    assert mark.is_new(5, second + one, one), "a later update of the same ticket"
    assert not mark.is_new(9, second - 2 * one, one), "older than the window: read before"


def encoded(text: str) -> str:
    return "fd1." + base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("cursor", ["zd:123", "fd1.!!!", encoded("null"), encoded('{"seen": {"x": "y"}}'),
                                    encoded('{"at": "2024-06-10T13:05:00Z", "seen": {"5": "soon"}}')])
def test_a_foreign_or_damaged_cursor_is_a_connector_error(cursor):
    with pytest.raises(ConnectorError, match="is not one deskbot wrote"):
        Watermark.decode(cursor)


# -- environment ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("environ", "url"), [
    ({"FRESHDESK_DOMAIN": "acme"}, "https://acme.freshdesk.com"),
    ({"FRESHDESK_DOMAIN": "https://Acme.freshdesk.com/"}, "https://acme.freshdesk.com"),
    ({"FRESHDESK_DOMAIN": "acme", "FRESHDESK_URL": "http://127.0.0.1:8123/"}, "http://127.0.0.1:8123"),
])
def test_the_base_url_comes_from_the_environment(environ, url):
    assert base_url_from_env(environ) == url


@pytest.mark.parametrize(("environ", "message"), [
    ({}, "FRESHDESK_DOMAIN is not set"),
    ({"FRESHDESK_DOMAIN": "help.acme.com"}, "is not a Freshdesk account name"),
    ({"FRESHDESK_URL": "127.0.0.1:80"}, "FRESHDESK_URL must start with http"),
])
def test_bad_environment_says_what_to_set(environ, message):
    with pytest.raises(ConnectorError, match=message):
        base_url_from_env(environ)


def test_a_missing_key_says_where_to_find_it():
    with pytest.raises(ConnectorError, match=r"FRESHDESK_API_KEY is not set: copy it from Freshdesk"):
        FreshdeskConnector.from_env({"FRESHDESK_DOMAIN": "acme"})


# -- HTTP shapes ------------------------------------------------------------------------------------------

@responses.activate
def test_field_level_validation_errors_name_each_field():
    responses.put(f"{BASE}/api/v2/tickets/57", status=400, json={
        "description": "Validation failed",
        "errors": [{"field": "status", "message": "It should be one of these values: 2,3,4,5",
                    "code": "invalid_value"},
                   {"field": "cf_order_no", "message": "It should be a/an String", "code": "missing_field"}]})
    with pytest.raises(InvalidRequest) as caught:
        connector().http.request("ticket_update", "PUT", "/api/v2/tickets/57", json={"status": 9})
    assert str(caught.value) == ("Freshdesk refused PUT /api/v2/tickets/57 (400): Validation failed; status: It "
                                 "should be one of these values: 2,3,4,5 (invalid_value); cf_order_no: It should "
                                 "be a/an String (missing_field)")
    assert caught.value.details["fields"] == ["status", "cf_order_no"]


@responses.activate
@pytest.mark.parametrize(("status", "body", "error", "text"), [
    (403, {"code": "require_feature", "message": "The Ticket Fields feature is not available."},
     PermissionDenied, "plan lacks this feature"),
    (403, {"code": "access_denied", "message": "You are not authorized"}, PermissionDenied, "lacks the permission"),
    (404, None, NotFound, "Freshdesk has no such record: GET /api/v2/agents/9 (404)"),
    (415, {"code": "invalid_content_type"}, InvalidRequest, "this is a deskbot bug"),
])
def test_refusals_become_typed_errors(status, body, error, text):
    responses.get(f"{BASE}/api/v2/agents/9", status=status, **({"json": body} if body else {"body": ""}))
    with pytest.raises(error, match=re.escape(text)):
        connector().http.request("agent", "GET", "/api/v2/agents/9")


@responses.activate
def test_429_carries_retry_after_and_a_non_numeric_one_falls_back_to_backoff():
    responses.get(f"{BASE}/api/v2/groups", status=429, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/api/v2/agents", status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    client = connector().http
    for path, wait in (("/api/v2/groups", 7.0), ("/api/v2/agents", None)):
        with pytest.raises(RateLimited) as caught:
            client.request("x", "GET", path, retry=False)
        assert caught.value.retry_after == wait


@responses.activate
def test_a_redirect_is_not_followed_and_explains_the_domain():
    responses.get(f"{BASE}/api/v2/agents", status=301, headers={"Location": "https://help.acme.com/api/v2/agents"})
    with pytest.raises(ConnectorError, match=re.escape("set FRESHDESK_DOMAIN to the account's <name>.freshdesk.com")):
        connector().http.request("agents_list", "GET", "/api/v2/agents")
    assert len(responses.calls) == 1


@responses.activate
def test_a_link_to_another_host_is_refused_before_any_key_is_sent():
    responses.get(f"{BASE}/api/v2/groups", json=[{"id": 1, "name": "A", "agent_ids": []}],
                  headers={"Link": '<https://evil.example/api/v2/groups?page=2>; rel="next"'})
    with pytest.raises(ConnectorError, match="refusing to send the API key there"):
        connector().http.paginate("groups_list", "/api/v2/groups")
    assert [c.request.url.split("?")[0] for c in responses.calls] == [f"{BASE}/api/v2/groups"]


@responses.activate
def test_an_empty_last_page_after_a_full_one_ends_the_feed():
    responses.get(f"{BASE}/api/v2/ticket_fields", json=[])
    responses.get(f"{BASE}/api/v2/agents", json=[])
    responses.get(f"{BASE}/api/v2/groups", json=[])
    page_two = f"{BASE}/api/v2/tickets?updated_since=2000-01-01T00%3A00%3A00Z&page=2"
    responses.get(f"{BASE}/api/v2/tickets", json=[RECORD, {**RECORD, "id": 58}],
                  headers={"Link": f'<{page_two}>; rel="next"', "X-Ratelimit-Total": "400",
                           "X-Ratelimit-Remaining": "350", "X-Ratelimit-Used-CurrentRequest": "3"},
                  match=[responses.matchers.query_param_matcher({
                      "updated_since": "2000-01-01T00:00:00Z", "order_by": "updated_at", "order_type": "asc",
                      "per_page": "2", "page": "1", "include": "stats,requester,description,company"})])
    responses.get(page_two, json=[])
    feed = connector(per_page=2, lookback=timedelta(0))
    pages = list(feed.fetch_changes(None, backfill_all=True))
    assert [[t.id for t in p.tickets] for p in pages] == [[57, 58], []] and pages[-1].end_of_stream
    assert feed.http.costs["tickets_list"] == 3 and feed.budget.limit == 400 and feed.budget.remaining == 350


def test_naive_timestamps_are_read_as_utc():
    ticket = to_ticket({**RECORD, "created_at": "2024-06-10T09:00:00"}, Directory())
    assert ticket.created_at == datetime(2024, 6, 10, 9, tzinfo=UTC)


@responses.activate
def test_re_reads_leave_out_deleted_and_spam_tickets():
    for listing in ("ticket_fields", "agents", "groups"):
        responses.get(f"{BASE}/api/v2/{listing}", json=[])
    responses.get(f"{BASE}/api/v2/tickets/57", json=RECORD)
    responses.get(f"{BASE}/api/v2/tickets/58", json={**RECORD, "id": 58, "deleted": True})
    responses.get(f"{BASE}/api/v2/tickets/59", json={**RECORD, "id": 59, "spam": True})
    responses.get(f"{BASE}/api/v2/tickets/60", status=404, body="")
    assert [t.id for t in connector().get_tickets([57, 58, 59, 60])] == [57]
